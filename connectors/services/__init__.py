"""Connector services: raw deliveries stored, claimed and processed; channels polled and
configured. See each module's docstring."""

from connectors.services.channels import PollResult, channel_add, channel_poll
from connectors.services.deliveries import (
    DELIVERY_MAX_ATTEMPTS,
    DELIVERY_STALE_SECONDS,
    deliveries_drain,
    deliveries_give_up,
    deliveries_process,
    deliveries_wake,
    delivery_claim,
    delivery_due,
    delivery_process,
    delivery_store,
    delivery_store_webhook,
)
from connectors.services.ingest import events_ingest

__all__ = [
    "DELIVERY_MAX_ATTEMPTS",
    "DELIVERY_STALE_SECONDS",
    "PollResult",
    "channel_add",
    "channel_poll",
    "deliveries_drain",
    "deliveries_give_up",
    "deliveries_process",
    "deliveries_wake",
    "delivery_claim",
    "delivery_due",
    "delivery_process",
    "delivery_store",
    "delivery_store_webhook",
    "events_ingest",
]
