"""Thin Celery wrappers over the connector services."""

from datetime import timedelta

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from connectors.base import PermanentError, TransientError
from connectors.models import ChannelAccount
from connectors.registry import connector_class
from connectors.services import (
    channel_poll,
    deliveries_drain,
    deliveries_give_up,
    deliveries_wake,
    delivery_due,
    delivery_process,
)


@shared_task(name="connectors.delivery_drain", acks_late=True)
def delivery_drain_task() -> int:
    """Process pending deliveries in batches until none is left (or hand over to a
    fresh drain after a while): the webhooks' and polls' wake-up call."""
    return deliveries_drain()


@shared_task(name="connectors.delivery_process", acks_late=True)
def delivery_process_task(*, delivery_id: int) -> str:
    """One delivery, now (the admin's "reprocess")."""
    delivery = delivery_process(delivery_id=delivery_id)
    return delivery.status if delivery is not None else "busy"


@shared_task(name="connectors.delivery_sweep")
def delivery_sweep_task() -> int:
    """Beat: drain, if a stored delivery has waited too long (its wake-up was lost, its
    worker died, or its retry time has come); fail those whose attempts all died. The
    number of deliveries processed."""
    deliveries_give_up()
    if not delivery_due():
        return 0
    return deliveries_drain()


@shared_task(name="connectors.channel_poll", acks_late=True)
def channel_poll_task(*, channel_id: int) -> int:
    try:
        result = channel_poll(channel_id=channel_id)
    except TransientError:
        return 0  # next_poll_at already says when to look again
    if result.delivery_ids:
        deliveries_wake()
    return result.events


@shared_task(name="connectors.poll_due_channels")
def poll_due_channels_task() -> int:
    """Beat: enqueue a poll for each polled account whose time has come."""
    now = timezone.now()
    due = ChannelAccount.objects.filter(is_active=True).filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)
    )
    count = 0
    for channel in due:
        try:
            polls = connector_class(channel.platform).polls
        except PermanentError:  # a platform without a connector is not polled
            polls = False
        if polls:
            ChannelAccount.objects.filter(pk=channel.pk).update(
                next_poll_at=now + timedelta(seconds=channel.poll_interval_seconds)
            )
            channel_poll_task.delay(channel_id=channel.pk)
            count += 1
    return count
