"""On PostgreSQL every stage is stamped with the database's clock: a web process or a
worker whose own clock is minutes off changes no figure a supervisor reads."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.supervision.conftest import LENDING, answer, customer_post
from tickets.clock import db_now
from tickets.cycles import STAGE_NAMES
from tickets.models import ResponseCycle, Ticket

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.mark.parametrize("skew", [{"minutes": 25}, {"minutes": -25}, {"hours": -3}])
def test_stage_figures_ignore_a_process_clock_minutes_off(desk, worker_clock, refresh, skew):
    posted_at = db_now() - timedelta(seconds=40)  # the platform's timestamp
    worker_clock.skew(**skew)

    ticket = customer_post(desk["channel"], LENDING, posted_at=posted_at)
    answer(
        ticket.pk,
        desk["agent"],
        body="Rates change daily: see northwind.example/rates or DM us.",
        lawyer=desk["lawyer"],
    )
    refresh()

    ticket = Ticket.objects.get(pk=ticket.pk)
    database_time = db_now()
    for stamp in ("claimed_at", "submitted_at", "replied_at"):
        assert abs((database_time - getattr(ticket, stamp)).total_seconds()) < 30, stamp
    cycle = ResponseCycle.objects.get(ticket=ticket)
    stages = {name: getattr(cycle, f"{name}_seconds") for name in STAGE_NAMES}
    # 40 s in the connector (posted → received), seconds for the rest: never the skew.
    assert 39 <= stages["connector"] < 60
    assert all(0 <= (value or 0) < 20 for name, value in stages.items() if name != "connector")
    assert 39 <= cycle.response_seconds < 80
    assert cycle.within_window is True
