"""The command-center wall: what to act on now, in a fixed handful of queries.

Everything is measured against the database's clock (read once per refresh), so every
screen on the wall and every worker agrees on what "overdue" means.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, DateTimeField, F, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import ExtractHour, ExtractMinute, Floor
from django.utils import timezone

from approvals.pii import mask_text
from connectors.models import ChannelAccount
from tickets.clock import Epoch, db_now
from tickets.enums import WORKING_STATES, Sentiment, TicketState
from tickets.models import (
    CycleOutcome,
    Escalation,
    EscalationKind,
    Mention,
    ResponseCycle,
    SupervisionState,
    Ticket,
)
from tickets.reports.common import iso, pct

AT_RISK_SHARE = 0.5
AT_RISK_ROWS = 12
# A minute is a spike when its posts (or its negative posts) are far above the usual
# for that time of day: more than mean + 3 standard deviations of a Poisson count,
# and at least SPIKE_MIN of them.
SPIKE_MIN = 5
NEGATIVE_SHARE_JUMP = 0.25
USUAL_DAYS = 7
USUAL_HALF_WIDTH = 30  # minutes either side of the same time of day
USUAL_CACHE_SECONDS = 2 * 3600
# A polled channel with no success for this many poll intervals (10 minutes at least)
# is stale; a connector answering more slowly than this is lagging.
STALE_POLLS = 5
STALE_MIN_SECONDS = 600
LAG_WARN_SECONDS = 300
SENTIMENTS = (Sentiment.NEGATIVE, Sentiment.NEUTRAL, Sentiment.POSITIVE)


def _excerpt(text: str | None, screening: dict | None, limit: int = 120) -> str:
    masked = mask_text(text or "", (screening or {}).get("pii") or [])
    first = next((line.strip() for line in masked.splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def _at_risk(now: datetime) -> tuple[list[dict[str, Any]], dict[str, int]]:
    # Compared as times, not as a share computed per row: over a large backlog the counts
    # read the open-work index and do no division.
    moment = Value(now, output_field=DateTimeField())
    posted = Epoch(F("posted_at"))
    risky = Q(deadline__lte=moment) | Q(
        deadline__gt=moment,
        risk_from__lte=Value(now.timestamp()),
    )
    working = Ticket.objects.filter(state__in=WORKING_STATES).annotate(
        risk_from=posted + (Epoch(F("deadline")) - posted) * Value(AT_RISK_SHARE)
    )
    counts = working.aggregate(
        working=Count("id"),
        at_risk=Count("id", filter=Q(risk_from__lte=Value(now.timestamp()), deadline__gt=moment)),
        breached=Count("id", filter=Q(deadline__lte=moment)),
    )
    first = Mention.objects.filter(ticket=OuterRef("pk")).order_by("posted_at", "id")
    rows = (
        working.filter(risky)
        .select_related("channel", "assignee")
        .annotate(
            first_text=Subquery(first.values("text")[:1]),
            first_screening=Subquery(first.values("screening")[:1]),
        )
        .order_by("deadline", "id")[:AT_RISK_ROWS]
    )
    items = []
    for ticket in rows:
        left = (ticket.deadline - now).total_seconds()
        window = (ticket.deadline - ticket.posted_at).total_seconds()
        used = (now - ticket.posted_at).total_seconds() / window if window > 0 else 1.0
        items.append(
            {
                "id": ticket.pk,
                "channel": ticket.channel.name,
                "platform": ticket.channel.platform,
                "state": ticket.state,
                "state_label": TicketState(ticket.state).label,
                "priority": ticket.priority,
                "regulated": ticket.regulated,
                "assignee": ticket.assignee.get_username() if ticket.assignee_id else None,
                "posted_at": iso(ticket.posted_at),
                "deadline": iso(ticket.deadline),
                "seconds_left": round(left),
                "used_pct": round(used * 100),
                "level": "overdue" if left < 0 else "red" if used >= 0.8 else "amber",
                "excerpt": _excerpt(ticket.first_text, ticket.first_screening),
            }
        )
    return items, counts


def _legal_queue(now: datetime) -> dict[str, Any]:
    waiting = Ticket.objects.filter(state=TicketState.IN_LEGAL_REVIEW)
    figures = waiting.aggregate(
        length=Count("id", distinct=True),
        oldest=Min("submitted_at"),
        escalated=Count(
            "id",
            distinct=True,
            filter=Q(
                escalations__kind=EscalationKind.LEGAL_ESCALATED,
                escalations__clock_started_at=F("submitted_at"),
            ),
        ),
    )
    oldest = figures["oldest"]
    return {
        "length": figures["length"],
        "oldest_wait_seconds": round((now - oldest).total_seconds()) if oldest else None,
        "oldest_submitted_at": iso(oldest),
        "escalated": figures["escalated"],
    }


def _within(now: datetime) -> dict[str, Any]:
    """% answered within the window, of the cycles decided today and this hour.

    A cycle is decided when its answer goes out in time, or when its deadline passes
    without one: each counts once, in the hour that happened.

    The latency record changes only when it is refreshed (its bookmark moves), so the
    figures are kept per bookmark and minute: every screen shares one computation a
    minute, and a deadline passing shows within the minute.
    """
    bookmark = SupervisionState.objects.filter(id=1).values_list("cycles_seq", flat=True).first()
    key = f"servicedesk:wall:within:{bookmark}:{now.strftime('%Y%m%d%H%M')}"
    cached = cache.get(key)
    if cached is None:
        cached = _within_now(now)
        cache.set(key, cached, 120)
    return cached


def _within_now(now: datetime) -> dict[str, Any]:
    local = timezone.localtime(now)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    hour_start = local.replace(minute=0, second=0, microsecond=0)
    recent = ResponseCycle.objects.all()

    def in_time(start: datetime) -> Q:
        return Q(outcome=CycleOutcome.ANSWERED, within_window=True, replied_at__gte=start)

    def late(start: datetime) -> Q:
        return Q(deadline__gte=start, deadline__lt=now) & (
            Q(outcome=CycleOutcome.PENDING) | Q(within_window=False)
        )

    figures = recent.filter(in_time(day_start) | late(day_start)).aggregate(
        day_in_time=Count("id", filter=in_time(day_start)),
        day_late=Count("id", filter=late(day_start)),
        hour_in_time=Count("id", filter=in_time(hour_start)),
        hour_late=Count("id", filter=late(hour_start)),
    )
    result = {}
    for name, prefix, start in (("today", "day", day_start), ("hour", "hour", hour_start)):
        good, bad = figures[f"{prefix}_in_time"], figures[f"{prefix}_late"]
        result[name] = {
            "since": iso(start),
            "in_time": good,
            "late": bad,
            "pct": pct(good, good + bad),
        }
    return result


def _minute_of_day(moment: datetime) -> int:
    local = timezone.localtime(moment)
    return local.hour * 60 + local.minute


def usual_rates(*, start: datetime, hours: int) -> dict[int, tuple[float, float]]:
    """Posts per minute (all, negative) usual at each minute of the day from the hour
    of `start` for `hours` + 2 hours: the mean over the last USUAL_DAYS days,
    ±USUAL_HALF_WIDTH minutes around the same time of day.

    History moves slowly, so the figures are cached per hour (shared by every screen
    and process through the cache); Celery beat computes the next ones ahead
    (`wall_warm`), so a refresh never waits for them.
    """
    first = start.replace(minute=0, second=0, microsecond=0)
    last = first + timedelta(hours=hours + 2)
    key = f"servicedesk:wall:usual:{first.strftime('%Y%m%d%H')}:{hours}:{USUAL_DAYS}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    ranges = Q()
    width = timedelta(minutes=USUAL_HALF_WIDTH)
    for day in range(1, USUAL_DAYS + 1):
        shift = timedelta(days=day)
        ranges |= Q(posted_at__gte=first - shift - width, posted_at__lt=last - shift + width)
    per_minute: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    rows = (
        Mention.objects.filter(ranges)
        .annotate(hour=ExtractHour("posted_at"), minute=ExtractMinute("posted_at"))
        .values("hour", "minute")
        .annotate(
            n=Count("id"), negative=Count("id", filter=Q(ticket__sentiment=Sentiment.NEGATIVE))
        )
        .order_by()
    )
    for row in rows:
        counts = per_minute[row["hour"] * 60 + row["minute"]]
        counts[0] += row["n"]
        counts[1] += row["negative"]
    usual: dict[int, tuple[float, float]] = {}
    minute = first
    samples = USUAL_DAYS * (2 * USUAL_HALF_WIDTH + 1)
    while minute < last:
        of_day = _minute_of_day(minute)
        total = negative = 0
        for offset in range(-USUAL_HALF_WIDTH, USUAL_HALF_WIDTH + 1):
            counts = per_minute.get((of_day + offset) % 1440)
            if counts:
                total += counts[0]
                negative += counts[1]
        usual[of_day] = (total / samples, negative / samples)
        minute += timedelta(minutes=1)
    cache.set(key, usual, USUAL_CACHE_SECONDS)
    return usual


def _spike(count: int, negative: int, usual: tuple[float, float]) -> str | None:
    mean, mean_negative = usual
    if count >= SPIKE_MIN and count > mean + 3 * math.sqrt(mean):
        return "volume"
    usual_share = mean_negative / mean if mean else 0.0
    if negative >= SPIKE_MIN and negative / count > usual_share + NEGATIVE_SHARE_JUMP:
        return "negative"
    return None


def _minute_counts(since: datetime, until: datetime, start: datetime) -> dict[int, dict]:
    """Posts between since and until by minute (counted from `start`) and sentiment."""
    # Minutes since the chart's start, counted by the database: whole numbers, no
    # datetime to convert per row.
    offset = Floor((Epoch(F("posted_at")) - Value(start.timestamp())) / Value(60.0))
    rows = (
        Mention.objects.filter(posted_at__gte=since, posted_at__lt=until)
        .annotate(offset=offset)
        .values("offset", "ticket__sentiment")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[int, dict[str, int]] = {}
    for row in rows:
        sentiment = row["ticket__sentiment"]
        if sentiment in SENTIMENTS:
            by_sentiment = counts.setdefault(int(row["offset"]), {})
            by_sentiment[sentiment] = by_sentiment.get(sentiment, 0) + row["n"]
    return counts


def _mentions(now: datetime, hours: int) -> dict[str, Any]:
    """Posts per minute over the last hours by sentiment, each minute marked when it is a
    spike against the usual for that time of day."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(hours=hours)
    current = end - timedelta(minutes=1)
    # The minutes before this one are counted once a minute for every screen; this
    # minute, still filling up, on every refresh.
    key = f"servicedesk:wall:minutes:{current.strftime('%Y%m%d%H%M')}:{hours}"
    past = cache.get(key)
    if past is None:
        past = _minute_counts(start, current, start)
        cache.set(key, past, 120)
    counts: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SENTIMENTS, 0))
    for source in (past, _minute_counts(current, end, start)):
        for index, by_sentiment in source.items():
            for sentiment, n in by_sentiment.items():
                counts[index][sentiment] += n
    usual = usual_rates(start=start, hours=hours)
    minutes = []
    minute = start
    while minute < end:
        index = int((minute - start).total_seconds() // 60)
        by_sentiment = counts.get(index) or dict.fromkeys(SENTIMENTS, 0)
        total = sum(by_sentiment.values())
        expected = usual.get(_minute_of_day(minute), (0.0, 0.0))
        minutes.append(
            {
                "minute": iso(minute),
                "total": total,
                **{str(name): by_sentiment[name] for name in SENTIMENTS},
                "usual": round(expected[0], 2),
                "spike": _spike(total, by_sentiment[Sentiment.NEGATIVE], expected)
                if total
                else None,
            }
        )
        minute += timedelta(minutes=1)
    last_hour = minutes[-60:]
    return {
        "hours": hours,
        "since": iso(start),
        "minutes": minutes,
        "last_hour_total": sum(item["total"] for item in last_hour),
        "per_minute_last_hour": round(sum(item["total"] for item in last_hour) / 60, 1),
        "spikes": [item for item in minutes if item["spike"]],
    }


def _polls(platform: str) -> bool:
    from connectors.base import PermanentError
    from connectors.registry import connector_class

    try:
        return connector_class(platform).polls
    except (PermanentError, ImportError):
        return False


def channel_health(now: datetime) -> list[dict[str, Any]]:
    """Each channel's last success, lag and state: broken, stale, lagging, ok or off.

    Broken (a loud red on the wall): its latest attempt failed. Stale: a polled channel
    with no success for several poll intervals. Lagging: posts reach us slowly.
    """
    out = []
    for channel in ChannelAccount.objects.order_by("-is_active", "name"):
        last_ok = channel.last_success_at
        failed = channel.last_error_at is not None and (
            last_ok is None or channel.last_error_at > last_ok
        )
        stale_after = max(STALE_MIN_SECONDS, STALE_POLLS * channel.poll_interval_seconds)
        if not channel.is_active:
            status = "off"
        elif failed:
            status = "broken"
        elif _polls(channel.platform) and (
            last_ok is None or (now - last_ok).total_seconds() > stale_after
        ):
            status = "stale"
        elif channel.lag_seconds is not None and channel.lag_seconds > LAG_WARN_SECONDS:
            status = "lagging"
        else:
            status = "ok"
        out.append(
            {
                "name": channel.name,
                "platform": channel.platform,
                "status": status,
                "last_success_at": iso(last_ok),
                "seconds_since_success": round((now - last_ok).total_seconds())
                if last_ok
                else None,
                "lag_seconds": round(channel.lag_seconds, 1)
                if channel.lag_seconds is not None
                else None,
                "last_error": channel.last_error[:200] if failed else "",
                "last_error_at": iso(channel.last_error_at),
            }
        )
    return out


def wall_snapshot(*, hours: int | None = None) -> dict[str, Any]:
    """Everything the wall shows, by the database's clock."""
    now = db_now()
    at_risk, counts = _at_risk(now)
    breaches_today = Escalation.objects.filter(
        kind=EscalationKind.WINDOW_BREACH,
        created_at__gte=timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0),
    ).count()
    return {
        "now": iso(now),
        "tickets": {**counts, "at_risk_list": at_risk, "breaches_escalated_today": breaches_today},
        "legal": _legal_queue(now),
        "within_window": _within(now),
        "mentions": _mentions(now, hours or settings.WALL_HOURS),
        "channels": channel_health(now),
    }


def wall_warm(*, hours: int | None = None) -> None:
    """Compute the usual rates the wall needs this hour and the next (beat)."""
    now = db_now()
    hours = hours or settings.WALL_HOURS
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for ahead in (0, 1):
        usual_rates(start=end - timedelta(hours=hours) + timedelta(hours=ahead), hours=hours)
