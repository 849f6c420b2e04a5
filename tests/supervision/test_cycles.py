"""The latency record: each response cycle rebuilt from the audit trail, stage by stage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import TestCase
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from approvals import template_services
from approvals.services import review_request_changes
from tests.supervision.conftest import LENDING, answer, customer_post
from tickets.cycles import STAGE_NAMES, Cycle
from tickets.models import ResponseCycle
from tickets.services import (
    reply_send_holding,
    reply_submit,
    reply_update,
    ticket_close,
)

pytestmark = pytest.mark.django_db

STEP = {"seconds": 60}


def _stages(cycle: ResponseCycle) -> dict[str, float | None]:
    return {name: getattr(cycle, f"{name}_seconds") for name in STAGE_NAMES}


@pytest.fixture
def base(worker_clock):
    """Two hours ago, on the worker clock. Tests that time the steps with it are marked
    `process_clock`: the stamps follow it only where the database's clock is this
    process's (SQLite); test_cycles_db_clock.py shows PostgreSQL's stamps ignore it."""
    moment = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    worker_clock.set(moment + timedelta(seconds=30))  # the post reaches us 30 s late
    return moment


@pytest.mark.process_clock
def test_an_unregulated_answer_is_one_cycle_with_its_stages(desk, base, worker_clock, refresh):
    ticket = customer_post(desk["channel"], posted_at=base)

    answer(ticket.pk, desk["agent"], clock=worker_clock, step=STEP)
    written = refresh()

    assert written == 1
    cycle = ResponseCycle.objects.get(ticket=ticket)
    assert (cycle.number, cycle.outcome, cycle.regulated) == (1, "answered", False)
    assert cycle.agent == desk["agent"] and cycle.reviewer is None
    assert cycle.response_seconds == 150.0
    assert cycle.within_window is True
    assert cycle.window_seconds == (ticket.deadline - ticket.posted_at).total_seconds()
    assert _stages(cycle) == {
        "connector": 30.0,
        "queue": 60.0,
        "drafting": 60.0,  # claim → send: no legal review
        "legal": None,
        "sending": None,
        "publishing": 0.0,
    }


@pytest.mark.process_clock
def test_a_regulated_answer_spends_its_legal_minutes_in_the_legal_stage(
    desk, base, worker_clock, refresh
):
    ticket = customer_post(desk["channel"], LENDING, posted_at=base)

    answer(
        ticket.pk,
        desk["agent"],
        body="Rates change daily: see northwind.example/rates or DM us.",
        lawyer=desk["lawyer"],
        clock=worker_clock,
        step=STEP,
    )
    refresh()

    cycle = ResponseCycle.objects.get(ticket=ticket)
    assert (cycle.regulated, cycle.reviewer, cycle.reviews) == (True, desk["lawyer"], 1)
    assert _stages(cycle) == {
        "connector": 30.0,
        "queue": 60.0,
        "drafting": 60.0,
        "legal": 60.0,
        "sending": 60.0,
        "publishing": 0.0,
    }
    assert cycle.legal_wait_seconds == 60.0
    assert sum(value or 0 for value in _stages(cycle).values()) == cycle.response_seconds


@pytest.mark.process_clock
def test_changes_requested_count_toward_legal_and_only_lawyer_time_is_their_wait(
    desk, base, worker_clock, refresh
):
    ticket = customer_post(desk["channel"], LENDING, posted_at=base)
    from tickets.services import reply_create, ticket_claim

    worker_clock.advance(seconds=60)
    ticket_claim(ticket_id=ticket.pk, actor=desk["agent"])
    reply = reply_create(ticket_id=ticket.pk, actor=desk["agent"], body="Our rate is 6% APR.")
    reply_submit(reply_id=reply.pk, actor=desk["agent"])
    worker_clock.advance(seconds=120)  # a lawyer sends it back after 2 minutes
    review_request_changes(reply_id=reply.pk, actor=desk["lawyer"], comment="No rates here.")
    worker_clock.advance(seconds=300)  # the agent takes 5 minutes to redraft
    reply_update(reply_id=reply.pk, actor=desk["agent"], body="Rates change daily: DM us.")
    reply_submit(reply_id=reply.pk, actor=desk["agent"])
    worker_clock.advance(seconds=60)
    from approvals.services import review_approve
    from tickets.services import reply_send

    review_approve(reply_id=reply.pk, actor=desk["lawyer2"])
    with TestCase.captureOnCommitCallbacks(execute=True):
        reply_send(reply_id=reply.pk, actor=desk["agent"])
    refresh()

    cycle = ResponseCycle.objects.get(ticket=ticket)
    assert cycle.reviews == 2
    assert cycle.reviewer == desk["lawyer2"]
    assert cycle.legal_seconds == 480.0  # first submission → final approval
    assert cycle.legal_wait_seconds == 180.0  # 120 s + 60 s waiting for lawyers


def test_a_follow_up_after_our_answer_starts_a_new_cycle_and_keeps_the_first(
    desk, base, worker_clock, refresh
):
    ticket = customer_post(desk["channel"], posted_at=base)
    reply = answer(ticket.pk, desk["agent"], clock=worker_clock, step=STEP)
    refresh()
    first = ResponseCycle.objects.get(ticket=ticket)

    worker_clock.advance(minutes=10)
    follow_up = customer_post(
        desk["channel"],
        "@NorthwindBank still logged out",
        posted_at=base + timedelta(minutes=12),
        in_reply_to_external_id=reply.external_id,
    )
    refresh()

    assert follow_up.pk == ticket.pk
    cycles = list(ResponseCycle.objects.filter(ticket=ticket).order_by("number"))
    assert [(c.number, c.outcome) for c in cycles] == [(1, "answered"), (2, "pending")]
    assert cycles[0].response_seconds == first.response_seconds
    assert cycles[0].replied_at == first.replied_at
    assert cycles[1].posted_at == base + timedelta(minutes=12)
    assert cycles[1].deadline > cycles[1].posted_at
    assert cycles[1].response_seconds is None


@pytest.mark.process_clock
def test_a_holding_reply_marks_the_cycle_acknowledged_not_answered(
    desk, base, worker_clock, refresh
):
    template_services.template_approve(
        template_id=template_services.template_create(
            actor=desk["lawyer"],
            name="Holding",
            body="Thanks, a specialist will reply here shortly.",
            purpose="holding",
        ).template_id,
        actor=desk["lawyer2"],
    )
    ticket = customer_post(desk["channel"], LENDING, posted_at=base)
    from tickets.services import reply_create, ticket_claim

    ticket_claim(ticket_id=ticket.pk, actor=desk["agent"])
    reply = reply_create(ticket_id=ticket.pk, actor=desk["agent"], body="Our rate is 6% APR.")
    reply_submit(reply_id=reply.pk, actor=desk["agent"])
    worker_clock.advance(seconds=90)
    with TestCase.captureOnCommitCallbacks(execute=True):
        reply_send_holding(ticket_id=ticket.pk, actor=desk["agent"])
    refresh()

    cycle = ResponseCycle.objects.get(ticket=ticket)
    assert cycle.outcome == "pending"
    assert cycle.ack_seconds == 120.0
    assert cycle.replied_at is None


def test_a_ticket_closed_without_an_answer_ends_its_cycle_unanswered(
    desk, base, worker_clock, refresh
):
    ticket = customer_post(desk["channel"], posted_at=base)
    from tickets.services import ticket_claim

    ticket_claim(ticket_id=ticket.pk, actor=desk["agent"])
    ticket_close(ticket_id=ticket.pk, actor=desk["agent"], reason="answered by phone")
    refresh()

    cycle = ResponseCycle.objects.get(ticket=ticket)
    assert (cycle.outcome, cycle.response_seconds, cycle.within_window) == ("closed", None, None)


def test_refresh_reads_each_audit_event_once(desk, base, worker_clock, refresh):
    first = customer_post(desk["channel"], posted_at=base)
    second = customer_post(desk["channel"], posted_at=base)
    assert refresh() == 2

    assert refresh() == 0  # nothing new
    from tickets.services import ticket_claim

    ticket_claim(ticket_id=second.pk, actor=desk["agent"])
    assert refresh() == 1  # only the ticket that changed
    assert ResponseCycle.objects.get(ticket=first).claimed_at is None
    assert ResponseCycle.objects.get(ticket=second).claimed_at is not None


_moments = st.one_of(
    st.none(),
    st.integers(min_value=-600, max_value=7200).map(
        lambda s: datetime(2026, 3, 2, 9, tzinfo=UTC) + timedelta(seconds=s)
    ),
)


@given(
    received=_moments,
    claimed=_moments,
    submitted=_moments,
    decided=_moments,
    sent=_moments,
    replied=st.integers(min_value=-600, max_value=7200),
)
def test_property_stages_are_never_negative_and_add_up_to_the_response_time(
    received, claimed, submitted, decided, sent, replied
):
    posted = datetime(2026, 3, 2, 9, tzinfo=UTC)
    cycle = Cycle(
        number=1,
        mention_id=None,
        posted_at=posted,
        deadline=posted + timedelta(hours=1),
        received_at=received,
        claimed_at=claimed,
        submitted_at=submitted,
        decided_at=decided,
        sent_at=sent,
        replied_at=posted + timedelta(seconds=replied),
    )

    stages = cycle.stage_seconds()

    assert all(value is None or value >= 0 for value in stages.values())
    total = sum(value or 0 for value in stages.values())
    # Clocks that disagree (a post stamped after we answered) never make it negative.
    assert total == max(
        replied,
        *[(m - posted).total_seconds() for m in (received, claimed, submitted, decided, sent) if m],
        0,
    )
