"""Pre-approved templates: legal approves a version once, agents send it at once on a
regulated ticket — and nothing but that exact text with valid slot values gets through
without a review."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals import template_services
from approvals.models import Branch, Product, TemplateState, TemplateVersion
from connectors.models import SimulatedPost
from servicedesk.models import AuditEvent
from tickets.enums import ReplyKind, ReplyState
from tickets.models import Reply, Ticket
from tickets.services.common import legal_gate

LENDING_QUESTION = "@NorthwindBank what is your 30-year fixed mortgage rate today?"
RATES_BODY = (
    "Hi {first_name}! Mortgage rates change daily, so we don't quote them here. Today's "
    "rates and the full terms are at {url}, or visit the {branch} branch."
)


@pytest.fixture
def branch(db):
    return Branch.objects.create(name="Harbor Street", phone="1-800-555-0142")


@pytest.fixture
def approved(db, lawyer, lawyer2, branch):
    """approved(body, purpose) → an approved template version (written by lena,
    approved by lars)."""

    def _approved(body=RATES_BODY, purpose="answer", name=None, expires_at=None):
        version = template_services.template_create(
            actor=lawyer,
            name=name or f"t-{TemplateVersion.objects.count()}",
            body=body,
            purpose=purpose,
        )
        return template_services.template_approve(
            template_id=version.template_id, actor=lawyer2, expires_at=expires_at
        )

    return _approved


GOOD_SLOTS = {
    "first_name": "Dana",
    "url": "https://www.northwind.example/rates",
    "branch": "harbor street",
}


def _from_template(api, agent, ticket_id, version, slots=GOOD_SLOTS):
    return api(agent).post(
        f"/api/v1/tickets/{ticket_id}/replies/",
        {"template": version.template_id, "slots": slots},
        format="json",
    )


# --- legal writes and approves templates ------------------------------------------------


def test_legal_creates_a_template_and_another_lawyer_approves_it(api, lawyer, lawyer2):
    created = api(lawyer).post(
        "/api/v1/templates/",
        {"name": "Rates", "body": "Hi {first_name}, see {url}.", "purpose": "answer"},
        format="json",
    )
    assert created.status_code == 201, created.content
    template = created.json()
    assert template["versions"][0]["slots"] == {"first_name": "first_name", "url": "url"}
    assert template["approved_version"] is None

    own = api(lawyer).post(f"/api/v1/templates/{template['id']}/approve/", {}, format="json")
    assert own.status_code == 403 and own.json()["code"] == "self_approval"

    approved = api(lawyer2).post(f"/api/v1/templates/{template['id']}/approve/", {}, format="json")
    assert approved.status_code == 200
    assert approved.json()["approved_version"] == 1
    assert AuditEvent.objects.filter(action="template.approve").count() == 1


def test_an_approved_version_never_changes_editing_starts_the_next(api, approved, lawyer):
    version = approved()

    edited = api(lawyer).patch(
        f"/api/v1/templates/{version.template_id}/",
        {"body": "Hi {first_name}, rates are at {url}."},
        format="json",
    )

    assert edited.status_code == 200
    versions = {v["number"]: v for v in edited.json()["versions"]}
    assert versions[1]["state"] == "approved" and versions[1]["body"] == RATES_BODY
    assert versions[2]["state"] == "draft"


def test_approving_a_new_version_retires_the_old(approved, lawyer, lawyer2):
    version = approved()
    template_services.template_update(
        template_id=version.template_id, actor=lawyer, body="Hello {first_name}."
    )
    template_services.template_approve(template_id=version.template_id, actor=lawyer2)

    version.refresh_from_db()
    assert version.state == TemplateState.RETIRED


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("Hi {first}, see {url}", "template_invalid"),
        ("Hi {first_name, see", "template_invalid"),
        ("Call me on 312-555-0187 {first_name}", "pii_in_template"),
        ("   ", "template_invalid"),
    ],
)
def test_bad_template_text_is_refused_with_a_code(api, lawyer, body, code):
    response = api(lawyer).post("/api/v1/templates/", {"name": "x", "body": body}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code


def test_agents_cannot_write_or_approve_templates_and_see_only_usable_ones(
    api, agent, approved, lawyer
):
    usable = approved(name="usable")
    template_services.template_create(actor=lawyer, name="draft only", body="Hi {first_name}")

    created = api(agent).post("/api/v1/templates/", {"name": "a", "body": "b"}, format="json")
    assert created.status_code == 403
    approve = api(agent).post(f"/api/v1/templates/{usable.template_id}/approve/")
    assert approve.status_code == 403
    listed = api(agent).get("/api/v1/templates/").json()["results"]
    assert [t["name"] for t in listed] == ["usable"]


# --- agents send templates on regulated tickets -----------------------------------------


def test_an_unmodified_approved_template_is_sent_on_a_regulated_ticket_without_review(
    api, agent, claimed_ticket, approved
):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    version = approved()

    created = _from_template(api, agent, ticket_id, version)
    assert created.status_code == 201, created.content
    reply = created.json()
    assert reply["template_version"] == version.pk
    assert "Hi Dana!" in reply["body"] and "visit the Harbor Street branch" in reply["body"]

    sent = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")

    assert sent.status_code == 202, sent.content
    assert Ticket.objects.get(pk=ticket_id).regulated is True
    assert SimulatedPost.objects.get().text == reply["body"]
    event = AuditEvent.objects.get(action="reply.published")
    assert event.data["template_version_id"] == version.pk
    assert event.data["template_slots"]["first_name"] == "Dana"
    assert event.data["template_unmodified"] is True


def test_any_edit_makes_it_an_ordinary_draft_that_needs_review(
    api, agent, claimed_ticket, approved
):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    reply = _from_template(api, agent, ticket_id, approved()).json()

    api(agent).patch(
        f"/api/v1/replies/{reply['id']}/",
        {"body": reply["body"].replace("change daily", "are 6.1% today")},
        format="json",
    )
    sent = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")

    assert sent.status_code == 409
    assert sent.json()["code"] == "legal_approval_required"
    assert SimulatedPost.objects.count() == 0


@pytest.mark.parametrize(
    ("slots", "bad"),
    [
        ({**GOOD_SLOTS, "first_name": "Dana, rates are 2% guaranteed"}, "first_name"),
        ({**GOOD_SLOTS, "url": "https://evil.example/rates"}, "url"),
        ({**GOOD_SLOTS, "url": "http://www.northwind.example/rates"}, "url"),
        ({**GOOD_SLOTS, "url": "https://northwind.example@evil.example/"}, "url"),
        ({**GOOD_SLOTS, "branch": "Atlantis"}, "branch"),
        ({k: v for k, v in GOOD_SLOTS.items() if k != "branch"}, "branch"),
        ({**GOOD_SLOTS, "extra": "x"}, "extra"),
    ],
)
def test_invalid_slot_values_are_refused_naming_the_slot(
    api, agent, claimed_ticket, approved, slots, bad
):
    ticket_id = claimed_ticket(LENDING_QUESTION)

    response = _from_template(api, agent, ticket_id, approved(), slots)

    assert response.status_code == 400
    assert response.json()["code"] == "slots_invalid"
    assert bad in response.json()["errors"]
    assert Reply.objects.count() == 0


def test_an_expired_approval_cannot_be_used(api, agent, claimed_ticket, approved):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    version = approved(expires_at=timezone.now() + timedelta(hours=1))
    TemplateVersion.objects.filter(pk=version.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    response = _from_template(api, agent, ticket_id, version)

    assert response.status_code == 409
    assert response.json()["code"] == "template_not_approved"


def test_a_template_retired_after_drafting_needs_review_at_send(
    api, agent, claimed_ticket, approved, lawyer2
):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    version = approved()
    reply = _from_template(api, agent, ticket_id, version).json()
    template_services.template_retire(template_id=version.template_id, actor=lawyer2)

    sent = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")

    assert sent.status_code == 409
    assert sent.json()["code"] == "legal_approval_required"


def test_a_branch_closed_after_drafting_makes_the_slot_invalid_at_send(
    api, agent, claimed_ticket, approved, branch
):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    reply = _from_template(api, agent, ticket_id, approved()).json()
    Branch.objects.filter(pk=branch.pk).update(active=False)

    sent = api(agent).post(f"/api/v1/replies/{reply['id']}/send/")

    assert sent.status_code == 409


def test_reply_needs_body_or_template_not_both(api, agent, claimed_ticket, approved):
    ticket_id = claimed_ticket()
    version = approved()

    both = api(agent).post(
        f"/api/v1/tickets/{ticket_id}/replies/",
        {"body": "hi", "template": version.template_id},
        format="json",
    )
    missing = api(agent).post(
        f"/api/v1/tickets/{ticket_id}/replies/", {"template": 99999, "slots": {}}, format="json"
    )

    assert both.status_code == 400
    assert missing.status_code == 404


# --- the template rule as a property ------------------------------------------------------

_EDITS = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 400), st.sampled_from([" ", "!", "\ufe0f", "6%"])),
    st.tuples(st.just("delete"), st.integers(0, 400), st.just("")),
    st.tuples(st.just("replace"), st.integers(0, 400), st.sampled_from(["a", " ", ".", "0"])),
)
_NAMES = st.one_of(
    st.sampled_from(["Dana", "Zoë", "O'Neil", "Anne-Marie"]),
    st.text(min_size=0, max_size=12),
)


def _apply(text: str, edits) -> str:
    for op, position, piece in edits:
        position = min(position, len(text))
        if op == "insert":
            text = text[:position] + piece + text[position:]
        elif op == "delete" and text:
            position = min(position, len(text) - 1)
            text = text[:position] + text[position + 1 :]
        elif op == "replace" and text:
            position = min(position, len(text) - 1)
            text = text[:position] + piece + text[position + 1 :]
    return text


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=_NAMES, edits=st.lists(_EDITS, max_size=3))
def test_property_only_the_exact_template_with_valid_slots_passes_the_gate(
    agent, claimed_ticket, approved, name, edits
):
    """Rule 1, template half: on a regulated ticket, a reply with no legal review is
    sendable if and only if its text is the approved version filled with valid values."""
    from approvals.slots import fill
    from servicedesk.errors import ApplicationError

    ticket = Ticket.objects.filter(regulated=True).first()
    if ticket is None:
        ticket = Ticket.objects.get(pk=claimed_ticket(LENDING_QUESTION))
    version = TemplateVersion.objects.filter(state="approved").first() or approved()
    slots = {**GOOD_SLOTS, "first_name": name}
    try:
        rendered, cleaned = fill(version.body, slots)
    except ApplicationError:
        rendered, cleaned = None, {}
    body = _apply(rendered if rendered is not None else version.body, edits)
    with transaction.atomic():
        reply = Reply.objects.create(
            ticket=ticket,
            author=agent,
            body=body,
            body_sha256="-",
            idempotency_key=__import__("uuid").uuid4(),
            template_version=version,
            template_slots=cleaned,
        )
        refusal, _ = legal_gate(ticket, reply)
        transaction.set_rollback(True)

    may_send = refusal is None
    assert may_send == (rendered is not None and body == rendered)


# --- holding replies ------------------------------------------------------------------------

HOLDING = "Thanks {first_name} — a specialist is checking this and will reply here shortly."


def _in_review(api, agent, claimed_ticket, **ingest):
    ticket_id = claimed_ticket(LENDING_QUESTION)
    reply = (
        api(agent)
        .post(
            f"/api/v1/tickets/{ticket_id}/replies/",
            {"body": "Our 30-year fixed is 6.1% APR today."},
            format="json",
        )
        .json()
    )
    assert api(agent).post(f"/api/v1/replies/{reply['id']}/submit/").status_code == 200
    return ticket_id, reply


def test_a_holding_reply_acknowledges_the_customer_while_legal_reviews(
    api, agent, claimed_ticket, approved
):
    approved(body=HOLDING, purpose="holding", name="Holding")
    ticket_id, _ = _in_review(api, agent, claimed_ticket)

    response = api(agent).post(
        f"/api/v1/tickets/{ticket_id}/holding-reply/",
        {"slots": {"first_name": "Dana"}},
        format="json",
    )

    assert response.status_code == 202, response.content
    ticket = Ticket.objects.get(pk=ticket_id)
    assert ticket.state == "in_legal_review"  # acknowledged, not answered
    assert ticket.acknowledged_at is not None and ticket.replied_at is None
    assert SimulatedPost.objects.get().text == HOLDING.replace("{first_name}", "Dana")
    holding = Reply.objects.get(kind=ReplyKind.HOLDING)
    assert holding.state == ReplyState.SENT

    again = api(agent).post(f"/api/v1/tickets/{ticket_id}/holding-reply/", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "holding_reply_exists"


def test_a_holding_reply_needs_an_approved_holding_template(api, agent, claimed_ticket, approved):
    answer = approved()  # an answer template, not a holding one
    ticket_id, _ = _in_review(api, agent, claimed_ticket)

    none = api(agent).post(f"/api/v1/tickets/{ticket_id}/holding-reply/", {}, format="json")
    wrong = api(agent).post(
        f"/api/v1/tickets/{ticket_id}/holding-reply/",
        {"template": answer.template_id, "slots": GOOD_SLOTS},
        format="json",
    )

    assert none.status_code == 409 and none.json()["code"] == "template_not_approved"
    assert wrong.status_code == 409 and wrong.json()["code"] == "wrong_template_purpose"
    assert SimulatedPost.objects.count() == 0


@override_settings(SERVICEDESK_AUTO_HOLDING_REPLY=True)
def test_the_setting_sends_the_holding_reply_on_submit(api, agent, claimed_ticket, approved):
    approved(body=HOLDING, purpose="holding", name="Holding")

    ticket_id, _ = _in_review(api, agent, claimed_ticket)

    assert Ticket.objects.get(pk=ticket_id).acknowledged_at is not None
    assert SimulatedPost.objects.get().text.startswith("Thanks C —")


# --- suggestions and choices ------------------------------------------------------------


def test_replies_legal_approves_again_and_again_are_suggested_as_templates(
    api, agent, lawyer, claimed_ticket
):
    for handle in ("ana", "raj", "kim"):
        ticket_id = claimed_ticket(LENDING_QUESTION)
        reply = (
            api(agent)
            .post(
                f"/api/v1/tickets/{ticket_id}/replies/",
                {"body": f"Hi @{handle}, mortgage rates change daily: see northwind.example/rates"},
                format="json",
            )
            .json()
        )
        api(agent).post(f"/api/v1/replies/{reply['id']}/submit/")
        assert api(lawyer).post(f"/api/v1/replies/{reply['id']}/approve/").status_code == 200

    candidates = api(lawyer).get("/api/v1/templates/candidates/").json()

    assert candidates[0]["approvals"] == 3
    assert candidates[0]["text"].startswith("Hi {handle}, mortgage rates")
    assert api(agent).get("/api/v1/templates/candidates/").status_code == 403


def test_slot_choices_list_the_banks_branches_products_and_numbers(api, agent, branch):
    Product.objects.create(name="Cashback Card")

    choices = api(agent).get("/api/v1/templates/slot-choices/").json()

    assert choices["branch"] == ["Harbor Street"]
    assert choices["product"] == ["Cashback Card"]
    assert "1-800-555-0142" in choices["phone"]
