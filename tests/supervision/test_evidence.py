"""A ticket's evidence bundle: posts, drafts, decisions, the proof, the timeline, the
audit events — and a proof that fails when the sent text is not the approved one."""

from __future__ import annotations

import hashlib

import pytest

from approvals import template_services
from approvals.models import Branch
from tests.supervision.conftest import LENDING, answer, customer_post
from tickets.evidence import canonical_sha256, evidence_bundle
from tickets.models import Reply
from tickets.services import reply_create, reply_send, reply_update, ticket_claim

pytestmark = pytest.mark.django_db

APPROVED = "Rates change daily; see northwind.example/rates or DM us."


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def regulated_answer(desk, refresh):
    ticket = customer_post(
        desk["channel"], LENDING + " my card 4111 1111 1111 1111", minutes_ago=10
    )
    answer(ticket.pk, desk["agent"], body=APPROVED, lawyer=desk["lawyer"])
    refresh()
    return ticket


def test_the_proof_shows_the_sent_text_is_the_approved_text(regulated_answer, desk):
    bundle = evidence_bundle(user=desk["supervisor"], ticket_id=regulated_answer.pk)

    (proof,) = bundle["proof"]
    assert proof["verdict"] == "verified"
    assert proof["basis"] == "legal_approval"
    assert proof["sent_text"] == APPROVED
    assert proof["sent_text_sha256"] == _sha(APPROVED)
    assert proof["published_sha256"] == _sha(APPROVED)
    assert proof["approval"]["approved_sha256"] == _sha(APPROVED)
    assert proof["approval"]["reviewer"] == "lena"
    assert proof["approval"]["reviewer_wrote_none_of_it"] is True


def test_the_bundle_holds_posts_drafts_decisions_timeline_and_audit(regulated_answer, desk):
    bundle = evidence_bundle(user=desk["lawyer2"], ticket_id=regulated_answer.pk)

    (post,) = bundle["posts"]
    assert "4111 1111" not in post["text"]  # personal data masked in every export
    assert post["screening"]["regulated"] is True
    assert post["screening"]["policy_version"].startswith("policy-")
    assert post["screening"]["personal_data"] == ["card_number"]
    (reply,) = bundle["replies"]
    assert [r["number"] for r in reply["revisions"]] == [1]
    assert reply["revisions"][0]["hash_matches_text"] is True
    assert reply["revisions"][0]["screening"]["policy_version"].startswith("policy-")
    (review,) = reply["reviews"]
    assert (review["reviewer"], review["decision"]) == ("lena", "approved")
    assert review["decided_at"] and review["submitted_at"]
    actions = [entry["what"].split(" ")[0] for entry in bundle["timeline"]]
    for action in (
        "ticket.triage",
        "ticket.claim",
        "reply.submit",
        "review.approved",
        "reply.send",
        "reply.published",
    ):
        assert action in actions
    assert bundle["audit"]["all_hashes_verified"] is True
    seqs = [event["seq"] for event in bundle["audit"]["events"]]
    assert seqs == sorted(seqs)
    (cycle,) = bundle["cycles"]
    assert cycle["outcome"] == "answered" and cycle["stages"]["legal"] is not None
    assert bundle["sha256"] == canonical_sha256(bundle)
    assert bundle["generated_by"] == "lars"


def test_every_draft_version_is_kept(desk, refresh):
    ticket = customer_post(desk["channel"], minutes_ago=3)
    ticket_claim(ticket_id=ticket.pk, actor=desk["agent"])
    reply = reply_create(ticket_id=ticket.pk, actor=desk["agent"], body="First try")
    reply_update(reply_id=reply.pk, actor=desk["agent"], body="Second try")
    reply_update(reply_id=reply.pk, actor=desk["agent"], body="Thanks, fixed now!")

    bundle = evidence_bundle(user=desk["supervisor"], ticket_id=ticket.pk)

    revisions = bundle["replies"][0]["revisions"]
    assert [(r["number"], r["text"]) for r in revisions] == [
        (1, "First try"),
        (2, "Second try"),
        (3, "Thanks, fixed now!"),
    ]


def test_a_sent_text_changed_afterwards_fails_the_proof(regulated_answer, desk):
    reply = Reply.objects.get(ticket=regulated_answer)
    # What a tampered database would hold: the stored text no longer the approved one.
    Reply.objects.filter(pk=reply.pk).update(body=APPROVED + " 2.9% APR!")

    (proof,) = evidence_bundle(user=desk["supervisor"], ticket_id=regulated_answer.pk)["proof"]

    assert proof["verdict"] == "failed"
    assert proof["sent_text_sha256"] != proof["approval"]["approved_sha256"]


def test_an_approved_template_is_proof_enough(desk, api):
    Branch.objects.create(name="Harbor Street", phone="1-800-555-0142")
    version = template_services.template_approve(
        template_id=template_services.template_create(
            actor=desk["lawyer"], name="Rates", body="Hi {first_name}, rates are at {url}."
        ).template_id,
        actor=desk["lawyer2"],
    )
    ticket = customer_post(desk["channel"], LENDING)
    ticket_claim(ticket_id=ticket.pk, actor=desk["agent"])
    reply = reply_create(
        ticket_id=ticket.pk,
        actor=desk["agent"],
        template_id=version.template_id,
        slots={"first_name": "Dana", "url": "https://www.northwind.example/rates"},
    )
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        reply_send(reply_id=reply.pk, actor=desk["agent"])

    (proof,) = evidence_bundle(user=desk["supervisor"], ticket_id=ticket.pk)["proof"]

    assert proof["basis"] == "approved_template"
    assert proof["verdict"] == "verified"
    assert proof["template"]["template_version_id"] == version.pk
    assert proof["template"]["approved_by"] == "lars"
    assert proof["template"]["sent_text_is_the_filled_template"] is True
