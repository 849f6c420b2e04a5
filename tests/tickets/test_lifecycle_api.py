"""The ticket lifecycle through the API, rule by rule, by example."""

from __future__ import annotations

import hashlib

import pytest

from approvals.models import LegalReview
from connectors.models import SimulatedPost
from servicedesk.audit import audit_verify
from servicedesk.models import AuditEvent

pytestmark = pytest.mark.django_db

LENDING_QUESTION = "@NorthwindBank what is your 30-year fixed mortgage rate today?"
SAFE_ANSWER = "Hi! Rates change daily; please see northwind.example/rates or DM us."


def _draft(client, ticket_id, body=SAFE_ANSWER):
    response = client.post(f"/api/v1/tickets/{ticket_id}/replies/", {"body": body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_unregulated_reply_is_published_once_with_platform_id(api, agent, claimed_ticket):
    ticket_id = claimed_ticket()
    reply = _draft(api(agent), ticket_id)

    response = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")

    assert response.status_code == 202
    body = api(agent).get(f"/api/v1/replies/{reply['id']}/").json()
    assert body["state"] == "sent"
    assert body["external_id"].startswith("sim-")
    post = SimulatedPost.objects.get()
    assert post.text == SAFE_ANSWER
    assert post.external_id == body["external_id"]
    ticket = api(agent).get(f"/api/v1/tickets/{ticket_id}/").json()
    assert ticket["state"] == "replied"
    assert ticket["replied_at"] is not None


def test_lending_mention_is_regulated_with_reasons(ingest):
    result = ingest(text=LENDING_QUESTION)

    assert result["created"] is True
    assert result["ticket"]["regulated"] is True


def test_ticket_detail_shows_which_words_made_it_regulated(api, agent, ingest):
    ticket_id = ingest(text=LENDING_QUESTION)["ticket_id"]

    detail = api(agent).get(f"/api/v1/tickets/{ticket_id}/").json()

    matches = {(reason["rule"], reason["match"]) for reason in detail["regulated_reasons"]}
    assert ("lending.product", "mortgage") in matches
    assert ("lending.rate_near_credit", "rate") in matches
    assert ("lending.term_structure", "30-year fixed") in matches


def test_regulated_reply_is_refused_without_approval(api, agent, claimed_ticket):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    reply = _draft(api(agent), ticket_id)

    response = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")

    assert response.status_code == 409
    assert response.json()["code"] == "legal_approval_required"
    assert SimulatedPost.objects.count() == 0


def test_approved_exact_text_is_published(api, agent, lawyer, claimed_ticket):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    reply = _draft(api(agent), ticket_id)
    assert api(agent).post(f"/api/v1/replies/{reply['id']}/submit/").status_code == 200

    approve = api(lawyer).post(f"/api/v1/replies/{reply['id']}/approve/", {}, format="json")
    assert approve.status_code == 200
    assert approve.json()["state"] == "approved"
    sent = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")

    assert sent.status_code == 202
    assert api(agent).get(f"/api/v1/replies/{reply['id']}/").json()["state"] == "sent"
    post = SimulatedPost.objects.get()
    review = LegalReview.objects.get()
    assert review.body_sha256 == hashlib.sha256(post.text.encode()).hexdigest()
    assert review.reviewer == lawyer


def test_lawyer_cannot_approve_a_reply_they_wrote(api, lawyer, supervisor, ingest):
    ticket_id = ingest(text=LENDING_QUESTION)["ticket_id"]
    # A lawyer who also holds the supervisor role can claim and draft.
    lawyer.groups.add(*supervisor.groups.all())
    assert api(lawyer).post(f"/api/v1/tickets/{ticket_id}/claim/").status_code == 200
    reply = _draft(api(lawyer), ticket_id)
    api(lawyer).post(f"/api/v1/replies/{reply['id']}/submit/")

    response = api(lawyer).post(f"/api/v1/replies/{reply['id']}/approve/", {}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "self_approval"
    assert LegalReview.objects.count() == 0


def test_lawyer_who_edited_someone_elses_draft_cannot_approve_it(
    api, agent, lawyer, supervisor, claimed_ticket
):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    reply = _draft(api(agent), ticket_id)
    # The lawyer becomes the assignee's helper: reassigned via supervisor role for the edit.
    lawyer.groups.add(*supervisor.groups.all())
    from tickets.models import Ticket

    Ticket.objects.filter(pk=ticket_id).update(assignee=lawyer)
    api(lawyer).patch(f"/api/v1/replies/{reply['id']}/", {"body": "Edited by me."}, format="json")
    Ticket.objects.filter(pk=ticket_id).update(assignee=agent)
    api(agent).post(f"/api/v1/replies/{reply['id']}/submit/")

    response = api(lawyer).post(f"/api/v1/replies/{reply['id']}/approve/", {}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "self_approval"


def test_editing_after_approval_voids_it(api, agent, lawyer, claimed_ticket):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    reply = _draft(api(agent), ticket_id)
    api(agent).post(f"/api/v1/replies/{reply['id']}/submit/")
    api(lawyer).post(f"/api/v1/replies/{reply['id']}/approve/", {}, format="json")

    edited = api(agent).patch(
        f"/api/v1/replies/{reply['id']}/", {"body": SAFE_ANSWER + " "}, format="json"
    )
    sent = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")

    assert edited.status_code == 200
    assert edited.json()["state"] == "draft"
    assert api(agent).get(f"/api/v1/tickets/{ticket_id}/").json()["state"] == "in_progress"
    assert sent.status_code == 409
    assert sent.json()["code"] == "approval_stale"
    assert SimulatedPost.objects.count() == 0


def test_request_changes_needs_a_comment_and_returns_the_draft(api, agent, lawyer, claimed_ticket):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    reply = _draft(api(agent), ticket_id)
    api(agent).post(f"/api/v1/replies/{reply['id']}/submit/")

    no_comment = api(lawyer).post(
        f"/api/v1/replies/{reply['id']}/request-changes/", {"comment": "  "}, format="json"
    )
    with_comment = api(lawyer).post(
        f"/api/v1/replies/{reply['id']}/request-changes/",
        {"comment": "Link the rate disclosures."},
        format="json",
    )

    assert no_comment.status_code == 400
    assert no_comment.json()["code"] == "comment_required"
    assert with_comment.status_code == 200
    assert with_comment.json()["state"] == "draft"
    assert with_comment.json()["reviews"][0]["comment"] == "Link the rate disclosures."
    assert api(agent).get(f"/api/v1/tickets/{ticket_id}/").json()["state"] == "in_progress"


def test_resubmitting_unchanged_text_after_changes_requested_is_refused(
    api, agent, lawyer, claimed_ticket
):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    reply = _draft(api(agent), ticket_id)
    api(agent).post(f"/api/v1/replies/{reply['id']}/submit/")
    api(lawyer).post(
        f"/api/v1/replies/{reply['id']}/request-changes/", {"comment": "No."}, format="json"
    )

    response = api(agent).post(f"/api/v1/replies/{reply['id']}/submit/")

    assert response.status_code == 409
    assert response.json()["code"] == "unchanged_since_review"


def test_draft_quoting_a_rate_makes_the_ticket_regulated(api, agent, claimed_ticket):
    ticket_id = claimed_ticket("@NorthwindBank can I get a better deal?")
    reply = _draft(api(agent), ticket_id, body="Sure! Our card APR is 19.99% for new customers.")

    sent = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")

    assert reply["screening"]["regulated"] is True
    detail = api(agent).get(f"/api/v1/tickets/{ticket_id}/").json()
    assert detail["regulated"] is True
    assert {reason["source"] for reason in detail["regulated_reasons"]} == {"draft"}
    assert sent.status_code == 409
    assert sent.json()["code"] == "legal_approval_required"


def test_reply_with_a_card_number_is_blocked(api, agent, claimed_ticket):
    ticket_id = claimed_ticket()
    reply = _draft(api(agent), ticket_id, body="Is this your card 4111 1111 1111 1111?")

    sent = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")
    submitted = api(agent).post(f"/api/v1/replies/{reply['id']}/submit/")

    assert reply["screening"]["blocked"] is True
    assert reply["screening"]["pii"][0]["kind"] == "card_number"
    assert sent.status_code == 409
    assert sent.json()["code"] == "pii_in_reply"
    assert submitted.status_code == 409
    assert submitted.json()["code"] == "pii_in_reply"
    assert SimulatedPost.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    ["Your SSN 123-45-6789 is on file.", "Account number 0012345678 is closed."],
)
def test_reply_with_ssn_or_account_number_is_blocked(api, agent, claimed_ticket, body):
    ticket_id = claimed_ticket()
    reply = _draft(api(agent), ticket_id, body=body)

    sent = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")

    assert sent.status_code == 409
    assert sent.json()["code"] == "pii_in_reply"


def test_only_the_assignee_can_send(api, agent, agent2, claimed_ticket):
    ticket_id = claimed_ticket()
    reply = _draft(api(agent), ticket_id)

    response = api(agent2).post(f"/api/v1/replies/{reply['id']}/send/")

    assert response.status_code == 409
    assert response.json()["code"] == "not_assignee"
    assert response.json()["assignee"] == "alice"


def test_second_send_click_is_refused_and_publishes_nothing_more(api, agent, claimed_ticket):
    ticket_id = claimed_ticket()
    reply = _draft(api(agent), ticket_id)

    first = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")
    second = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")

    assert first.status_code == 202
    assert second.status_code == 409
    assert SimulatedPost.objects.count() == 1


def test_lawyer_cannot_claim_and_agent_cannot_approve(api, agent, lawyer, claimed_ticket, ingest):
    open_ticket = ingest()["ticket_id"]
    ticket_id = claimed_ticket(LENDING_QUESTION)
    reply = _draft(api(agent), ticket_id)
    api(agent).post(f"/api/v1/replies/{reply['id']}/submit/")

    claim = api(lawyer).post(f"/api/v1/tickets/{open_ticket}/claim/")
    approve = api(agent).post(f"/api/v1/replies/{reply['id']}/approve/", {}, format="json")

    assert claim.status_code == 403
    assert approve.status_code == 403
    assert approve.json()["code"] == "role_required"


def test_only_legal_or_supervisor_clears_the_flag_with_a_reason(
    api, agent, lawyer, supervisor, ingest
):
    ticket_id = ingest(text="@NorthwindBank my library loan card stopped working")["ticket_id"]

    by_agent = api(agent).post(
        f"/api/v1/tickets/{ticket_id}/clear-regulated/", {"reason": "library"}, format="json"
    )
    no_reason = api(lawyer).post(
        f"/api/v1/tickets/{ticket_id}/clear-regulated/", {"reason": ""}, format="json"
    )
    by_lawyer = api(lawyer).post(
        f"/api/v1/tickets/{ticket_id}/clear-regulated/",
        {"reason": "A library loan, not credit."},
        format="json",
    )

    assert by_agent.status_code == 403
    assert no_reason.status_code == 400
    assert by_lawyer.status_code == 200
    assert by_lawyer.json()["regulated"] is False
    event = AuditEvent.objects.get(action="ticket.regulated_cleared")
    assert event.actor == lawyer
    assert event.data["reason"] == "A library loan, not credit."
    assert event.data["cleared_reasons"][0]["match"] == "loan"


def test_agent_flags_regulated_by_hand_and_send_then_needs_approval(api, agent, claimed_ticket):
    ticket_id = claimed_ticket("@NorthwindBank question about my account")
    reply = _draft(api(agent), ticket_id)

    flagged = api(agent).post(
        f"/api/v1/tickets/{ticket_id}/flag-regulated/",
        {"reason": "Customer is asking about loan terms in DMs"},
        format="json",
    )
    sent = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")

    assert flagged.status_code == 200
    assert flagged.json()["regulated"] is True
    assert sent.status_code == 409
    assert sent.json()["code"] == "legal_approval_required"


@pytest.mark.parametrize("action", ["close", "ignore"])
def test_close_and_ignore_need_a_reason(api, agent, ingest, action):
    ticket_id = ingest()["ticket_id"]

    missing = api(agent).post(f"/api/v1/tickets/{ticket_id}/{action}/", {}, format="json")
    done = api(agent).post(
        f"/api/v1/tickets/{ticket_id}/{action}/", {"reason": "Spam giveaway"}, format="json"
    )

    assert missing.status_code == 400
    assert missing.json()["fields"]["reason"][0]["code"] == "required"
    assert done.status_code == 200
    assert done.json()["state"] == {"close": "closed", "ignore": "ignored"}[action]
    assert done.json()["close_reason"] == "Spam giveaway"


def test_closing_someone_elses_ticket_is_refused_but_a_supervisor_may(
    api, agent2, supervisor, claimed_ticket
):
    ticket_id = claimed_ticket()

    by_other = api(agent2).post(
        f"/api/v1/tickets/{ticket_id}/close/", {"reason": "dup"}, format="json"
    )
    by_supervisor = api(supervisor).post(
        f"/api/v1/tickets/{ticket_id}/close/", {"reason": "duplicate of #1"}, format="json"
    )

    assert by_other.status_code == 409
    assert by_other.json()["code"] == "not_assignee"
    assert by_supervisor.status_code == 200


def test_every_transition_is_in_the_audit_chain(api, agent, lawyer, claimed_ticket):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    reply = _draft(api(agent), ticket_id)
    api(agent).post(f"/api/v1/replies/{reply['id']}/submit/")
    api(lawyer).post(f"/api/v1/replies/{reply['id']}/approve/", {}, format="json")
    api(agent).post(f"/api/v1/replies/{reply['id']}/send/")
    api(agent).post(f"/api/v1/tickets/{ticket_id}/close/", {"reason": "answered"}, format="json")

    events = api(agent).get(f"/api/v1/audit/?ticket={ticket_id}").json()["results"]

    transitions = [(e["action"], e["from_state"], e["to_state"]) for e in events if e["to_state"]]
    assert transitions == [
        ("ticket.triage", "new", "open"),
        ("ticket.claim", "open", "in_progress"),
        ("reply.submit", "in_progress", "in_legal_review"),
        ("review.approved", "in_legal_review", "approved"),
        ("reply.send", "approved", "sending"),
        ("reply.published", "sending", "replied"),
        ("ticket.close", "replied", "closed"),
    ]
    assert audit_verify().ok


def test_whole_audit_log_is_for_supervisors_only(api, agent, supervisor, ingest):
    ingest()

    by_agent = api(agent).get("/api/v1/audit/")
    by_supervisor = api(supervisor).get("/api/v1/audit/")

    assert by_agent.status_code == 403
    assert by_supervisor.status_code == 200
    assert by_supervisor.json()["count"] == 1


def test_legal_queue_lists_replies_in_review_soonest_deadline_first(
    api, agent, lawyer, claimed_ticket
):
    from datetime import timedelta

    from django.utils import timezone

    later = claimed_ticket(LENDING_QUESTION)
    sooner_text = "@NorthwindBank refinance options for my car loan?"
    sooner = claimed_ticket(sooner_text)
    from tickets.models import Ticket

    Ticket.objects.filter(pk=sooner).update(deadline=timezone.now() + timedelta(minutes=3))
    for ticket_id in (later, sooner):
        reply = _draft(api(agent), ticket_id)
        api(agent).post(f"/api/v1/replies/{reply['id']}/submit/")

    queue = api(lawyer).get("/api/v1/reviews/").json()["results"]
    by_agent = api(agent).get("/api/v1/reviews/")

    assert [item["ticket"] for item in queue] == [sooner, later]
    assert by_agent.status_code == 403
