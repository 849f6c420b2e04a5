"""Thin Celery wrappers over the ticket services."""

from celery import shared_task

from connectors.base import PublishError
from tickets.services.replies import reply_publish


@shared_task(
    name="tickets.reply_publish",
    acks_late=True,
    autoretry_for=(PublishError,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def reply_publish_task(*, reply_id: int) -> str:
    """Publish one reply. Re-reads state, so a duplicate delivery of the task is harmless."""
    return reply_publish(reply_id=reply_id).state
