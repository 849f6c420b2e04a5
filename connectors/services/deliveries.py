"""Raw deliveries: stored before anything else, then claimed and processed in batches.

The pending deliveries are the workers' queue; the broker only wakes them. A webhook
stores its delivery with one INSERT, answers, and makes sure a drain task is on its way
(`deliveries_wake`: at most one waits in the broker at a time, however many deliveries
arrive). A drain claims pending deliveries oldest first, in batches, skipping those
another worker holds (`delivery_claim`), and processes each batch (`deliveries_process`).

Claiming counts an attempt and sets a lease (`next_attempt_at`) in its own committed
transaction, before any work: a worker that dies mid-batch leaves its deliveries to be
claimed again when the lease ends, and a delivery that keeps failing is marked failed
after DELIVERY_MAX_ATTEMPTS, with its error, for a person to reprocess (the admin's
action). The beat sweep starts a drain when a delivery has waited too long, so nothing is
left behind when the broker was down. Ingest is idempotent, so processing a delivery
twice changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from connectors.base import Connector, ConnectorError, InboundEvent, PermanentError, TransientError
from connectors.models import ChannelAccount, DeliveryKind, DeliveryStatus, RawDelivery
from connectors.registry import connector_for
from connectors.services.ingest import events_ingest
from servicedesk.bulk import execute_returning
from servicedesk.dead_letters import dead_letter_record_delivery

logger = logging.getLogger(__name__)

# A pending delivery older than this was never picked up (its wake-up was lost, e.g. the
# broker was down when it was stored): the sweep starts a drain for it.
DELIVERY_STALE_SECONDS = 60
# Processing attempts before a delivery is marked failed, for a person to reprocess.
DELIVERY_MAX_ATTEMPTS = 5
# How long a claim holds a delivery. Far longer than a batch takes: when it ends, the
# worker is taken to have died and the delivery is claimed again.
DELIVERY_LEASE_SECONDS = 60
# After a transient failure (the platform could not be asked while parsing), the wait
# before the next try.
DELIVERY_RETRY_SECONDS = 60
# Deliveries claimed at a time. A batch's new posts are written in one transaction, which
# holds the audit chain (every other audited change waits for it): small enough to keep
# that wait to tens of milliseconds, large enough to make a busy batch cheap.
DRAIN_BATCH = 50
# A drain task stops claiming after this long and hands over to a fresh one at the back
# of the queue, so publishing and polling tasks get their turn under a steady stream.
DRAIN_SECONDS = 2.0
# The cache key (Redis) saying a drain task is queued and has not started yet.
WAKE_KEY = "servicedesk:deliveries:drain-queued"
# A wake-up whose drain was lost (the broker restarted) stops holding back others then.
WAKE_TIMEOUT = 30
# A web process that has just seen a drain queued skips its own wake-ups for this long
# (one cache call per delivery was a third of a webhook's cost). Safe because a drain
# ends only after an empty claim followed by another DRAIN_LINGER_SECONDS later: see
# `deliveries_wake`.
WAKE_DEBOUNCE_SECONDS = 0.05
DRAIN_LINGER_SECONDS = 0.06
# After a batch smaller than DRAIN_BATCH, the wait before the next claim (see
# `deliveries_drain`): at most this much later for a delivery, fewer and fuller batches.
DRAIN_GATHER_SECONDS = 0.025


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


_COLUMNS = (
    "channel_id",
    "platform",
    "kind",
    "received_at",
    "headers",
    "body",
    "status",
    "attempts",
    "error",
    "mentions_created",
)


def delivery_store_webhook(
    *, channels: list[ChannelAccount], body: bytes, headers: Mapping[str, str]
) -> list[int]:
    """A verified webhook delivery, one pending row per account it concerns: the ids.

    The webhook's hot path, so one INSERT statement and nothing else, committed on its
    own (autocommit): the platform is answered only once the delivery is stored. On
    PostgreSQL the statement goes straight to psycopg with server-side parameters (no
    quoting of the body in Python, half the statement's cost through Django's cursor)."""
    received_at = timezone.now()
    row = [DeliveryKind.WEBHOOK, received_at, json.dumps(dict(headers)), body]
    row += [DeliveryStatus.PENDING, 0, "", 0]
    params: list = []
    for channel in channels:
        params += [channel.pk, channel.platform, *row]
    table = RawDelivery._meta.db_table
    if connection.vendor == "postgresql":
        values = "(%s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s)"
        sql = (
            f"INSERT INTO {table} ({', '.join(_COLUMNS)}) "  # noqa: S608 (no user input)
            f"VALUES {', '.join([values] * len(channels))} RETURNING id"
        )
        return _insert_reconnecting(sql, params)
    ops = connection.ops
    for index in range(3, len(params), len(_COLUMNS)):
        params[index] = ops.adapt_datetimefield_value(params[index])
    values = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    sql = (
        f"INSERT INTO {table} ({', '.join(_COLUMNS)}) "  # noqa: S608 (no user input)
        f"VALUES {', '.join([values] * len(channels))} RETURNING id"
    )
    return _insert(sql, params)


def _insert_reconnecting(sql: str, params: list) -> list[int]:
    """Run the INSERT straight on psycopg; on a persistent connection that turns out to
    be dead (the database restarted since it was opened), open a new one and run it
    again, once.

    This replaces Django's health check (CONN_HEALTH_CHECKS), which would spend a
    `SELECT 1` round trip on every request to find the rare dead connection. A
    connection that broke after the server committed the INSERT, before it answered,
    stores the delivery twice: ingest is idempotent, so it still makes one mention."""
    reused = connection.connection is not None
    try:
        return _insert(sql, params)
    except DatabaseError:
        raw = connection.connection
        if not reused or (raw is not None and not raw.closed and not raw.broken):
            raise  # a new connection failed, or the statement did: not a stale connection
        logger.info("webhook store: the database connection was dead; reconnecting")
        connection.close()
    return _insert(sql, params)


def _insert(sql: str, params: list) -> list[int]:
    return [delivery_id for (delivery_id,) in execute_returning(sql, params)]


_last_wake = 0.0  # time.monotonic() of this process's last wake-up that reached the broker


def _eager() -> bool:
    """Tasks run in-process (no REDIS_URL; tests): a drain runs inside the request."""
    from servicedesk.celery import app

    return bool(app.conf.task_always_eager)


def deliveries_wake() -> None:
    """Make sure a drain task will see the deliveries just committed.

    One drain waits in the broker at a time: the key says so, and a drain deletes it
    before it claims anything, so a delivery stored after that wakes another. A process
    that found or put the key less than WAKE_DEBOUNCE_SECONDS ago does nothing: the drain
    it saw queued had not started then, and a drain ends only after two empty claims
    DRAIN_LINGER_SECONDS apart, the last one later than anything this process stored in
    the meantime. A broker that cannot be reached is logged, not raised: the delivery is
    stored, and the sweep finds it.
    """
    global _last_wake
    from connectors.tasks import delivery_drain_task

    if _eager():
        delivery_drain_task.delay()  # no broker: the drain runs here, now
        return
    now = time.monotonic()
    if now - _last_wake < WAKE_DEBOUNCE_SECONDS:
        return
    try:
        if cache.add(WAKE_KEY, 1, timeout=WAKE_TIMEOUT):
            try:
                delivery_drain_task.delay()
            except BaseException:
                cache.delete(WAKE_KEY)  # let the next delivery try again
                raise
    except (RedisError, BrokerError, OSError) as exc:
        logger.warning("could not wake the delivery workers (the sweep will): %s", exc)
    else:
        _last_wake = now


def deliveries_drain(*, batch: int = DRAIN_BATCH, seconds: float = DRAIN_SECONDS) -> int:
    """Claim and process pending deliveries until none is left or `seconds` have passed
    (then another drain is woken to go on). The number of deliveries processed.

    None is left once a claim comes back empty twice, DRAIN_LINGER_SECONDS apart (not
    in eager mode, where the drain runs inside the request): see `deliveries_wake`."""
    cache.delete(WAKE_KEY)  # before claiming: whatever is stored from now on wakes another
    linger = 0.0 if _eager() else DRAIN_LINGER_SECONDS
    deadline = time.monotonic() + seconds
    done = 0
    lingered = False
    while True:
        claimed = delivery_claim(limit=batch)
        if not claimed:
            if lingered or not linger:
                return done
            time.sleep(linger)
            lingered = True
            continue
        lingered = False
        deliveries_process(claimed)
        done += len(claimed)
        if time.monotonic() >= deadline:
            deliveries_wake()
            return done
        if len(claimed) < batch and linger:
            # The queue is shallow: let a few more arrive before the next claim. A batch
            # costs about a dozen statements whatever its size, and under a steady stream
            # claiming at once would make every batch small and those statements most of
            # a delivery's cost.
            time.sleep(DRAIN_GATHER_SECONDS)


def delivery_claim(*, limit: int, now: datetime | None = None) -> list[RawDelivery]:
    """Up to `limit` claimable pending deliveries, oldest first, none another worker
    holds; each with one more attempt and a lease, committed before returning."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=DELIVERY_LEASE_SECONDS)
    with transaction.atomic():
        deliveries = list(
            RawDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.PENDING, attempts__lt=DELIVERY_MAX_ATTEMPTS)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .order_by("pk")[:limit]
        )
        if not deliveries:
            return []
        RawDelivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
            attempts=F("attempts") + 1, next_attempt_at=lease
        )
    # One instance per account, shared by its deliveries (and so one connector).
    channels = ChannelAccount.objects.in_bulk({d.channel_id for d in deliveries} - {None})
    for delivery in deliveries:
        delivery.attempts += 1
        delivery.next_attempt_at = lease
        delivery.channel = channels.get(delivery.channel_id)
    return deliveries


