"""The Celery app. Redis is the broker when REDIS_URL is set; otherwise tasks run eagerly."""

import os

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")

app = Celery("servicedesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _drop_unusable_connections(task=None, **kwargs) -> None:
    """Connections are reused across tasks (CELERY_DB_REUSE_MAX); one the database
    dropped, or older than CONN_MAX_AGE, is closed before it can fail a task.

    Not for eager tasks: they run inside the caller's request and its connection."""
    if task is not None and task.request.is_eager:
        return
    from django.db import close_old_connections

    close_old_connections()
