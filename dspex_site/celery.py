"""The Celery app. Workers: `celery -A dspex_site worker`; scheduler: `celery -A dspex_site beat`."""

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dspex_site.settings")

app = Celery("dspex_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])


@task_prerun.connect
@task_postrun.connect
def recycle_database_connections(**kwargs: Any) -> None:
    """Drop this thread's connections that are broken or older than CONN_MAX_AGE, as Django does per request."""
    close_old_connections()
