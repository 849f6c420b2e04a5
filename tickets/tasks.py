"""Thin Celery wrappers over the ticket services."""

from celery import shared_task

from connectors.outbox import RetryLater, outbox_deliver, outbox_due


@shared_task(name="tickets.reply_publish", bind=True, acks_late=True, max_retries=None)
def reply_publish_task(self, *, reply_id: int) -> str:
    """Publish one reply through the outbox. Re-reads state: a duplicate is harmless."""
    try:
        message = outbox_deliver(reply_id=reply_id)
    except RetryLater as retry:
        if self.app.conf.task_always_eager:
            return "retry scheduled"  # no worker to wait: the sweep retries it when due
        raise self.retry(countdown=retry.delay) from retry
    return message.state if message is not None else "busy"


@shared_task(name="tickets.outbox_sweep", acks_late=True)
def outbox_sweep_task() -> int:
    """Re-enqueue replies whose retry time has come or whose worker died (beat)."""
    due = outbox_due()
    for reply_id in due:
        reply_publish_task.delay(reply_id=reply_id)
    return len(due)
