"""Channel accounts: polling platforms without push, and configuring accounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from connectors.base import ConnectorError, PermanentError, TransientError
from connectors.models import ChannelAccount, DeliveryKind, DeliveryStatus, RawDelivery
from connectors.registry import connector_class, connector_for
from connectors.services.deliveries import delivery_store
from servicedesk.errors import InvalidInput


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
    for key, value in values.items():
        problem = spec[key].check(value) if spec[key] is not None and spec[key].check else None
        if problem:
            raise InvalidInput(f"{platform} setting {key}: {problem}", code="invalid_setting")
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
