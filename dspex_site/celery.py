"""The Celery app. Workers: `celery -A dspex_site worker`; scheduler: `celery -A dspex_site beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dspex_site.settings")

app = Celery("dspex_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])
