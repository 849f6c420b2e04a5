"""The outbox: publishing replies exactly once, with retries that never post twice.

A reply accepted for sending gets one OutboundMessage in the same transaction. The
publish task (`outbox_deliver`) then:
1. claims the message (row lock, skipping one another worker holds), re-checks the
   legal gate on the exact text, marks it in flight and counts the attempt — committed,
   so a worker that dies afterwards leaves a trace;
2. in a second transaction that keeps the message locked during the platform call:
   if any earlier attempt may have reached the platform, looks for our own reply
   first; otherwise publishes with the reply's idempotency key; records the result.
   The look-up only counts replies posted since the first attempt began (less
   CLOCK_SKEW_SECONDS): the same words from us earlier in the thread are an earlier
   answer, not this one. A platform that refuses the post as a duplicate gets the
   same look-up: our own earlier attempt, or a text to reword.
Transient errors back off exponentially with jitter (or as long as the platform's
Retry-After says); permanent errors fail the reply with the reason. A beat task
re-enqueues messages whose retry time has come or whose worker died.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from connectors.base import (
    ConnectorError,
    DuplicatePost,
    PermanentError,
    ReplyTarget,
    TransientError,
)
from connectors.models import ChannelAccount, OutboundMessage, OutboxState
from connectors.registry import connector_for

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BASE_DELAY_SECONDS = 5
MAX_DELAY_SECONDS = 15 * 60
# A platform's own "come back at" (rate limits, daily quotas that reset at midnight) is
# honoured up to this long, and such waits do not use up attempts.
MAX_RATE_LIMIT_WAIT_SECONDS = 26 * 3600
# A message in flight this long without a lock holder belongs to a worker that died.
IN_FLIGHT_STALE_SECONDS = 120
# How far a platform's clock (and its whole-second timestamps) may be behind ours: a
# reply it dates this much before our first attempt can still be that attempt's.
CLOCK_SKEW_SECONDS = 30


class RetryLater(Exception):
    """Raised to the task: try this message again in `delay` seconds."""

    def __init__(self, delay: float, reason: str):
        super().__init__(reason)
        self.delay = delay


def outbox_enqueue(*, reply, channel: ChannelAccount) -> OutboundMessage:
    """Within the send's transaction: one message per reply (a retry reuses it)."""
    message, created = OutboundMessage.objects.get_or_create(
        reply=reply,
        defaults={"channel": channel, "idempotency_key": reply.idempotency_key},
    )
    if not created and message.state == OutboxState.FAILED:
        message.state = OutboxState.PENDING
        message.next_attempt_at = None
        message.last_error = ""
        message.save(update_fields=["state", "next_attempt_at", "last_error"])
    return message


def backoff_seconds(attempts: int, retry_after: float | None = None) -> float:
    if retry_after is not None:
        return min(max(retry_after, 1.0), MAX_RATE_LIMIT_WAIT_SECONDS)
    delay = min(BASE_DELAY_SECONDS * 2 ** max(attempts - 1, 0), MAX_DELAY_SECONDS)
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security


def reply_target(reply) -> ReplyTarget:
    """The post our reply answers: the customer's latest post in the thread."""
    mention = reply.ticket.mentions.select_related("customer").order_by("-posted_at", "-id").first()
    if mention is None:
        raise PermanentError("The ticket has no customer post to answer.")
    return ReplyTarget(
        external_id=mention.external_id,
        author_handle=mention.customer.handle,
        extra=mention.reply_context,
    )


