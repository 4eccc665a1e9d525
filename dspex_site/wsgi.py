import os

from django.core.wsgi import get_wsgi_application

from dspex_site.startup import exit_on_configuration_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dspex_site.settings")
with exit_on_configuration_error():
    application = get_wsgi_application()
