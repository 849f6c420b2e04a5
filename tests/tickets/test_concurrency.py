"""Rule 4 under real concurrency: threads released together on PostgreSQL row locks.

Every test commits for real (transactional test case), so each thread runs in its own
connection and transaction, exactly like two web workers. Celery is eager here: the
publish task runs in-process right after the send's commit.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from approvals.models import LegalReview
from approvals.services import review_approve, review_request_changes
from connectors.models import SimulatedPost
from servicedesk.audit import audit_verify
from servicedesk.errors import TransitionRefused
from servicedesk.models import AuditChainHead, AuditEvent
from tests.conftest import mention_payload
from tickets.models import Customer, Mention, Reply, Ticket
from tickets.services import mention_ingest, reply_send

# serialized_rollback: the flush after each transactional test empties every table,
# including the role groups and window policies the data migrations created; this
# restores them before each test.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

LENDING_QUESTION = "@NorthwindBank what is your 30-year fixed mortgage rate today?"
SAFE_ANSWER = "Hi! Rates change daily; please see northwind.example/rates or DM us."


def run_together(*calls: Callable[[], Any], timeout: float = 30) -> list[tuple[str, Any]]:
    """Run each call in its own thread, all released at once by a barrier.

    Returns one ("ok", value) or ("error", exception) per call, in order. Each thread
    opens its own connection before the barrier and closes it at the end.
    """
    barrier = threading.Barrier(len(calls))
    outcomes: list[tuple[str, Any] | None] = [None] * len(calls)

    def runner(index: int, call: Callable[[], Any]) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout)
            outcomes[index] = ("ok", call())
        except Exception as exc:  # collected and asserted on by the test
            outcomes[index] = ("error", exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=runner, args=(index, call), daemon=True)
        for index, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    assert all(outcome is not None for outcome in outcomes)
    return outcomes  # type: ignore[return-value]


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def post_json(user, path: str, data: dict | None = None) -> Callable[[], Any]:
    """A call that POSTs with the user's token; the client is built in the calling thread."""
    client = token_client(user)
    return lambda: client.post(path, data or {}, format="json")


