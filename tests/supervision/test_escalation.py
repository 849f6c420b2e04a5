"""The customer's clock and the legal clock: warnings, breaches and escalations, each
raised once, measured by the database's clock."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.test import TestCase

from servicedesk.models import AuditEvent
from tests.supervision.conftest import LENDING, answer, customer_post
from tickets.clock import db_now
from tickets.models import (
    Escalation,
    LegalClock,
    LegalRotaEntry,
    Notification,
    Ticket,
    WindowPolicy,
)
from tickets.services import reply_create, reply_submit, ticket_claim
from tickets.services.escalation import escalations_check
from tickets.windows import windows_changed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def hour_windows(db):
    """Every simulated ticket gets a 60-minute window."""
    WindowPolicy.objects.filter(platform="simulated").update(first_response_minutes=60)
    windows_changed()


def check():
    with TestCase.captureOnCommitCallbacks(execute=True):
        return escalations_check()


def kinds(ticket) -> list[str]:
    return sorted(Escalation.objects.filter(ticket=ticket).values_list("kind", flat=True))


def notified(kind: str) -> list[tuple[str, int]]:
    return sorted(
        Notification.objects.filter(kind=kind).values_list("recipient__username", "ticket_id")
    )


class ChatServer:
    """A chat service's incoming webhook on 127.0.0.1: records what it is sent."""

    def __init__(self, status: int = 200):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server interface
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def chat(settings):
    server = ChatServer()
    settings.SERVICEDESK_CHAT_WEBHOOK_URL = server.url
    yield server
    server.close()


# ---- the customer's clock ---------------------------------------------------------------


def test_half_the_window_warns_the_assignee_once(desk, mailoutbox):
    ticket = customer_post(desk["channel"], minutes_ago=35)
    ticket_claim(ticket_id=ticket.pk, actor=desk["agent"])

    first = check()
    second = check()

    assert len(first) == 1 and len(second) == 0
    assert kinds(ticket) == ["window_50"]
    assert notified("window_warning") == [("alice", ticket.pk)]
    text = Notification.objects.get().text
    assert f"Ticket #{ticket.pk}" in text and "50% of its 1h 00m window is used" in text
    assert mailoutbox == []  # half-window warnings stay in the app by default


def test_an_unclaimed_ticket_at_80_percent_warns_every_agent_by_app_and_mail(desk, mailoutbox):
    ticket = customer_post(desk["channel"], minutes_ago=50)

    check()

    # Past 80% when first seen: the half-window warning is not sent as well.
    assert kinds(ticket) == ["window_80"]
    assert notified("window_warning") == [("alice", ticket.pk), ("bob", ticket.pk)]
    assert sorted(message.to[0] for message in mailoutbox) == [
        "alice@bank.example",
        "bob@bank.example",
    ]
    assert f"ticket #{ticket.pk}" in mailoutbox[0].subject


def test_a_breach_escalates_to_supervisors_once_by_app_mail_chat_and_audit(desk, mailoutbox, chat):
    ticket = customer_post(desk["channel"], minutes_ago=61)
    ticket_claim(ticket_id=ticket.pk, actor=desk["agent"])

    check()
    check()

    assert kinds(ticket) == ["window_breach"]
    assert notified("window_breach") == [("sue", ticket.pk)]
    assert [message.to for message in mailoutbox] == [["sue@bank.example"]]
    assert len(chat.received) == 1
    assert f"Ticket #{ticket.pk} (sim) has breached its 1h 00m window" in chat.received[0]["text"]
    assert "assigned to alice" in chat.received[0]["text"]
    escalation = Escalation.objects.get()
    assert escalation.chat_posted_at is not None and escalation.emailed_at is not None
    event = AuditEvent.objects.get(action="ticket.escalation")
    assert event.ticket_id == ticket.pk and event.data["kind"] == "window_breach"
    assert event.data["recipients"] == ["sue"]


def test_a_chat_webhook_that_fails_is_recorded_and_the_breach_still_stands(desk, settings):
    server = ChatServer(status=500)
    settings.SERVICEDESK_CHAT_WEBHOOK_URL = server.url
    try:
        ticket = customer_post(desk["channel"], minutes_ago=61)
        check()
    finally:
        server.close()

    escalation = Escalation.objects.get(ticket=ticket)
    assert escalation.chat_posted_at is None
    assert escalation.delivery_error == "chat webhook answered 500"
    assert notified("window_breach") == [("sue", ticket.pk)]


def test_an_answered_ticket_raises_nothing(desk):
    ticket = customer_post(desk["channel"], minutes_ago=61)
    answer(ticket.pk, desk["agent"])

    assert len(check()) == 0
    assert Escalation.objects.count() == 0


def test_a_follow_up_after_the_answer_starts_a_new_clock_with_its_own_warnings(desk):
    ticket = customer_post(desk["channel"], minutes_ago=61)
    check()
    reply = answer(ticket.pk, desk["agent"])
    customer_post(
        desk["channel"],
        "@NorthwindBank still broken",
        minutes_ago=40,
        in_reply_to_external_id=reply.external_id,
    )

    check()

    assert kinds(ticket) == ["window_50", "window_breach"]


