"""Latency figures over the response cycles (tickets/cycles.py): where the minutes went.

Definitions (the README repeats them):
- A cycle counts in a period when its customer's post (`posted_at`) falls in it.
- First-response time = our answer on the platform − the customer's post. Percentiles
  are nearest-rank over the answered cycles, in whole seconds (fractions dropped
  before ranking): p90 is the smallest time with at least 90% of answers at or below.
- % within window = answered by the deadline / (answered + still waiting past the
  deadline by the database's clock). Cycles closed or ignored without an answer, and
  those still inside their window, count in neither.
- A stage's figures cover the cycles in which it happened; the stages of a cycle add up
  to its first-response time.

How: counts and sums come from the per-day sums the latency record keeps (LatencyDay),
with the cycles themselves only for the part-days at the ends of the period; the
percentiles rank the period's answers from histograms of whole seconds, the days' kept
with their sums, the part-days' counted from the cycles.
"""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import Coalesce, Floor, Now, TruncDay, TruncHour
from django.utils import timezone

from approvals.pii import mask_text
from connectors.models import ChannelAccount
from servicedesk.errors import InvalidInput
from tickets.clock import Epoch
from tickets.cycles import (
    DIMENSIONS,
    STAGE_LABELS,
    STAGE_NAMES,
    SUM_FIELDS,
    cycle_histograms,
    cycle_sums,
    day_bounds,
)
from tickets.models import CycleOutcome, LatencyDay, ResponseCycle, SupervisionState
from tickets.reports.common import PERCENTILES, Period, iso, pct, percentiles

GROUP_BY = ("stage", "channel", "agent", "reviewer", "regulated", "template")
INTERVALS = ("hour", "day")
STAGE_FIELDS = SUM_FIELDS
_KEYS = DIMENSIONS