def ingested_ticket(agent, text: str) -> int:
    response = token_client(agent).post(
        "/api/v1/mentions/", mention_payload(text=text), format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["ticket_id"]


def drafted_reply(agent, text: str = LENDING_QUESTION, body: str = SAFE_ANSWER) -> int:
    """A ticket claimed by the agent with a draft reply; returns the reply id."""
    client = token_client(agent)
    ticket_id = ingested_ticket(agent, text)
    assert client.post(f"/api/v1/tickets/{ticket_id}/claim/").status_code == 200
    response = client.post(f"/api/v1/tickets/{ticket_id}/replies/", {"body": body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def reply_in_review(agent) -> int:
    reply_id = drafted_reply(agent)
    response = token_client(agent).post(f"/api/v1/replies/{reply_id}/submit/")
    assert response.status_code == 200, response.content
    return reply_id


def approved_reply(agent, lawyer) -> int:
    reply_id = reply_in_review(agent)
    response = token_client(lawyer).post(f"/api/v1/replies/{reply_id}/approve/", {}, format="json")
    assert response.status_code == 200, response.content
    return reply_id


def assert_published_once(reply_id: int) -> None:
    reply = Reply.objects.select_related("ticket").get(pk=reply_id)
    assert reply.state == "sent"
    assert reply.ticket.state == "replied"
    assert SimulatedPost.objects.count() == 1
    assert SimulatedPost.objects.get().external_id == reply.external_id
    assert AuditEvent.objects.filter(action="reply.send").count() == 1
    assert AuditEvent.objects.filter(action="reply.published").count() == 1


@pytest.mark.parametrize("via", ["api", "service"])
def test_double_click_on_send_publishes_an_approved_reply_once(channel, agent, lawyer, via):
    reply_id = approved_reply(agent, lawyer)

    if via == "api":
        path = f"/api/v1/replies/{reply_id}/send/"
        outcomes = run_together(post_json(agent, path), post_json(agent, path))
        assert all(kind == "ok" for kind, _ in outcomes), outcomes
        statuses = sorted(response.status_code for _, response in outcomes)
        assert statuses == [202, 409]
        refused = next(response for _, response in outcomes if response.status_code == 409)
        assert refused.json()["code"] == "invalid_transition"
    else:
        outcomes = run_together(
            lambda: reply_send(reply_id=reply_id, actor=agent),
            lambda: reply_send(reply_id=reply_id, actor=agent),
        )
        kinds = Counter(kind for kind, _ in outcomes)
        assert kinds == {"ok": 1, "error": 1}, outcomes
        error = next(value for kind, value in outcomes if kind == "error")
        assert isinstance(error, TransitionRefused)
        assert error.code == "invalid_transition"
        assert error.status_code == 409

    assert_published_once(reply_id)


def test_assignee_and_another_agent_sending_at_once_publish_once(channel, agent, agent2, lawyer):
    reply_id = approved_reply(agent, lawyer)
    path = f"/api/v1/replies/{reply_id}/send/"

    by_assignee, by_other = run_together(post_json(agent, path), post_json(agent2, path))

    assert by_assignee[0] == "ok" and by_other[0] == "ok", (by_assignee, by_other)
    assert by_assignee[1].status_code == 202, by_assignee[1].content
    assert by_other[1].status_code == 409
    assert by_other[1].json()["code"] == "not_assignee"
    assert_published_once(reply_id)


def test_unregulated_reply_double_send_publishes_once(channel, agent):
    reply_id = drafted_reply(agent, text="@NorthwindBank the app keeps logging me out")
    path = f"/api/v1/replies/{reply_id}/send/"

    outcomes = run_together(*(post_json(agent, path) for _ in range(4)))

    statuses = Counter(response.status_code for kind, response in outcomes if kind == "ok")
    assert statuses == {202: 1, 409: 3}, outcomes
    assert_published_once(reply_id)


@pytest.mark.parametrize(
    ("second_path", "second_body"),
    [("approve", {}), ("request-changes", {"comment": "Add the rate disclosure link."})],
    ids=["approve-vs-approve", "approve-vs-request-changes"],
)
def test_two_lawyers_deciding_at_once_make_one_review(
    channel, agent, lawyer, lawyer2, second_path, second_body
):
    reply_id = reply_in_review(agent)
    base = f"/api/v1/replies/{reply_id}"

    outcomes = run_together(
        post_json(lawyer, f"{base}/approve/"),
        post_json(lawyer2, f"{base}/{second_path}/", second_body),
    )

    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    responses = [response for _, response in outcomes]
    assert sorted(response.status_code for response in responses) == [200, 409]
    winner = next(response for response in responses if response.status_code == 200)
    loser = next(response for response in responses if response.status_code == 409)
    assert loser.json()["code"] == "review_not_pending"
    review = LegalReview.objects.get()
    reply = Reply.objects.select_related("ticket").get(pk=reply_id)
    winner_state = winner.json()["state"]
    assert reply.state == winner_state
    if winner_state == "approved":
        assert review.decision == "approved"
        assert reply.ticket.state == "approved"
    else:
        assert review.decision == "changes_requested"
        assert reply.ticket.state == "in_progress"
    assert AuditEvent.objects.filter(action__startswith="review.").count() == 1
    assert audit_verify().ok


def test_two_lawyers_through_the_services_one_wins(channel, agent, lawyer, lawyer2):
    reply_id = reply_in_review(agent)

    outcomes = run_together(
        lambda: review_approve(reply_id=reply_id, actor=lawyer),
        lambda: review_request_changes(reply_id=reply_id, actor=lawyer2, comment="Add a link."),
    )

    kinds = Counter(kind for kind, _ in outcomes)
    assert kinds == {"ok": 1, "error": 1}, outcomes
    error = next(value for kind, value in outcomes if kind == "error")
    assert isinstance(error, TransitionRefused)
    assert error.code == "review_not_pending"
    assert LegalReview.objects.count() == 1


def test_twenty_deliveries_of_the_same_mention_make_one_mention_and_one_ticket(channel):
    fields = {
        "channel": channel,
        "external_id": "same-post-1",
        "author": {"external_id": "cust-77", "handle": "cust77", "display_name": "C"},
        "text": LENDING_QUESTION,
        "url": "https://simulated.invalid/p/same-post-1",
        "posted_at": timezone.now() - timedelta(minutes=3),
    }

    outcomes = run_together(*(lambda: mention_ingest(**fields) for _ in range(20)))

    errors = [value for kind, value in outcomes if kind == "error"]
    assert not errors, errors
    results = [value for _, value in outcomes]
    assert Mention.objects.count() == 1
    assert Ticket.objects.count() == 1
    assert Customer.objects.count() == 1
    ticket = Ticket.objects.get()
    assert {result.ticket.pk for result in results} == {ticket.pk}
    assert {result.mention.pk for result in results} == {Mention.objects.get().pk}
    assert sum(result.created for result in results) == 1
    assert AuditEvent.objects.filter(action="ticket.triage").count() == 1
    assert audit_verify().ok


def test_twenty_deliveries_through_the_api_answer_201_once_then_200(channel, agent):
    payload = mention_payload(text=LENDING_QUESTION)

    outcomes = run_together(*(post_json(agent, "/api/v1/mentions/", payload) for _ in range(20)))

    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    statuses = Counter(response.status_code for _, response in outcomes)
    assert statuses == {201: 1, 200: 19}, [r.content for _, r in outcomes]
    assert {response.json()["ticket_id"] for _, response in outcomes} == {Ticket.objects.get().pk}
    assert Mention.objects.count() == 1


def test_audit_chain_has_no_gaps_after_a_concurrent_mix(channel, agent, agent2, lawyer, lawyer2):
    open_tickets = [ingested_ticket(agent, "@NorthwindBank my card was declined") for _ in range(4)]
    thread_root = mention_payload(text="@NorthwindBank where is my statement?")
    root = token_client(agent).post("/api/v1/mentions/", thread_root, format="json").json()
    to_send = drafted_reply(agent, text="@NorthwindBank the app keeps logging me out")
    in_review = reply_in_review(agent)
    approved = approved_reply(agent, lawyer)

    calls: list[Callable[[], Any]] = []
    for ticket_id in open_tickets:  # two agents race to claim each ticket
        calls.append(post_json(agent, f"/api/v1/tickets/{ticket_id}/claim/"))
        calls.append(post_json(agent2, f"/api/v1/tickets/{ticket_id}/claim/"))
    for _ in range(6):  # fresh mentions
        calls.append(post_json(agent, "/api/v1/mentions/", mention_payload()))
    for number in range(3):  # follow-ups in one thread
        follow_up = mention_payload(in_reply_to_external_id=thread_root["external_id"])
        follow_up["text"] = f"@NorthwindBank hello? ({number})"
        calls.append(post_json(agent, "/api/v1/mentions/", follow_up))
    calls += [post_json(agent, f"/api/v1/replies/{to_send}/send/") for _ in range(2)]
    calls.append(post_json(lawyer, f"/api/v1/replies/{in_review}/approve/"))
    calls.append(post_json(lawyer2, f"/api/v1/replies/{in_review}/approve/"))
    calls += [post_json(agent, f"/api/v1/replies/{approved}/send/") for _ in range(2)]

    outcomes = run_together(*calls)

    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    assert all(response.status_code < 500 for _, response in outcomes)
    claims = Counter(response.status_code for _, response in outcomes[:8])
    assert claims == {200: 4, 409: 4}
    assert Ticket.objects.get(pk=root["ticket_id"]).mentions.count() == 4
    report = audit_verify()
    assert report.ok, report
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    head = AuditChainHead.objects.get()
    assert head.seq == len(seqs)
    assert head.hash == AuditEvent.objects.get(seq=len(seqs)).hash
    assert AuditEvent.objects.filter(action="ticket.claim").count() == 4 + 3
    assert AuditEvent.objects.filter(action="reply.published").count() == 2
    assert SimulatedPost.objects.count() == 2


def test_postgres_trigger_refuses_update_and_delete_of_audit_rows(channel, agent):
    ingested_ticket(agent, "@NorthwindBank hello")
    event = AuditEvent.objects.get()

    for statement in (
        "UPDATE servicedesk_auditevent SET action = 'tampered'",
        "DELETE FROM servicedesk_auditevent",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)

    assert AuditEvent.objects.get().action == event.action == "ticket.triage"
    assert audit_verify().ok
