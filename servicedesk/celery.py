"""The Celery app. Redis is the broker when REDIS_URL is set; otherwise tasks run eagerly."""

import logging
import os

from celery import Celery
from celery.signals import task_failure, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")

app = Celery("servicedesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)

# Our own tasks (by name): a failure of anyone else's is not ours to dead-letter.
OWN_TASK_PREFIXES = ("servicedesk.", "connectors.", "tickets.", "approvals.")


@task_prerun.connect
def _drop_unusable_connections(task=None, **kwargs) -> None:
    """Connections are reused across tasks (CELERY_DB_REUSE_MAX); one the database
    dropped, or older than CONN_MAX_AGE, is closed before it can fail a task.

    Not for eager tasks: they run inside the caller's request and its connection."""
    if task is not None and task.request.is_eager:
        return
    from django.db import close_old_connections

    close_old_connections()


@task_failure.connect
def _dead_letter_failed_task(
    sender=None, task_id=None, exception=None, args=None, kwargs=None, **_
):
    """A task of ours that failed with no retry left is recorded as a dead letter (and
    supervisors are alerted: servicedesk/dead_letters.py).

    Celery sends task_failure only when it will not run the message again: `self.retry()`
    raises Retry, which is signalled as task_retry instead. So a failure here has either
    used its retries up (request.retries >= max_retries: retry() raised the error or
    MaxRetriesExceededError) or is an error the task does not retry. Recording must never
    fail the worker: a database that refuses it leaves the ERROR line in the log."""
    if sender is None or not str(getattr(sender, "name", "")).startswith(OWN_TASK_PREFIXES):
        return
    from servicedesk.dead_letters import dead_letter_record_task

    request = sender.request
    try:
        dead_letter_record_task(
            task_name=sender.name,
            task_id=task_id or request.id or "",
            args=args if args is not None else request.args,
            kwargs=kwargs if kwargs is not None else request.kwargs,
            error=_describe(exception),
            attempts=(request.retries or 0) + 1,
        )
    except Exception:
        logger.exception("could not record the dead letter of task %s[%s]", sender.name, task_id)


def _describe(exception: BaseException | None) -> str:
    """The error and what caused it (retry() raises MaxRetriesExceededError from the
    error that was being retried)."""
    parts, seen = [], set()
    while exception is not None and id(exception) not in seen and len(parts) < 5:
        seen.add(id(exception))
        parts.append(f"{type(exception).__name__}: {exception}")
        exception = exception.__cause__ or exception.__context__
    return "\ncaused by ".join(parts)
