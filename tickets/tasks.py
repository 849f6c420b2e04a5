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


# ---- supervision: the clocks and the latency record -------------------------------------


@shared_task(name="tickets.escalations_check", acks_late=True)
def escalations_check_task() -> int:
    """Raise the warnings, breaches and legal escalations due now (beat, every 30 s)."""
    from tickets.services.escalation import escalations_check

    return len(escalations_check())


@shared_task(name="tickets.escalation_deliver", bind=True, acks_late=True, max_retries=5)
def escalation_deliver_task(self, *, escalation_id: int) -> str:
    """E-mail and chat for one escalation; a chat webhook that is down is tried again."""
    from tickets.services.escalation import ChatDeliveryError, escalation_deliver

    try:
        escalation = escalation_deliver(escalation_id=escalation_id)
    except ChatDeliveryError as exc:
        if self.app.conf.task_always_eager:
            return "chat webhook failed"
        raise self.retry(countdown=30 * (self.request.retries + 1)) from exc
    return "gone" if escalation is None else "delivered"


@shared_task(name="tickets.cycles_refresh", acks_late=True)
def cycles_refresh_task() -> int:
    """Bring the latency record up to date with the audit trail (beat, every 30 s)."""
    from tickets.cycles import cycles_refresh

    return cycles_refresh()


@shared_task(name="tickets.wall_warm", acks_late=True)
def wall_warm_task() -> None:
    """Compute the wall's usual posting rates ahead of the hour that needs them (beat)."""
    from tickets.reports.wall import wall_warm

    wall_warm()
