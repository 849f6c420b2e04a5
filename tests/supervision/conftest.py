"""Fixtures for supervision: a worker clock the test sets, tickets driven through the
real services at chosen moments, and response cycles with chosen figures."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from approvals.services import review_approve
from tests.factories import ChannelFactory, UserFactory
from tickets.cycles import cycles_refresh, latency_days_rebuild
from tickets.models import ResponseCycle, Ticket
from tickets.services import (
    mention_ingest,
    reply_create,
    reply_send,
    reply_submit,
    ticket_claim,
)

_numbers = itertools.count(1)

LENDING = "@NorthwindBank what is your 30-year fixed mortgage rate today?"
PLAIN = "@NorthwindBank the app keeps logging me out"


class WorkerClock:
    """The clock a web process or a worker reads (`django.utils.timezone.now`), set by
    the test. The database keeps its own clock, which no test can move."""

    def __init__(self, monkeypatch):
        self._now: datetime | None = None
        self._offset = timedelta(0)
        real = timezone.now

        def now():
            if self._now is not None:
                return self._now
            return real() + self._offset

        monkeypatch.setattr(timezone, "now", now)

    def set(self, moment: datetime) -> None:
        self._now = moment

    def advance(self, **delta) -> datetime:
        self._now = self._now + timedelta(**delta)
        return self._now

    def skew(self, **delta) -> None:
        """Run real time, off by this much (a worker whose clock is wrong)."""
        self._now = None
        self._offset = timedelta(**delta)


@pytest.fixture
def worker_clock(monkeypatch):
    return WorkerClock(monkeypatch)


@pytest.fixture
def desk(db):
    """The channel and the named actors of the supervision tests."""
    channel = ChannelFactory()
    return {
        "channel": channel,
        "agent": UserFactory(username="alice", email="alice@bank.example", roles=["agent"]),
        "agent2": UserFactory(username="bob", email="bob@bank.example", roles=["agent"]),
        "lawyer": UserFactory(username="lena", email="lena@bank.example", roles=["legal"]),
        "lawyer2": UserFactory(username="lars", email="lars@bank.example", roles=["legal"]),
        "supervisor": UserFactory(username="sue", email="sue@bank.example", roles=["supervisor"]),
    }


def customer_post(channel, text=PLAIN, *, posted_at=None, minutes_ago=None, **fields) -> Ticket:
    number = next(_numbers)
    if posted_at is None:
        posted_at = timezone.now() - timedelta(minutes=minutes_ago or 1)
    return mention_ingest(
        channel=channel,
        external_id=fields.pop("external_id", f"sup-{number}"),
        author=fields.pop("author", None)
        or {"external_id": f"sup-cust-{number}", "handle": f"cust{number}"},
        text=text,
        url=f"https://simulated.invalid/p/{number}",
        posted_at=posted_at,
        **fields,
    ).ticket


def answer(
    ticket_id,
    agent,
    *,
    body="Thanks, we are on it: please DM us.",
    lawyer=None,
    clock=None,
    step=None,
):
    """Claim, draft, (submit and approve,) send and publish, each step `step` later on
    the worker clock when one is given. Returns the reply."""

    def tick():
        if clock is not None and step is not None:
            clock.advance(**step)

    tick()
    ticket_claim(ticket_id=ticket_id, actor=agent)
    tick()
    reply = reply_create(ticket_id=ticket_id, actor=agent, body=body)
    if lawyer is not None:
        reply_submit(reply_id=reply.pk, actor=agent)
        tick()
        review_approve(reply_id=reply.pk, actor=lawyer)
        tick()
    with TestCase.captureOnCommitCallbacks(execute=True):
        reply_send(reply_id=reply.pk, actor=agent)
    reply.refresh_from_db()
    return reply


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def cycle(
    ticket: Ticket,
    number: int,
    *,
    response: float | None,
    window: float = 3600.0,
    posted_at: datetime = T0,
    outcome: str = "answered",
    **fields,
) -> ResponseCycle:
    """A response cycle with chosen figures (the fixed data of the percentile tests).
    Unless told otherwise, all of its time is spent publishing."""
    deadline = posted_at + timedelta(seconds=window)
    replied = posted_at + timedelta(seconds=response) if response is not None else None
    values = {
        "channel_id": ticket.channel_id,
        "priority": "normal",
        "received_at": posted_at,
        "replied_at": replied,
        "window_seconds": window,
        "response_seconds": response,
        "within_window": None if response is None else response <= window,
        "publishing_seconds": response,
    }
    values.update(fields)
    row = ResponseCycle.objects.create(
        ticket=ticket,
        number=number,
        outcome=outcome,
        posted_at=posted_at,
        deadline=deadline,
        **values,
    )
    # What a refresh does after writing cycles: sum their day again.
    latency_days_rebuild({timezone.localdate(posted_at)})
    return row


@pytest.fixture
def refresh():
    return cycles_refresh


@pytest.fixture(autouse=True)
def _empty_cache():
    """The wall keeps the usual posting rate in the cache for minutes: start cold."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