def outbox_deliver(*, reply_id: int) -> OutboundMessage | None:
    from tickets.services.replies import (
        reply_mark_failed,
        reply_mark_published,
        reply_publish_check,
    )

    # 1. claim
    with transaction.atomic():
        message = (
            OutboundMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel")
            .filter(reply_id=reply_id)
            .first()
        )
        if message is None or message.state in (OutboxState.SENT, OutboxState.FAILED):
            return message  # another worker holds it, or it is finished
        if message.next_attempt_at is not None and message.next_attempt_at > timezone.now():
            return message  # backing off; the sweep brings it back when due
        _, reply, refusal = reply_publish_check(reply_id=reply_id)
        if refusal is not None:
            message.state = OutboxState.FAILED
            message.last_error = refusal.message
            message.save(update_fields=["state", "last_error"])
            reply_mark_failed(reply_id=reply_id, reason=refusal.message)
            return message
        possibly_posted = message.attempts > 0
        message.state = OutboxState.IN_FLIGHT
        message.attempts += 1
        message.in_flight_since = timezone.now()
        message.first_attempt_at = message.first_attempt_at or message.in_flight_since
        message.save(update_fields=["state", "attempts", "in_flight_since", "first_attempt_at"])
        # Messages from before first_attempt_at was kept: their creation came earlier still.
        since = (message.first_attempt_at or message.created_at) - timedelta(
            seconds=CLOCK_SKEW_SECONDS
        )
        text = reply.body
        try:
            target = reply_target(reply)
        except PermanentError as error:
            target, early_error = None, error
        else:
            early_error = None

    # 2. publish, holding the message's lock until the result is recorded
    outcome: ConnectorError | None = early_error
    with transaction.atomic():
        message = (
            OutboundMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel")
            .filter(pk=message.pk, state=OutboxState.IN_FLIGHT)
            .first()
        )
        if message is None:
            return None
        if outcome is None:
            connector = None
            try:
                connector = connector_for(message.channel)
                key = message.idempotency_key
                result = None
                if possibly_posted:
                    result = connector.find_own_reply(
                        text=text, target=target, idempotency_key=key, since=since
                    )
                if result is None:
                    try:
                        result = connector.publish(text=text, target=target, idempotency_key=key)
                    except DuplicatePost as duplicate:
                        result = connector.find_own_reply(
                            text=text, target=target, idempotency_key=key, since=since
                        )
                        if result is None:
                            raise PermanentError(
                                f"{duplicate.reason} No reply of ours with this text answers "
                                f"post {target.external_id} since the first attempt: it "
                                "repeats another recent post; reword it.",
                                code="duplicate_content",
                            ) from None
            except ConnectorError as error:
                outcome = error
            else:
                message.state = OutboxState.SENT
                message.external_id = result.external_id
                message.external_url = result.url
                message.sent_at = timezone.now()
                message.last_error = ""
                message.save(
                    update_fields=["state", "external_id", "external_url", "sent_at", "last_error"]
                )
                reply_mark_published(
                    reply_id=reply_id, external_id=result.external_id, url=result.url
                )
                return message
        rate_limited = (
            isinstance(outcome, TransientError)
            and outcome.retry_after is not None
            and not outcome.ambiguous
        )
        if rate_limited:
            # The platform refused before doing anything and said when to come back:
            # not an attempt that could have posted, and not one that counts.
            message.attempts -= 1
        if isinstance(outcome, TransientError) and message.attempts < MAX_ATTEMPTS:
            delay = backoff_seconds(message.attempts, outcome.retry_after)
            message.state = OutboxState.PENDING
            message.next_attempt_at = timezone.now() + timedelta(seconds=delay)
            message.last_error = outcome.reason[:1000]
            message.save(update_fields=["state", "attempts", "next_attempt_at", "last_error"])
            retry = RetryLater(delay, outcome.reason)
        else:
            reason = outcome.reason
            if isinstance(outcome, TransientError):
                reason = f"Gave up after {message.attempts} attempts: {reason}"
            message.state = OutboxState.FAILED
            message.last_error = reason[:1000]
            message.save(update_fields=["state", "last_error"])
            reply_mark_failed(reply_id=reply_id, reason=reason)
            return message
    logger.info("reply %s: publish will be retried in %.0f s: %s", reply_id, retry.delay, retry)
    raise retry


def outbox_due(*, now=None) -> list[int]:
    """Reply ids whose message should be tried now: its retry time has come, or it has
    been in flight so long that its worker must have died."""
    now = now or timezone.now()
    pending = OutboundMessage.objects.filter(
        state=OutboxState.PENDING, next_attempt_at__lte=now
    ).values_list("reply_id", flat=True)
    stale = OutboundMessage.objects.filter(
        state=OutboxState.IN_FLIGHT,
        in_flight_since__lte=now - timedelta(seconds=IN_FLIGHT_STALE_SECONDS),
    ).values_list("reply_id", flat=True)
    return [*pending, *stale]