def delivery_process(*, delivery_id: int) -> RawDelivery | None:
    """Process one delivery now, whatever its lease or attempts say (a person or a poll
    asked for it); None if there is no such delivery. One another worker is processing
    is left to it."""
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
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=DELIVERY_LEASE_SECONDS)
        delivery.save(update_fields=["attempts", "next_attempt_at"])
    deliveries_process([delivery])
    return delivery


@dataclass
class _Work:
    """What became of one delivery while its batch was processed."""

    delivery: RawDelivery
    events: list[InboundEvent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    created: int = 0
    retry: str = ""  # a transient failure: try again later

    @property
    def newest_post(self) -> datetime | None:
        posted = [e.posted_at for e in self.events if e.posted_at is not None and not e.is_own]
        return max(posted, default=None)


def deliveries_process(deliveries: list[RawDelivery]) -> None:
    """Parse each delivery, ingest all their events (a bad event fails alone), then record
    each delivery's outcome and its channel's health. The deliveries are updated in
    place: processed, failed with the errors kept for the admin, or (a transient failure)
    pending until DELIVERY_RETRY_SECONDS from now."""
    works = [_Work(delivery) for delivery in deliveries]
    connectors: dict[int, Connector] = {}
    # Parsing first, outside any transaction: it may ask the platform (Instagram mentions).
    for work in works:
        _parse(work, connectors)
    items = [
        (work.delivery.channel, event, work)
        for work in works
        if not work.retry
        for event in work.events
    ]
    outcomes = events_ingest([(channel, event) for channel, event, _ in items])
    for (_, event, work), outcome in zip(items, outcomes, strict=True):
        if isinstance(outcome, Exception):
            work.errors.append(f"{event.external_id}: {outcome}")
        else:
            work.created += outcome
    # Written once the mentions are committed: "processed" means the tickets are there.
    _outcomes_record(works, timezone.now())


def _parse(work: _Work, connectors: dict[int, Connector]) -> None:
    delivery, channel = work.delivery, work.delivery.channel
    try:
        if channel is None:
            raise PermanentError("No channel account received this delivery.")
        connector = connectors.get(channel.pk)
        if connector is None:
            connector = connectors[channel.pk] = connector_for(channel)
        work.events = list(connector.parse(bytes(delivery.body), delivery.headers))
        work.errors.extend(error.reason for error in connector.entry_errors)
    except TransientError as exc:
        # The platform could not be asked now: left pending, tried again later, at most
        # DELIVERY_MAX_ATTEMPTS times.
        work.retry = exc.reason
    except ConnectorError as exc:
        work.errors.append(exc.reason)
    except Exception as exc:  # a parser's bug fails this delivery, not the batch
        logger.exception("delivery %s: parse failed", delivery.pk)
        work.errors.append(f"{type(exc).__name__}: {exc}")


def _outcomes_record(works: list[_Work], now: datetime) -> None:
    """One UPDATE per distinct outcome (a busy batch has one or two), then the health of
    each channel the batch concerns."""
    groups: dict[tuple, tuple[dict, list[int]]] = {}  # same new values → one UPDATE
    gave_up: list[RawDelivery] = []
    for work in works:
        delivery = work.delivery
        if work.retry and delivery.attempts < DELIVERY_MAX_ATTEMPTS:
            delivery.error = f"will retry: {work.retry}"[:10000]
            delivery.next_attempt_at = now + timedelta(seconds=DELIVERY_RETRY_SECONDS)
            values = {"error": delivery.error, "next_attempt_at": delivery.next_attempt_at}
        else:
            if work.retry:  # the last attempt: left failed, for a person to reprocess
                work.errors.append(f"gave up after {delivery.attempts} attempts: {work.retry}")
                gave_up.append(delivery)
            delivery.status = DeliveryStatus.FAILED if work.errors else DeliveryStatus.PROCESSED
            delivery.error = "\n".join(work.errors)[:10000]
            delivery.processed_at = now
            delivery.next_attempt_at = None
            delivery.mentions_created += work.created
            values = {
                "status": delivery.status,
                "error": delivery.error,
                "processed_at": now,
                "next_attempt_at": None,
                "mentions_created": F("mentions_created") + work.created,
            }
            if work.errors:
                logger.warning(
                    "delivery %s processed with %d error(s)", delivery.pk, len(work.errors)
                )
        key = tuple(sorted((name, str(value)) for name, value in values.items()))
        groups.setdefault(key, (values, []))[1].append(delivery.pk)
    # A delivery given up on is failed and dead-lettered together: if the letter cannot
    # be written, it stays pending with its attempts spent, for deliveries_give_up.
    with transaction.atomic():
        for values, ids in groups.values():
            RawDelivery.objects.filter(pk__in=ids).update(**values)
        for delivery in gave_up:
            dead_letter_record_delivery(
                delivery_id=delivery.pk,
                platform=delivery.platform,
                error=delivery.error,
                attempts=delivery.attempts,
            )

    by_channel: dict[int, list[_Work]] = {}
    for work in works:
        if work.delivery.channel_id is not None and work.delivery.status != DeliveryStatus.PENDING:
            by_channel.setdefault(work.delivery.channel_id, []).append(work)
    for channel_id, channel_works in by_channel.items():
        _channel_delivery_health(channel_id, channel_works, now)


def _channel_delivery_health(channel_id: int, works: list[_Work], now: datetime) -> None:
    """What supervisors watch: did the connector work, and how far behind the platform
    is it (the customer's post → our receipt)?"""
    fields: dict = {}
    errors = [error for work in works for error in work.errors]
    if errors:
        fields.update(last_error=errors[0][:1000], last_error_at=now)
    if any(not work.errors for work in works):
        fields["last_success_at"] = now
    for work in reversed(works):  # the latest delivery that carried a post
        newest = work.newest_post
        if newest is not None:
            lag = (work.delivery.received_at - newest).total_seconds()
            fields["lag_seconds"] = max(lag, 0.0)
            break
    ChannelAccount.objects.filter(pk=channel_id).update(**fields)


def deliveries_give_up(*, now: datetime | None = None) -> int:
    """Pending deliveries whose every attempt was claimed and never finished (a worker
    died each time: one that crashes its worker, say) are marked failed, with the reason,
    for a person to look at and reprocess. How many."""
    now = now or timezone.now()
    error = f"Gave up: {DELIVERY_MAX_ATTEMPTS} attempts were claimed and none finished."
    with transaction.atomic():
        abandoned = list(
            RawDelivery.objects.select_for_update(skip_locked=True)
            .filter(
                status=DeliveryStatus.PENDING,
                attempts__gte=DELIVERY_MAX_ATTEMPTS,
                next_attempt_at__lte=now,
            )
            .values_list("pk", "platform", "attempts")
        )
        RawDelivery.objects.filter(pk__in=[pk for pk, _, _ in abandoned]).update(
            status=DeliveryStatus.FAILED, processed_at=now, next_attempt_at=None, error=error
        )
        for pk, platform, attempts in abandoned:
            dead_letter_record_delivery(
                delivery_id=pk, platform=platform, error=error, attempts=attempts
            )
    return len(abandoned)


def delivery_due(*, now: datetime | None = None) -> list[int]:
    """Pending deliveries that have waited too long and could be claimed, oldest first:
    their wake-up was lost, or their worker died, or their retry time has come."""
    now = now or timezone.now()
    return list(
        RawDelivery.objects.filter(
            status=DeliveryStatus.PENDING,
            received_at__lte=now - timedelta(seconds=DELIVERY_STALE_SECONDS),
            attempts__lt=DELIVERY_MAX_ATTEMPTS,
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