@pytest.mark.parametrize("skew", [{"minutes": 25}, {"minutes": -25}, {"hours": -3}])
def test_a_worker_clock_minutes_off_changes_nothing(desk, worker_clock, skew):
    ticket = customer_post(desk["channel"], minutes_ago=35)  # 58% of the window
    worker_clock.skew(**skew)

    check()

    assert kinds(ticket) == ["window_50"]
    escalation = Escalation.objects.get()
    assert abs((escalation.created_at - db_now()).total_seconds()) < 60
    text = escalation.message
    assert "25m 00s left" in text or "24m 59s left" in text


# ---- the legal clock --------------------------------------------------------------------


def _in_review(desk, worker_clock, *, submitted_minutes_ago: float, author=None):
    """A regulated draft submitted for review that long ago.

    The submission is stamped with the database's clock, which no test can move: the
    stamp is then set back, as if the draft had been submitted then."""
    author = author or desk["agent"]
    ticket = customer_post(desk["channel"], LENDING, minutes_ago=5)
    ticket_claim(ticket_id=ticket.pk, actor=author)
    reply = reply_create(ticket_id=ticket.pk, actor=author, body="Our rate is 6% APR.")
    reply_submit(reply_id=reply.pk, actor=author)
    Ticket.objects.filter(pk=ticket.pk).update(
        submitted_at=db_now() - timedelta(minutes=submitted_minutes_ago)
    )
    return Ticket.objects.get(pk=ticket.pk)


@pytest.fixture
def ten_minute_legal_clock(db):
    LegalClock.objects.update_or_create(
        id=1, defaults={"mode": "minutes", "minutes": 10, "at_risk_pct": 75}
    )


def test_a_review_at_risk_tells_the_lawyers_once(desk, worker_clock, ten_minute_legal_clock):
    ticket = _in_review(desk, worker_clock, submitted_minutes_ago=8)

    check()
    check()

    assert kinds(ticket) == ["legal_at_risk"]
    assert notified("legal_at_risk") == [("lars", ticket.pk), ("lena", ticket.pk)]
    assert "decide within 1m" in Escalation.objects.get().message


def test_a_review_past_its_target_goes_to_the_least_loaded_backup(
    desk, worker_clock, ten_minute_legal_clock
):
    LegalRotaEntry.objects.create(user=desk["lawyer"], position=0)
    LegalRotaEntry.objects.create(user=desk["lawyer2"], position=1)
    first = _in_review(desk, worker_clock, submitted_minutes_ago=12)
    second = _in_review(desk, worker_clock, submitted_minutes_ago=11)

    check()

    backups = [
        Escalation.objects.get(ticket=ticket, kind="legal_escalated").backup.username
        for ticket in (first, second)
    ]
    assert backups == ["lena", "lars"]  # lena first by the rota, then lars: fewer pending
    assert notified("legal_escalated") == [("lars", second.pk), ("lena", first.pk)]
    assert kinds(first) == ["legal_escalated"]  # past the target: not also "at risk"


def test_an_unavailable_lawyer_is_never_the_backup(desk, worker_clock, ten_minute_legal_clock):
    LegalRotaEntry.objects.create(user=desk["lawyer"], position=0, available=False)
    LegalRotaEntry.objects.create(user=desk["lawyer2"], position=1)
    ticket = _in_review(desk, worker_clock, submitted_minutes_ago=12)

    check()

    assert Escalation.objects.get(ticket=ticket, kind="legal_escalated").backup == desk["lawyer2"]


def test_a_share_of_the_time_left_is_the_default_legal_target(desk, worker_clock):
    # 60-minute window, posted 5 minutes ago; a worker clock running 40 minutes slow
    # stamped the submission: 95 minutes were left then, so the target is 47.5 minutes,
    # and 40 of them are used (more than 75%).
    ticket = _in_review(desk, worker_clock, submitted_minutes_ago=40)

    check()

    escalation = Escalation.objects.get(ticket=ticket)
    assert escalation.kind == "legal_at_risk"
    target = (escalation.due_at - escalation.clock_started_at).total_seconds()
    expected = (ticket.deadline - ticket.submitted_at).total_seconds() * 0.5
    assert target == pytest.approx(expected)


def test_a_decided_review_raises_nothing(desk, worker_clock, ten_minute_legal_clock):
    from approvals.services import review_approve

    ticket = _in_review(desk, worker_clock, submitted_minutes_ago=12)
    reply = ticket.replies.get()
    review_approve(reply_id=reply.pk, actor=desk["lawyer"])

    check()

    assert Escalation.objects.filter(kind__startswith="legal").count() == 0


# ---- exactly once, under concurrency -----------------------------------------------------


@pytest.mark.postgres
# Committed rows, as two beat workers see them; the roles and policies come back after.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_checkers_at_once_escalate_a_breach_exactly_once(desk):
    ticket = customer_post(desk["channel"], minutes_ago=61)
    barrier = threading.Barrier(4)
    errors = []

    def run():
        try:
            barrier.wait(timeout=10)
            escalations_check()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert kinds(ticket) == ["window_breach"]
    assert AuditEvent.objects.filter(action="ticket.escalation").count() == 1
    assert notified("window_breach") == [("sue", ticket.pk)]
