"""What every supervision figure shares: who may read it, the period, percentiles."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from servicedesk.errors import InvalidInput, RoleRequired
from servicedesk.roles import LEGAL, SUPERVISOR, has_role

DEFAULT_DAYS = 7
MAX_DAYS = 400
PERCENTILES = (50, 90, 99)


def require_supervisor(user) -> None:
    if not has_role(user, SUPERVISOR):
        raise RoleRequired("Only supervisors can read latency reports and the wall.")


def require_evidence_reader(user) -> None:
    if not has_role(user, SUPERVISOR, LEGAL):
        raise RoleRequired("Only supervisors and legal can read a ticket's evidence.")


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime

    @property
    def days(self) -> float:
        return (self.until - self.since).total_seconds() / 86400


def _bad(name: str, message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_filter", field=name)


def _moment(name: str, raw: str, *, end_of_day: bool) -> datetime:
    """An ISO 8601 date or date-time; a date alone is the start of that day (or, for an
    end, the start of the next, so `until=2026-03-31` includes the 31st). Without an
    offset the desk's time zone is meant."""
    value = raw.strip()
    if "\x00" in value or len(value) > 40:
        raise _bad(name, f"'{name}' is not a date or date-time.")
    # A '+' in an unencoded query string arrives as a space.
    value = re.sub(r" (\d\d:?\d\d)$", r"+\1", value)
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            if day is None:
                raise ValueError(value)
            if end_of_day:
                day = day + timedelta(days=1)
            moment = datetime.combine(day, time.min)
    except (ValueError, OverflowError):
        raise _bad(
            name, f"'{name}' must be an ISO 8601 date or date-time, e.g. 2026-03-01T09:00Z."
        ) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def period_parse(*, since: str | None, until: str | None, now: datetime) -> Period:
    """The report's period from the query string: the last DEFAULT_DAYS days by default.

    A value that is not a date, a period that ends before it starts, or one longer than
    MAX_DAYS is the user's mistake: InvalidInput with code `invalid_filter`.
    """
    end = _moment("until", until, end_of_day=True) if until else now
    start = (
        _moment("since", since, end_of_day=False) if since else end - timedelta(days=DEFAULT_DAYS)
    )
    if start >= end:
        raise _bad("since", "'since' must be before 'until'.")
    if end - start > timedelta(days=MAX_DAYS):
        raise _bad("since", f"A report covers at most {MAX_DAYS} days.")
    return Period(start, end)


def nearest_rank(histogram: Iterable[tuple[int, int]], total: int, percent: int) -> int | None:
    """The nearest-rank percentile: the smallest value with at least `percent`% of all
    values at or below it, i.e. the ⌈percent·n/100⌉-th smallest.

    `histogram` holds (value, how many) pairs in ascending order of value.
    """
    if total <= 0:
        return None
    rank = max(1, -(-percent * total // 100))  # integer ceiling: no float rounding
    seen = 0
    for value, count in histogram:
        seen += count
        if seen >= rank:
            return value
    return None


def percentiles(histogram: list[tuple[int, int]]) -> dict[str, int | None]:
    ordered = sorted(histogram)
    total = sum(count for _, count in ordered)
    return {f"p{p}": nearest_rank(ordered, total, p) for p in PERCENTILES}


def pct(part: int | float, whole: int | float) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def iso(moment: datetime | date | None) -> str | None:
    return moment.isoformat() if moment is not None else None
