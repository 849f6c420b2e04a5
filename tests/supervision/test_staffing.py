"""Erlang C, checked against values worked out by hand and by the textbook formula."""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction

import pytest

from tests.supervision.conftest import T0, customer_post, cycle
from tickets.reports import Period, erlang_c, service_level, staff_needed, staffing_table


def textbook_erlang_c(agents: int, traffic: int) -> Fraction:
    """C(N, A) = (A^N/N! · N/(N−A)) / (Σ_{k<N} A^k/k! + A^N/N! · N/(N−A)), exactly."""
    top = Fraction(traffic**agents, math.factorial(agents)) * Fraction(agents, agents - traffic)
    bottom = sum(Fraction(traffic**k, math.factorial(k)) for k in range(agents)) + top
    return top / bottom


def test_erlang_c_matches_values_worked_by_hand():
    # N=2, A=1: top = 1/2 · 2/1 = 1; bottom = 1 + 1 + 1 = 3.
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # N=3, A=2: top = 8/6 · 3/1 = 4; bottom = 1 + 2 + 2 + 4 = 9.
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)


@pytest.mark.parametrize("agents,traffic", [(11, 10), (25, 20), (60, 50), (130, 120)])
def test_erlang_c_matches_the_textbook_formula(agents, traffic):
    assert erlang_c(agents, float(traffic)) == pytest.approx(
        float(textbook_erlang_c(agents, traffic)), rel=1e-9
    )


def test_erlang_c_of_ten_erlangs_on_eleven_agents_is_the_published_0_682():
    assert round(erlang_c(11, 10.0), 4) == 0.6821


def test_too_few_agents_always_wait_and_no_traffic_never_does():
    assert erlang_c(5, 5.0) == 1.0
    assert erlang_c(4, 6.0) == 1.0
    assert erlang_c(3, 0.0) == 0.0


def test_service_level_worked_by_hand():
    # N=3, A=2, handle 180 s, within 20 s: 1 − 4/9 · e^(−1·20/180)
    assert service_level(3, 2.0, 180, 20) == pytest.approx(1 - 4 / 9 * math.exp(-20 / 180))


def test_staff_needed_is_the_fewest_that_reach_the_target():
    # 100 posts an hour at 180 s each: A = 5 erlangs. 80% picked up within 20 s.
    needed = staff_needed(
        arrivals_per_hour=100, handle_seconds=180, target_seconds=20, target_share=0.8
    )

    def level(n):
        return 1 - float(textbook_erlang_c(n, 5)) * math.exp(-(n - 5) * 20 / 180)

    assert level(needed) >= 0.8 > level(needed - 1)
    assert needed == 8
    assert (
        staff_needed(arrivals_per_hour=0, handle_seconds=180, target_seconds=20, target_share=0.8)
        == 0
    )


@pytest.mark.django_db
def test_the_staffing_table_measures_arrivals_handle_times_and_who_was_active(desk, refresh):
    ticket = customer_post(desk["channel"])
    refresh()
    # Between 09:00 and 10:00 on one day: 4 answers by alice, each 2 minutes of drafting,
    # sent 10 minutes apart; 60-minute windows.
    for number in range(4):
        posted = T0 + timedelta(minutes=10 * number)
        cycle(
            ticket,
            number + 2,
            response=300,
            posted_at=posted,
            agent=desk["agent"],
            drafting_seconds=120,
            publishing_seconds=0,
            connector_seconds=60,
            sent_at=posted + timedelta(minutes=5),
        )

    table = staffing_table(period=Period(T0, T0 + timedelta(days=1)), target_pct=80)

    nine = table["hours"][9]
    assert nine["arrivals_per_hour"] == 4.0
    assert nine["agent_handle_seconds"] == 120.0
    assert nine["agent_wait_budget_seconds"] == 3600 - 60 - 120
    assert nine["agents_active"] == 1.0
    # A = 4 · 120 / 3600 = 0.133 erlangs; one agent picks up 80% well within 57 minutes.
    assert nine["agents_needed"] == 1
    assert table["hours"][10]["arrivals_per_hour"] == 0.0
    assert table["hours"][10]["agents_needed"] == 0
