"""Latency figures checked against values computed by hand on fixed data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import ChannelFactory
from tests.supervision.conftest import T0, customer_post, cycle
from tickets.models import ResponseCycle
from tickets.reports import Period, latency_report, nearest_rank

pytestmark = pytest.mark.django_db

PERIOD = {"since": "2026-03-02T08:00:00Z", "until": "2026-03-03"}
SIM = [30, 45, 60, 90, 120, 300, 600, 1200, 3000, 4000]  # one answer past its 3600 s window
X = [100, 200, 300]


def test_nearest_rank_is_the_ceil_rank_smallest_value():
    values = [(value, 1) for value in [15, 20, 35, 40, 50]]

    assert nearest_rank(values, 5, 30) == 20  # rank ⌈1.5⌉ = 2
    assert nearest_rank(values, 5, 40) == 20  # rank ⌈2.0⌉ = 2, not 3
    assert nearest_rank(values, 5, 50) == 35
    assert nearest_rank(values, 5, 100) == 50
    assert nearest_rank([], 0, 50) is None


def test_nearest_rank_counts_repeated_values():
    assert nearest_rank([(10, 9), (500, 1)], 10, 90) == 10
    assert nearest_rank([(10, 9), (500, 1)], 10, 91) == 500


@pytest.fixture
def fixed(desk, refresh):
    """Ten answers on the simulated channel, three on X, one post still waiting past its
    deadline, one waiting inside it, one closed unanswered — all posted on 2 March."""
    sim = customer_post(desk["channel"])
    x_channel = ChannelFactory(name="x-main", platform="x")
    x = customer_post(x_channel)
    refresh()  # the tickets' own first cycles (posted now) sit outside the period
    number = 2
    for index, seconds in enumerate(SIM):
        cycle(sim, number, response=seconds, posted_at=T0 + timedelta(minutes=index))
        number += 1
    for seconds in X:
        cycle(x, number, response=seconds, regulated=True)
        number += 1
    cycle(sim, number, response=None, outcome="pending")  # deadline long past
    cycle(sim, number + 1, response=None, outcome="closed")
    return {"sim": sim, "x": x}


def test_overall_figures_match_hand_computed_values(fixed, api, desk):
    response = api(desk["supervisor"]).get("/api/v1/metrics/latency/", PERIOD)

    assert response.status_code == 200
    body = response.json()
    # 13 answers: 30 45 60 90 100 120 200 300 300 600 1200 3000 4000
    assert body["count"] == 13
    assert body["p50"] == 200  # rank ⌈6.5⌉ = 7
    assert body["p90"] == 3000  # rank ⌈11.7⌉ = 12
    assert body["p99"] == 4000  # rank ⌈12.87⌉ = 13
    # 12 answered in time, of 13 answered + 1 still waiting past its deadline
    assert body["breached_waiting"] == 1
    assert body["within_window_pct"] == 85.7
    assert body["mean_seconds"] == round(sum(SIM + X) / 13, 1)


def test_groups_by_channel_match_hand_computed_values(fixed, api, desk):
    body = (
        api(desk["supervisor"])
        .get("/api/v1/metrics/latency/", {**PERIOD, "group_by": "channel"})
        .json()
    )

    groups = {group["key"]: group for group in body["groups"]}
    sim = groups[fixed["sim"].channel_id]
    assert (sim["label"], sim["count"], sim["p50"], sim["p90"], sim["p99"]) == (
        "sim",
        10,
        120,  # rank 5
        3000,  # rank 9
        4000,  # rank ⌈9.9⌉ = 10
    )
    assert sim["within_window_pct"] == 81.8  # 9 of 10 + 1 waiting
    x = groups[fixed["x"].channel_id]
    assert (x["label"], x["count"], x["p50"], x["p90"], x["p99"]) == ("x-main", 3, 200, 300, 300)
    assert x["within_window_pct"] == 100.0
    assert body["count"] == 13
    assert body["p50"] == 200


def test_groups_by_regulated_use_readable_keys(fixed, api, desk):
    body = (
        api(desk["supervisor"])
        .get("/api/v1/metrics/latency/", {**PERIOD, "group_by": "regulated"})
        .json()
    )

    groups = {group["key"]: (group["count"], group["p50"]) for group in body["groups"]}
    assert groups == {"not_regulated": (10, 120), "regulated": (3, 200)}


def test_fractions_of_a_second_are_dropped_before_ranking(desk, refresh):
    ticket = customer_post(desk["channel"])
    refresh()
    for number, seconds in enumerate([59.9, 60.2, 61.7], start=2):
        cycle(ticket, number, response=seconds)

    report = latency_report(period=Period(T0 - timedelta(hours=1), T0 + timedelta(hours=1)))

    assert (report["p50"], report["p90"], report["p99"]) == (60, 61, 61)


def test_stage_groups_give_each_stage_its_percentiles_and_share_of_the_window(desk, refresh, api):
    ticket = customer_post(desk["channel"])
    refresh()
    # queue 10/20/30/40 s; legal review on two of them, 600 and 1200 s of 3600 s windows
    rows = [(10, None), (20, 600), (30, None), (40, 1200)]
    for number, (queue, legal) in enumerate(rows, start=2):
        cycle(
            ticket,
            number,
            response=queue + (legal or 0) + 5,
            queue_seconds=queue,
            legal_seconds=legal,
            publishing_seconds=5,
        )

    body = (
        api(desk["supervisor"])
        .get("/api/v1/metrics/latency/", {**PERIOD, "group_by": "stage"})
        .json()
    )

    stages = {group["key"]: group for group in body["groups"]}
    assert [group["key"] for group in body["groups"]] == [
        "connector",
        "queue",
        "drafting",
        "legal",
        "sending",
        "publishing",
    ]
    assert (stages["queue"]["count"], stages["queue"]["p50"], stages["queue"]["p90"]) == (
        4,
        20,
        40,
    )
    assert (stages["legal"]["count"], stages["legal"]["p50"], stages["legal"]["p99"]) == (
        2,
        600,
        1200,
    )
    assert stages["legal"]["share_of_window_pct"] == 25.0  # 1800 of 7200 s
    assert stages["drafting"]["count"] == 0
    # Where the minutes went, per answer: the stage means add up to the mean response.
    means = {item["stage"]: item["mean_seconds"] for item in body["stages"]}
    assert means["legal"] == 450.0  # 1800 s over 4 answers
    assert sum(means.values()) == pytest.approx(body["mean_seconds"])


def test_series_per_day_split_the_answers_by_day(desk, refresh):
    ticket = customer_post(desk["channel"])
    refresh()
    for number, (day, seconds) in enumerate([(0, 100), (0, 300), (1, 50), (1, 4000)], start=2):
        cycle(ticket, number, response=seconds, posted_at=T0 + timedelta(days=day))

    report = latency_report(
        period=Period(T0 - timedelta(hours=9), T0 + timedelta(days=2)), interval="day"
    )

    series = [
        (item["count"], item["p50"], item["p90"], item["within_window_pct"])
        for item in report["series"]
    ]
    assert series == [(2, 100, 300, 100.0), (2, 50, 4000, 50.0)]


@pytest.mark.django_db
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(min_value=0, max_value=4 * 24 * 60),
    length=st.integers(min_value=1, max_value=4 * 24 * 60),
)
def test_property_whole_days_summed_ahead_give_the_same_figures_as_the_cycles(
    days_of_answers, start, length
):
    """Reports add per-day sums for whole days and the cycles themselves for part-days:
    the figures must equal those counted from the cycles, for any period."""
    from tickets.cycles import cycle_sums
    from tickets.reports.latency import period_sums

    period = Period(T0 + timedelta(minutes=start), T0 + timedelta(minutes=start + length))
    cycles = ResponseCycle.objects.filter(posted_at__gte=period.since, posted_at__lt=period.until)

    for dimension in ("all", "channel", "regulated", "stage", "hour"):
        expected = cycle_sums(cycles, dimension)
        got = {key: value for key, value in period_sums(period, dimension).items() if value["n"]}
        assert set(got) == set(expected), dimension
        for key, sums in expected.items():
            for name, value in sums.items():
                assert got[key][name] == pytest.approx(value), (dimension, key, name)


@pytest.fixture
def days_of_answers(desk, refresh):
    ticket = customer_post(desk["channel"])
    refresh()
    for number in range(2, 40):
        minutes = (number * 211) % (5 * 24 * 60)
        cycle(
            ticket,
            number,
            response=30 + (number * 97) % 5000,
            posted_at=T0 + timedelta(minutes=minutes),
            regulated=number % 3 == 0,
            queue_seconds=number * 7,
        )
    return ticket