def group_by_parse(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value not in GROUP_BY:
        raise InvalidInput(
            f"'group_by' must be one of: {', '.join(GROUP_BY)}.",
            code="invalid_filter",
            field="group_by",
        )
    return value


def interval_parse(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value not in INTERVALS:
        raise InvalidInput(
            "'interval' must be hour or day.", code="invalid_filter", field="interval"
        )
    return value


def _in_period(period: Period) -> QuerySet[ResponseCycle]:
    return ResponseCycle.objects.filter(posted_at__gte=period.since, posted_at__lt=period.until)


def _answered(period: Period) -> QuerySet[ResponseCycle]:
    return _in_period(period).filter(outcome=CycleOutcome.ANSWERED, response_seconds__isnull=False)


def _waiting_breached(period: Period) -> QuerySet[ResponseCycle]:
    return _in_period(period).filter(outcome=CycleOutcome.PENDING, deadline__lt=Now())


def _key(value) -> int:
    return 0 if value is None else int(value)


# ---- sums: whole days from LatencyDay, part-days from the cycles --------------------------


def _pieces(period: Period) -> tuple[list[date], list[tuple[datetime, datetime, date]]]:
    """The period as whole local days, and the part-days (start, end, day) at its ends."""
    days: list[date] = []
    parts: list[tuple[datetime, datetime, date]] = []
    day = timezone.localdate(period.since)
    while True:
        start, end = day_bounds(day)
        if start >= period.until:
            break
        if start >= period.since and end <= period.until:
            days.append(day)
        else:
            parts.append((max(start, period.since), min(end, period.until), day))
        day += timedelta(days=1)
    return days, parts


def _zero() -> dict[str, float]:
    return {"n": 0, "within": 0, "acked": 0, "total": 0.0, "window": 0.0} | dict.fromkeys(
        SUM_FIELDS, 0.0
    )


def _add(into: dict[str, float], sums: dict[str, float]) -> None:
    for name, value in sums.items():
        if name in into:
            into[name] += value or 0


def period_sums(period: Period, dimension: str) -> dict[int, dict[str, float]]:
    """Counts and sums of the period's answers per key of `dimension`."""
    out: dict[int, dict[str, float]] = defaultdict(_zero)
    days, parts = _pieces(period)
    if days:
        rows = LatencyDay.objects.filter(
            dimension=dimension, day__gte=days[0], day__lte=days[-1]
        ).values("key", *_zero())
        for row in rows:
            _add(out[row.pop("key")], row)
    for start, end, _ in parts:
        cycles = ResponseCycle.objects.filter(posted_at__gte=start, posted_at__lt=end)
        for key, sums in cycle_sums(cycles, dimension).items():
            _add(out[key], sums)
    return out


def _series_sums(period: Period, interval: str) -> dict[datetime, dict[str, float]]:
    """Counts and sums per day or per hour of the period."""
    out: dict[datetime, dict[str, float]] = defaultdict(_zero)
    dimension = "hour" if interval == "hour" else "all"

    def bucket(day: date, key: int) -> datetime:
        start, _ = day_bounds(day)
        return start + timedelta(hours=key) if interval == "hour" else start

    days, parts = _pieces(period)
    if days:
        rows = LatencyDay.objects.filter(
            dimension=dimension, day__gte=days[0], day__lte=days[-1]
        ).values("day", "key", *_zero())
        for row in rows:
            day, key = row.pop("day"), row.pop("key")
            _add(out[bucket(day, key)], row)
    for start, end, day in parts:
        cycles = ResponseCycle.objects.filter(posted_at__gte=start, posted_at__lt=end)
        for key, sums in cycle_sums(cycles, dimension).items():
            _add(out[bucket(day, key)], sums)
    return out


# ---- percentiles --------------------------------------------------------------------------
#
# On PostgreSQL percentile_disc(f) is the first value whose position reaches f·n, i.e.
# the ⌈f·n⌉-th smallest: the nearest rank. It ranks the exact durations; floor() of that
# equals the nearest rank of the floored durations (floor never reorders), so both paths
# give the same whole seconds.

_TABLE = ResponseCycle._meta.db_table
_RANKS = "percentile_disc(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY {})"
_ANSWERED_SQL = (
    f"FROM {_TABLE} WHERE posted_at >= %s AND posted_at < %s "
    "AND outcome = 'answered' AND response_seconds IS NOT NULL"
)
_NO_RANKS = {"p50": None, "p90": None, "p99": None}


def _pg_settings() -> None:
    """For this transaction only: room to sort a month of durations in memory, and no
    plain index scans: a period's answers are read in table order and sorted, never
    fetched one by one through an index on the grouping key (random reads)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('work_mem', %s, true), set_config('enable_indexscan', 'off', true)",
            [settings.REPORT_WORK_MEM],
        )


def _pg_ranks(values) -> dict[str, int | None]:
    if not values:
        return dict(_NO_RANKS)
    return {f"p{p}": int(math.floor(value)) for p, value in zip(PERCENTILES, values, strict=True)}


def _histogram_ranks(queryset: QuerySet, key, field: str) -> dict[Any, dict[str, int | None]]:
    """Nearest ranks per key from a histogram of whole seconds (one GROUP BY)."""
    histograms: dict[Any, list[tuple[int, int]]] = defaultdict(list)
    rows = (
        queryset.filter(**{f"{field}__isnull": False})
        .annotate(k=key, s=Floor(field))
        .values("k", "s")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        histograms[row["k"]].append((int(row["s"]), row["n"]))
    return {key: percentiles(histogram) for key, histogram in histograms.items()}


_DAYS_HISTOGRAM_SQL = f"""
SELECT d.key, e.key::integer, SUM(e.value::bigint)
FROM {LatencyDay._meta.db_table} AS d, jsonb_each_text(d.histogram) AS e
WHERE d.dimension = %s AND d.day >= %s AND d.day <= %s
GROUP BY d.key, e.key::integer
"""  # noqa: S608 (constants)


def _histograms(period: Period, dimension: str) -> dict[int, Counter]:
    """The period's answers per key of `dimension` as histograms of whole seconds: the
    whole days' from LatencyDay, the part-days' counted from the cycles."""
    out: dict[int, Counter] = defaultdict(Counter)
    days, parts = _pieces(period)
    if days and connection.vendor == "postgresql":
        # Added up in the database: a month of agents' days is a million (seconds, n)
        # pairs, and only the merged ones travel.
        with connection.cursor() as cursor:
            cursor.execute(_DAYS_HISTOGRAM_SQL, [dimension, days[0], days[-1]])
            for key, seconds, n in cursor.fetchall():
                # SUM gives a numeric (Decimal): made an int, or the nearest rank's
                # integer ceiling would truncate instead (Decimal's // does).
                out[key][seconds] = int(n)
    elif days:
        rows = LatencyDay.objects.filter(
            dimension=dimension, day__gte=days[0], day__lte=days[-1]
        ).values_list("key", "histogram")
        for key, histogram in rows:
            counter = out[key]
            for seconds, n in histogram.items():
                counter[int(seconds)] += n
    for start, end, _ in parts:
        cycles = ResponseCycle.objects.filter(posted_at__gte=start, posted_at__lt=end)
        for key, histogram in cycle_histograms(cycles, dimension).items():
            out[key].update(histogram)
    return out


OVERALL = "overall"


def _ranks(period: Period, group_by: str | None) -> dict[Any, dict[str, int | None]]:
    """p50/p90/p99 of the first-response time per group key (as _key gives it), and
    OVERALL; for `stage`, per stage name and OVERALL."""
    overall = _histograms(period, "all").get(0)
    result: dict[Any, dict[str, int | None]] = {
        OVERALL: percentiles(list(overall.items())) if overall else dict(_NO_RANKS)
    }
    if group_by == "stage":
        stages = _histograms(period, "stage")
        for index, name in enumerate(SUM_FIELDS):
            histogram = stages.get(index)
            result[name] = percentiles(list(histogram.items())) if histogram else dict(_NO_RANKS)
    elif group_by in _KEYS:
        for key, histogram in _histograms(period, group_by).items():
            result[key] = percentiles(list(histogram.items()))
    return result


# ---- figures ------------------------------------------------------------------------------


def _figures(sums: dict[str, float], ranks: dict[str, int | None], waiting: int) -> dict:
    n = sums["n"]
    return {
        "count": n,
        **ranks,
        "mean_seconds": round(sums["total"] / n, 1) if n else None,
        "within_window_pct": pct(sums["within"], n + waiting),
        "breached_waiting": waiting,
        "late_answers": n - sums["within"],
        "acknowledged_in_window": sums["acked"],
    }


def _stage_breakdown(sums: dict[str, float]) -> list[dict[str, Any]]:
    """Mean seconds per answered cycle spent in each stage (a stage that did not happen
    counts as 0, so the means add up to the mean first-response time)."""
    n = sums["n"]
    return [
        {
            "stage": name,
            "label": STAGE_LABELS[name],
            "mean_seconds": round(sums[name] / n, 1) if n else None,
            "share_of_window_pct": pct(sums[name], sums["window"]),
        }
        for name in STAGE_NAMES
    ]


def _labels(group_by: str, keys: set[int]) -> dict[int, str]:
    if group_by == "channel":
        return dict(ChannelAccount.objects.filter(pk__in=keys).values_list("pk", "name"))
    if group_by in ("agent", "reviewer"):
        names = dict(get_user_model().objects.filter(pk__in=keys).values_list("pk", "username"))
        names[0] = "(not answered yet)" if group_by == "agent" else "(no legal review)"
        return names
    if group_by == "regulated":
        return {1: "regulated", 0: "not regulated"}
    if group_by == "template":
        return {1: "approved template", 0: "free text"}
    return {}


def _json_key(group_by: str, key: int) -> Any:
    if group_by == "regulated":
        return "regulated" if key else "not_regulated"
    if group_by == "template":
        return "template" if key else "free_text"
    return key or None


def latency_report(
    *,
    period: Period,
    group_by: str | None = None,
    interval: str | None = None,
    series_percentiles: bool = True,
) -> dict[str, Any]:
    """The latency figures of a period, overall and by group (see the module docstring)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _pg_settings()
        ranks = _ranks(period, group_by)
        overall = period_sums(period, "all").get(0) or _zero()
        waiting = _waiting_breached(period)
        result: dict[str, Any] = {
            "since": iso(period.since),
            "until": iso(period.until),
            "as_of": iso(
                SupervisionState.objects.filter(id=1)
                .values_list("cycles_refreshed_at", flat=True)
                .first()
            ),
            **_figures(overall, ranks.get(OVERALL, _NO_RANKS), waiting.count()),
            "stages": _stage_breakdown(overall),
            "group_by": group_by,
            "groups": [],
        }
        if group_by == "stage":
            stage_sums = period_sums(period, "stage")
            for index, name in enumerate(STAGE_NAMES):
                sums = stage_sums.get(index) or _zero()
                result["groups"].append(
                    {
                        "key": name,
                        "label": STAGE_LABELS[name],
                        "count": sums["n"],
                        **ranks.get(name, _NO_RANKS),
                        "mean_seconds": round(sums["total"] / sums["n"], 1) if sums["n"] else None,
                        "within_window_pct": pct(sums["within"], sums["n"]),
                        "share_of_window_pct": pct(sums["total"], sums["window"]),
                    }
                )
        elif group_by is not None:
            groups = period_sums(period, group_by)
            waiting_by_key: dict[int, int] = defaultdict(int)
            for row in waiting.values(k=F(_KEYS[group_by])).annotate(n=Count("id")).order_by():
                waiting_by_key[_key(row["k"])] += row["n"]
            keys = set(groups) | set(waiting_by_key)
            labels = _labels(group_by, keys)
            ordered = sorted(
                keys, key=lambda key: (-(groups[key]["n"] if key in groups else 0), key)
            )
            result["groups"] = [
                {
                    "key": _json_key(group_by, key),
                    "label": labels.get(key, str(key)),
                    **_figures(
                        groups.get(key) or _zero(),
                        ranks.get(key, _NO_RANKS),
                        waiting_by_key.get(key, 0),
                    ),
                    "stages": _stage_breakdown(groups.get(key) or _zero()),
                }
                for key in ordered
            ]
        if interval is not None:
            result["interval"] = interval
            result["series"] = latency_series(
                period=period, interval=interval, with_percentiles=series_percentiles
            )
    return result


# ---- time series --------------------------------------------------------------------------


def _series_ranks(period: Period, interval: str) -> dict[datetime, dict[str, int | None]]:
    """p50/p90/p99 per bucket (a sort per bucket on PostgreSQL; a histogram elsewhere)."""
    trunc = TruncHour("posted_at") if interval == "hour" else TruncDay("posted_at")
    answered = _answered(period)
    if connection.vendor == "postgresql":
        inner = answered.annotate(b=trunc).values("b", "response_seconds").order_by()
        sql, params = inner.query.sql_with_params()
        wrapped = (
            "SELECT sub.b, "  # noqa: S608 (our own compiled query)
            + _RANKS.format("sub.response_seconds")
            + f" FROM ({sql}) sub GROUP BY sub.b"
        )
        with connection.cursor() as cursor:
            cursor.execute(wrapped, params)
            # The ORM makes the truncated time aware in the current zone; so must we.
            return {
                (timezone.make_aware(bucket) if timezone.is_naive(bucket) else bucket): _pg_ranks(
                    ranks
                )
                for bucket, ranks in cursor.fetchall()
            }
    return _histogram_ranks(answered, trunc, "response_seconds")


def latency_series(
    *, period: Period, interval: str, with_percentiles: bool = True
) -> list[dict[str, Any]]:
    """Per hour or day: how many answers, % within window, the mean seconds per stage
    (the stacked chart of where the minutes went) and, unless told not to, percentiles
    (they cost a sort per bucket)."""
    sums = _series_sums(period, interval)
    trunc = TruncHour("posted_at") if interval == "hour" else TruncDay("posted_at")
    waiting = {
        row["b"]: row["n"]
        for row in _waiting_breached(period)
        .annotate(b=trunc)
        .values("b")
        .annotate(n=Count("id"))
        .order_by()
    }
    ranks = _series_ranks(period, interval) if with_percentiles else {}
    out = []
    for bucket in sorted(set(sums) | set(waiting)):
        row = sums.get(bucket) or _zero()
        n = row["n"]
        out.append(
            {
                "start": iso(bucket),
                "count": n,
                **ranks.get(bucket, _NO_RANKS),
                "mean_seconds": round(row["total"] / n, 1) if n else None,
                "within_window_pct": pct(row["within"], n + waiting.get(bucket, 0)),
                "breached_waiting": waiting.get(bucket, 0),
                "stages": {name: round(row[name] / n, 1) if n else None for name in STAGE_NAMES},
            }
        )
    return out


# ---- the rows behind the figures ---------------------------------------------------------


def _excerpt(mention) -> str:
    if mention is None:
        return ""
    text = mask_text(mention.text or "", (mention.screening or {}).get("pii") or [])
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= 140 else first[:139].rstrip() + "…"


def _cycle_dict(cycle: ResponseCycle, *, late_seconds: float | None = None) -> dict[str, Any]:
    return {
        "ticket": cycle.ticket_id,
        "cycle": cycle.number,
        "channel": cycle.channel.name,
        "platform": cycle.channel.platform,
        "priority": cycle.priority,
        "outcome": cycle.outcome,
        "regulated": cycle.regulated,
        "template": cycle.from_template,
        "agent": cycle.agent.username if cycle.agent_id else None,
        "reviewer": cycle.reviewer.username if cycle.reviewer_id else None,
        "posted_at": iso(cycle.posted_at),
        "deadline": iso(cycle.deadline),
        "received_at": iso(cycle.received_at),
        "claimed_at": iso(cycle.claimed_at),
        "submitted_at": iso(cycle.submitted_at),
        "decided_at": iso(cycle.decided_at),
        "acknowledged_at": iso(cycle.acknowledged_at),
        "sent_at": iso(cycle.sent_at),
        "replied_at": iso(cycle.replied_at),
        "window_seconds": cycle.window_seconds,
        "response_seconds": cycle.response_seconds,
        "within_window": cycle.within_window,
        "late_seconds": late_seconds,
        "stages": {name: getattr(cycle, field) for name, field in STAGE_FIELDS.items()},
        "legal_wait_seconds": cycle.legal_wait_seconds,
        "reviews": cycle.reviews,
        "first_post": _excerpt(cycle.mention),
    }


def _with_relations(queryset: QuerySet[ResponseCycle]) -> QuerySet[ResponseCycle]:
    return queryset.select_related("channel", "agent", "reviewer", "mention").only(
        *[f.name for f in ResponseCycle._meta.concrete_fields],
        "channel__name",
        "channel__platform",
        "agent__username",
        "reviewer__username",
        "mention__text",
        "mention__screening",
    )


def breaches_list(*, period: Period, limit: int = 100, total: int | None = None) -> dict[str, Any]:
    """The period's breaches, latest post first, each with its stage breakdown: answers
    that came after the deadline, and cycles still waiting past it. A caller that has
    the report already passes the total (late answers + waiting past the deadline)."""
    queryset = _in_period(period).filter(
        Q(outcome=CycleOutcome.ANSWERED, within_window=False)
        | Q(outcome=CycleOutcome.PENDING, deadline__lt=Now())
    )
    if total is None:
        total = queryset.count()
    rows = _with_relations(queryset).annotate(
        late=Epoch(Coalesce("replied_at", Now())) - Epoch(F("deadline"))
    )
    items = [
        _cycle_dict(cycle, late_seconds=round(cycle.late, 1))
        for cycle in rows.order_by("-posted_at", "-id")[:limit]
    ]
    return {"count": total, "results": items}


EXPORT_COLUMNS = (
    "ticket",
    "cycle",
    "channel",
    "platform",
    "priority",
    "outcome",
    "regulated",
    "template",
    "agent",
    "reviewer",
    "posted_at",
    "deadline",
    "received_at",
    "claimed_at",
    "submitted_at",
    "decided_at",
    "acknowledged_at",
    "sent_at",
    "replied_at",
    "window_seconds",
    "response_seconds",
    "within_window",
    *[f"{name}_seconds" for name in STAGE_NAMES],
    "legal_wait_seconds",
    "reviews",
    "first_post",
)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_safe(value: Any) -> Any:
    """Cells a spreadsheet would run as a formula start with a quote instead."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def latency_export(*, period: Period) -> Iterator[str]:
    """Every cycle of the period as CSV lines (answered, waiting, closed, ignored): the
    rows behind every figure. Personal data in the first post is masked."""
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    queryset = _with_relations(_in_period(period)).order_by("posted_at", "id")
    for cycle in queryset.iterator(chunk_size=2000):
        row = _cycle_dict(cycle)
        stages = row.pop("stages")
        row.update({f"{name}_seconds": value for name, value in stages.items()})
        yield writer.writerow([_csv_safe(row.get(column)) for column in EXPORT_COLUMNS])
