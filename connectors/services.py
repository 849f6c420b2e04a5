"""Connector services: store raw deliveries, turn them into mentions, poll, configure.

Raw deliveries are stored before anything else is done with them, so a failure while
processing loses nothing: the delivery stays, with its error, to be reprocessed.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from connectors.base import ConnectorError, InboundEvent, PermanentError, TransientError
from connectors.models import ChannelAccount, DeliveryKind, DeliveryStatus, RawDelivery
from connectors.registry import connector_class, connector_for
from servicedesk.errors import InvalidInput

logger = logging.getLogger(__name__)


def delivery_store(
    *,
    platform: str,
    channel: ChannelAccount | None,
    kind: str,
    body: bytes,
    headers: Mapping[str, str],
    status: str = DeliveryStatus.PENDING,
    error: str = "",
) -> RawDelivery:
    return RawDelivery.objects.create(
        platform=platform,
        channel=channel,
        kind=kind,
        received_at=timezone.now(),
        headers=dict(headers),
        body=body,
        status=status,
        error=error,
    )


def _apply_event(channel: ChannelAccount, event: InboundEvent) -> bool:
    """One event → the mention it describes. True when a new mention was stored."""
    from tickets.services import mention_delete, mention_edit, mention_ingest

    if event.is_own:
        return False  # our own post: answering it would talk to ourselves
    # One normal form for every platform's text (screening and hashes compare it).
    text = unicodedata.normalize("NFC", event.text)
    if event.kind == "delete":
        mention_delete(channel=channel, external_id=event.external_id)
        return False
    # X reports an edit as a new post naming the one it replaces.
    edited_id = event.extra.get("edit_of") or event.external_id
    if mention_edit(channel=channel, external_id=edited_id, text=text, raw=event.raw):
        return False
    result = mention_ingest(
        channel=channel,
        external_id=event.external_id,
        author=event.author,
        text=text,
        url=event.url,
        posted_at=event.posted_at or timezone.now(),
        in_reply_to_external_id=event.in_reply_to_external_id,
        raw=event.raw,
        reply_context=event.extra,
    )
    return result.created


def delivery_process(*, delivery_id: int) -> RawDelivery | None:
    """Parse one stored delivery and ingest each of its events.

    Each event is ingested on its own: one bad entry fails alone, and the delivery
    keeps the errors for the admin to see and reprocess. Ingest is idempotent, so
    processing a delivery twice changes nothing.
    """
    with transaction.atomic():
        delivery = (
            RawDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status == DeliveryStatus.PROCESSED:
            return delivery
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
    channel = delivery.channel
    errors: list[str] = []
    created = 0
    newest_post = None
    try:
        if channel is None:
            raise PermanentError("No channel account received this delivery.")
        connector = connector_for(channel)
        events = connector.parse(bytes(delivery.body), delivery.headers)
        errors.extend(error.reason for error in getattr(connector, "entry_errors", []))
        for event in events:
            if event.posted_at is not None and not event.is_own:
                newest_post = max(newest_post or event.posted_at, event.posted_at)
            try:
                created += _apply_event(channel, event)
            except Exception as exc:  # one bad event must not lose the others
                logger.exception("delivery %s: event %s failed", delivery.pk, event.external_id)
                errors.append(f"{event.external_id}: {exc}")
    except TransientError as exc:
        # The platform could not be asked now (parse may need it, e.g. Instagram
        # mention text): left pending, the sweep tries again, at most
        # DELIVERY_MAX_ATTEMPTS times. Events already ingested are not ingested twice.
        delivery.error = f"will retry: {exc.reason}"[:10000]
        delivery.save(update_fields=["error"])
        return delivery
    except ConnectorError as exc:
        errors.append(exc.reason)
    delivery.status = DeliveryStatus.FAILED if errors else DeliveryStatus.PROCESSED
    delivery.error = "\n".join(errors)[:10000]
    delivery.processed_at = timezone.now()
    delivery.mentions_created += created
    delivery.save(update_fields=["status", "error", "processed_at", "mentions_created"])
    if errors:
        logger.warning("delivery %s processed with %d error(s)", delivery.pk, len(errors))
    if channel is not None:
        _channel_delivery_health(channel, delivery, newest_post, errors)
    return delivery


def _channel_delivery_health(channel, delivery, newest_post, errors) -> None:
    """What supervisors watch: did the connector work, and how far behind the platform
    is it (the customer's post → our receipt)?"""
    fields = {}
    if errors:
        fields.update(last_error=errors[0][:1000], last_error_at=delivery.processed_at)
    else:
        fields.update(last_success_at=delivery.processed_at)
    if newest_post is not None:
        fields["lag_seconds"] = max((delivery.received_at - newest_post).total_seconds(), 0.0)
    ChannelAccount.objects.filter(pk=channel.pk).update(**fields)


# A pending delivery older than this was never picked up (its enqueue was lost, e.g.
# the broker was down when it was stored): the sweep enqueues it again.
DELIVERY_STALE_SECONDS = 60
# Processing attempts before a delivery is left for a person (admin "reprocess").
DELIVERY_MAX_ATTEMPTS = 5


def delivery_due(*, now=None) -> list[int]:
    """Pending deliveries nobody is processing, oldest first."""
    now = now or timezone.now()
    return list(
        RawDelivery.objects.filter(
            status=DeliveryStatus.PENDING,
            received_at__lte=now - timedelta(seconds=DELIVERY_STALE_SECONDS),
            attempts__lt=DELIVERY_MAX_ATTEMPTS,
        )
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)[:500]
    )


