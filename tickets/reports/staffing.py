"""Staffing by Erlang C: how many agents and lawyers each hour needs to answer a target
share of customers within the window, from measured arrivals and handle times, beside
how many were active.

Erlang C models one queue served by N people: posts arrive at random (Poisson) at rate
λ, each takes a mean handle time h, so the offered load is A = λ·h erlangs. With N > A,
the chance a post waits at all is C(N, A), and the share picked up within t seconds is
SL = 1 − C(N, A)·exp(−(N − A)·t / h). The staffing figure is the least N with SL at or
above the target share.

Measured, per hour of the day over the period:
- arrivals: cycles (customer posts to answer) per hour; for legal, submissions per hour;
- agent handle time: the answer's drafting and sending stages (the agent's own work;
  the legal wait is not), at most the time since that agent's previous answer — an
  agent cannot spend longer on one answer than the time between two of them;
- lawyer handle time: from the later of the submission and that lawyer's previous
  decision to this decision — the time the lawyer was busy with it;
- the wait the queue can afford t: for agents, the window minus the other stages'
  mean times (connector, handling, legal, publishing); for lawyers, the legal target
  minus their handle time.
- active: the mean number of distinct agents who sent an answer (lawyers who decided
  a review) in that hour.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from approvals.models import LegalReview
from tickets.models import CycleOutcome, LegalClock, LegalClockMode, ResponseCycle
from tickets.reports.common import Period, iso

MAX_STAFF = 10_000


def erlang_c(agents: int, traffic: float) -> float:
    """The probability that an arrival waits, with `agents` servers and `traffic` erlangs.

    Through Erlang B's recursion, B(n) = A·B(n−1) / (n + A·B(n−1)), which stays exact
    in floating point where factorials would overflow; then C = N·B / (N − A·(1 − B)).
    """
    if traffic <= 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = traffic * blocking / (n + traffic * blocking)
    return agents * blocking / (agents - traffic * (1 - blocking))


def service_level(agents: int, traffic: float, handle_seconds: float, target_seconds: float):
    """Share of arrivals picked up within `target_seconds`."""
    if traffic <= 0:
        return 1.0
    if agents <= traffic:
        return 0.0
    wait = erlang_c(agents, traffic)
    return 1.0 - wait * math.exp(-(agents - traffic) * target_seconds / handle_seconds)


def staff_needed(
    *,
    arrivals_per_hour: float,
    handle_seconds: float,
    target_seconds: float,
    target_share: float,
) -> int:
    """The fewest people who pick up `target_share` of arrivals within `target_seconds`."""
    if arrivals_per_hour <= 0 or handle_seconds <= 0:
        return 0
    traffic = arrivals_per_hour * handle_seconds / 3600
    agents = max(1, math.floor(traffic) + 1)
    while agents < MAX_STAFF:
        if service_level(agents, traffic, handle_seconds, max(target_seconds, 0.0)) >= (
            target_share
        ):
            return agents
        agents += 1
    return MAX_STAFF


def _hour_of_day(moment: datetime) -> int:
    return timezone.localtime(moment).hour


def _hours_in_period(period: Period) -> dict[int, float]:
    """How many of each hour of the day the period holds (partial hours in part)."""
    occurrences: dict[int, float] = defaultdict(float)
    moment = period.since
    while moment < period.until:
        local = timezone.localtime(moment)
        top = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        end = min(top, period.until)
        occurrences[local.hour] += (end - moment).total_seconds() / 3600
        moment = end
    return occurrences


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def staffing_table(*, period: Period, target_pct: int | None = None) -> dict[str, Any]:
    """Per hour of the day: arrivals, handle times, people needed and people active."""
    target_share = (target_pct or settings.STAFFING_TARGET_PCT) / 100
    clock = LegalClock.objects.filter(id=1).first() or LegalClock()
    hours = _hours_in_period(period)
    per_hour: dict[int, dict[str, Any]] = defaultdict(
        lambda: {
            "arrivals": 0,
            "handle": [],
            "window": [],
            "other": [],
            "time_left_at_submission": [],
            "agents_active": set(),
        }
    )
    cycles = (
        ResponseCycle.objects.filter(posted_at__gte=period.since, posted_at__lt=period.until)
        .exclude(outcome=CycleOutcome.IGNORED)
        .values_list(
            "posted_at",
            "outcome",
            "agent_id",
            "sent_at",
            "window_seconds",
            "connector_seconds",
            "drafting_seconds",
            "sending_seconds",
            "legal_seconds",
            "publishing_seconds",
            "submitted_at",
            "deadline",
        )
        .order_by("agent_id", "sent_at")
    )
    previous_send: dict[int, datetime] = {}
    for (
        posted_at,
        outcome,
        agent_id,
        sent_at,
        window,
        connector,
        drafting,
        sending,
        legal,
        publishing,
        submitted_at,
        deadline,
    ) in cycles.iterator(chunk_size=5000):
        bucket = per_hour[_hour_of_day(posted_at)]
        bucket["arrivals"] += 1
        bucket["window"].append(window)
        if submitted_at is not None:
            bucket["time_left_at_submission"].append(
                max((deadline - submitted_at).total_seconds(), 0.0)
            )
        if outcome != CycleOutcome.ANSWERED or agent_id is None or sent_at is None:
            continue
        work = (drafting or 0.0) + (sending or 0.0)
        before = previous_send.get(agent_id)
        if before is not None and sent_at > before:
            work = min(work, (sent_at - before).total_seconds())
        previous_send[agent_id] = sent_at
        bucket["handle"].append(work)
        bucket["other"].append((connector or 0.0) + (legal or 0.0) + (publishing or 0.0))
        sent_hour = timezone.localtime(sent_at).replace(minute=0, second=0, microsecond=0)
        per_hour[sent_hour.hour]["agents_active"].add((sent_hour, agent_id))

    legal_hour: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"arrivals": 0, "handle": [], "active": set()}
    )
    previous_decision: dict[int, datetime] = {}
    reviews = (
        LegalReview.objects.filter(submitted_at__gte=period.since, submitted_at__lt=period.until)
        .values_list("reviewer_id", "submitted_at", "created_at")
        .order_by("reviewer_id", "created_at")
    )
    for reviewer_id, submitted_at, decided_at in reviews.iterator(chunk_size=5000):
        bucket = legal_hour[_hour_of_day(submitted_at)]
        bucket["arrivals"] += 1
        start = max(submitted_at, previous_decision.get(reviewer_id, submitted_at))
        bucket["handle"].append(max((decided_at - start).total_seconds(), 0.0))
        previous_decision[reviewer_id] = decided_at
        decided_hour = timezone.localtime(decided_at).replace(minute=0, second=0, microsecond=0)
        legal_hour[decided_hour.hour]["active"].add((decided_hour, reviewer_id))

    rows = []
    for hour in range(24):
        occurrences = hours.get(hour, 0.0)
        desk, legal = per_hour.get(hour), legal_hour.get(hour)
        row: dict[str, Any] = {"hour": hour, "hours_measured": round(occurrences, 2)}
        arrivals = desk["arrivals"] / occurrences if desk and occurrences else 0.0
        handle = _mean(desk["handle"]) if desk else None
        window = _mean(desk["window"]) if desk else None
        other = _mean(desk["other"]) if desk else None
        target = max((window or 0.0) - (other or 0.0) - (handle or 0.0), 0.0)
        row.update(
            arrivals_per_hour=round(arrivals, 2),
            agent_handle_seconds=round(handle, 1) if handle is not None else None,
            agent_wait_budget_seconds=round(target, 1) if window is not None else None,
            agents_needed=staff_needed(
                arrivals_per_hour=arrivals,
                handle_seconds=handle or 0.0,
                target_seconds=target,
                target_share=target_share,
            ),
            agents_active=round(len(desk["agents_active"]) / occurrences, 2)
            if desk and occurrences
            else 0.0,
        )
        reviews_per_hour = legal["arrivals"] / occurrences if legal and occurrences else 0.0
        review_handle = _mean(legal["handle"]) if legal else None
        if clock.mode == LegalClockMode.MINUTES:
            legal_target = clock.minutes * 60.0
        else:
            left = _mean(desk["time_left_at_submission"]) if desk else None
            legal_target = (left or 0.0) * clock.share_pct / 100
        review_budget = max(legal_target - (review_handle or 0.0), 0.0)
        row.update(
            reviews_per_hour=round(reviews_per_hour, 2),
            review_handle_seconds=round(review_handle, 1) if review_handle is not None else None,
            review_wait_budget_seconds=round(review_budget, 1),
            reviewers_needed=staff_needed(
                arrivals_per_hour=reviews_per_hour,
                handle_seconds=review_handle or 0.0,
                target_seconds=review_budget,
                target_share=target_share,
            ),
            reviewers_active=round(len(legal["active"]) / occurrences, 2)
            if legal and occurrences
            else 0.0,
        )
        rows.append(row)
    return {
        "since": iso(period.since),
        "until": iso(period.until),
        "target_pct": round(target_share * 100),
        "time_zone": settings.TIME_ZONE,
        "hours": rows,
        "peak_agents_needed": max((row["agents_needed"] for row in rows), default=0),
        "peak_reviewers_needed": max((row["reviewers_needed"] for row in rows), default=0),
    }