@dataclass(frozen=True)
class PollResult:
    pages: int
    events: int
    delivery_ids: list[int]


def channel_poll(*, channel_id: int, max_pages: int = 20) -> PollResult:
    """Fetch new items page by page. Each page is stored and the cursor advanced in one
    transaction, so a poller stopped mid-way resumes from the last stored page: no gap,
    no duplicate. The pages are then processed like webhook deliveries.

    `delivery_ids` (the pages to process, oldest first) starts with pages an earlier poll
    stored but never processed — it was stopped before it could: the cursor has moved
    past them, so nothing else would ever turn them into mentions."""
    channel = ChannelAccount.objects.get(pk=channel_id)
    connector = connector_for(channel)
    pages = events = 0
    delivery_ids: list[int] = list(
        RawDelivery.objects.filter(
            channel=channel, kind=DeliveryKind.POLL, status=DeliveryStatus.PENDING
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    try:
        for _ in range(max_pages):
            page = connector.poll(channel.poll_cursor)
            with transaction.atomic():
                delivery = delivery_store(
                    platform=channel.platform,
                    channel=channel,
                    kind=DeliveryKind.POLL,
                    body=page.raw_body,
                    headers=page.headers,
                )
                if page.next_cursor is not None:
                    channel.poll_cursor = page.next_cursor
                    channel.save(update_fields=["poll_cursor"])
            delivery_ids.append(delivery.pk)
            pages += 1
            events += len(page.events)
            if page.done:
                break
    except TransientError as exc:
        delay = exc.retry_after or channel.poll_interval_seconds
        _channel_health(channel, error=exc.reason, next_in=delay)
        raise
    except ConnectorError as exc:
        _channel_health(channel, error=exc.reason, next_in=channel.poll_interval_seconds)
        raise
    _channel_health(channel, error="", next_in=channel.poll_interval_seconds)
    return PollResult(pages=pages, events=events, delivery_ids=delivery_ids)


def _channel_health(channel: ChannelAccount, *, error: str, next_in: float) -> None:
    now = timezone.now()
    fields = {"next_poll_at": now + timedelta(seconds=next_in)}
    if error:
        fields.update(last_error=error[:1000], last_error_at=now)
    else:
        fields.update(last_success_at=now)
    ChannelAccount.objects.filter(pk=channel.pk).update(**fields)


def channel_add(*, platform: str, name: str, values: dict[str, str]) -> ChannelAccount:
    """Create or update a channel account from `key=value` settings, checked against the
    platform's list: unknown keys and missing required keys are refused."""
    try:
        cls = connector_class(platform)
    except PermanentError as exc:
        raise InvalidInput(str(exc), code="unknown_platform") from None
    spec = {item.key: item for item in cls.settings_spec}
    spec.setdefault("base_url", None)
    unknown = sorted(set(values) - set(spec))
    if unknown:
        raise InvalidInput(
            f"Unknown setting(s) for {platform}: {', '.join(unknown)}. "
            f"Known: {', '.join(sorted(spec))}.",
            code="unknown_setting",
        )
    with transaction.atomic():
        channel = ChannelAccount.objects.select_for_update().filter(name=name).first()
        if channel is not None and channel.platform != platform:
            raise InvalidInput(
                f"'{name}' is already a {channel.platform} account.", code="platform_mismatch"
            )
        channel = channel or ChannelAccount(name=name, platform=platform)
        secrets = channel.secrets
        settings = dict(channel.settings)
        for key, value in values.items():
            if spec[key] is not None and spec[key].secret:
                secrets[key] = value
            else:
                settings[key] = value
        missing = sorted(
            key
            for key, item in spec.items()
            if item is not None and item.required and not (settings.get(key) or secrets.get(key))
        )
        if missing:
            raise InvalidInput(
                f"Missing required setting(s) for {platform}: {', '.join(missing)}.",
                code="missing_setting",
            )
        channel.settings = settings
        channel.set_secrets(secrets)
        if "poll_interval" in values:
            channel.poll_interval_seconds = int(values["poll_interval"])
        channel.save()
    return channel
