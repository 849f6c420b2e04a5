"""The legal rules as properties: random API calls by random users of every role.

Whatever sequence of calls hypothesis tries, the platform never receives a regulated
ticket's reply without a legal approval of that exact text by someone who did not
write it, never receives a reply twice or a reply carrying PII, every ticket's state
is the one its audit trail ends with, and the audit chain verifies.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from approvals.models import Decision, LegalReview
from approvals.screening import screen
from connectors.models import SimulatedPost
from servicedesk.audit import audit_verify
from servicedesk.models import AuditEvent
from tests.conftest import client_for
from tests.factories import ChannelFactory, UserFactory
from tickets.models import Reply, ReplyRevision, Ticket

pytestmark = pytest.mark.django_db

SAFE = "Thanks for reaching out! Please DM us the details."
BODIES = [
    SAFE,
    SAFE + " ",  # a one-byte edit
    SAFE + "\ufe0f",  # an emoji variation selector
    "Our 30-year fixed APR is 6.5% today.",  # quotes a rate: regulated by the draft
    "That works out to $450/month over 60 monthly payments.",
    "Is your card 4111 1111 1111 1111?",  # PII: never publishable
    "Your SSN 123-45-6789 is on file.",
]
POSTS = [
    "@NorthwindBank the app logs me out",
    "@NorthwindBank what's your mortgage rate?",
    "@NorthwindBank can I refinance my car loan?",
    "@NorthwindBank thanks!",
    "@NorthwindBank my card 4111 1111 1111 1111 was declined",
]
ROLES = {
    "agent": ["agent"],
    "agent2": ["agent"],
    "lawyer": ["legal"],
    "lawyer2": ["legal"],
    "supervisor": ["supervisor"],
    "lawyer_supervisor": ["legal", "supervisor"],
    "feed": ["integration"],
    "outsider": [],
}
_serial = itertools.count()
# Most calls come from the ticket's assignee, so that long, meaningful paths (claim,
# draft, submit, approve, send) are reached often; the rest come from anyone.
ASSIGNEE = "<assignee>"
ACTORS = st.sampled_from([*ROLES, ASSIGNEE, ASSIGNEE, ASSIGNEE])


class LegalGateMachine(RuleBasedStateMachine):
    users: dict = {}

    def __init__(self):
        super().__init__()
        # Each example runs in a savepoint that teardown rolls back.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.clients = {name: client_for(user) for name, user in self.users.items()}
        self.mentions: list[str] = []
        self.tickets: list[int] = []
        self.replies: list[int] = []

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def _call(self, user: str, method: str, path: str, data=None, *, ticket_id=None):
        if user == ASSIGNEE:
            assignee = (
                Ticket.objects.filter(pk=ticket_id)
                .values_list("assignee__username", flat=True)
                .first()
            )
            user = assignee or "agent"
        client = self.clients[user]
        response = getattr(client, method)(path, data, format="json")
        assert response.status_code < 500, (method, path, response.content)
        if response.status_code >= 400:
            assert response.json()["code"], response.content
        return response

    def _pick(self, data, items):
        return data.draw(st.sampled_from(items)) if items else None

    # ---- rules ----------------------------------------------------------------------

    @initialize(texts=st.lists(st.sampled_from(POSTS), min_size=1, max_size=3))
    def first_posts(self, texts):
        for text in texts:
            self._ingest("feed", text, parent=None)

    @rule(user=ACTORS, text=st.sampled_from(POSTS), data=st.data())
    def ingest(self, user, text, data):
        """A new post or a follow-up in a thread, logged by anyone who tries."""
        self._ingest(user, text, parent=data.draw(st.sampled_from([None, *self.mentions])))

    def _ingest(self, user, text, *, parent):
        if user == ASSIGNEE:
            user = "feed"
        external_id = f"m{next(_serial)}"
        payload = {
            "channel": "sim",
            "external_id": external_id,
            "author": {"external_id": "c1", "handle": "cust"},
            "text": text,
            "posted_at": (timezone.now() - timedelta(minutes=1)).isoformat(),
            "in_reply_to_external_id": parent or "",
        }
        response = self._call(user, "post", "/api/v1/mentions/", payload)
        if response.status_code == 201:
            self.mentions.append(external_id)
            ticket_id = response.json()["ticket_id"]
            if ticket_id not in self.tickets:
                self.tickets.append(ticket_id)

    @rule(user=ACTORS, data=st.data())
    def claim(self, user, data):
        if ticket := self._pick(data, self.tickets):
            self._call(user, "post", f"/api/v1/tickets/{ticket}/claim/", ticket_id=ticket)

    @rule(user=ACTORS, body=st.sampled_from(BODIES), data=st.data())
    def draft(self, user, body, data):
        if ticket := self._pick(data, self.tickets):
            response = self._call(
                user, "post", f"/api/v1/tickets/{ticket}/replies/", {"body": body}, ticket_id=ticket
            )
            if response.status_code == 201:
                self.replies.append(response.json()["id"])

    @rule(user=ACTORS, body=st.sampled_from(BODIES), data=st.data())
    def edit(self, user, body, data):
        if reply := self._pick(data, self.replies):
            ticket = Reply.objects.get(pk=reply).ticket_id
            self._call(user, "patch", f"/api/v1/replies/{reply}/", {"body": body}, ticket_id=ticket)

    @rule(
        user=ACTORS,
        action=st.sampled_from(["submit", "approve", "request-changes", "send"]),
        data=st.data(),
    )
    def act_on_reply(self, user, action, data):
        if reply := self._pick(data, self.replies):
            payload = {"comment": "Please add the disclosures."} if action != "send" else None
            if action in ("approve", "request-changes") and user == ASSIGNEE:
                user = "lawyer"
            ticket = Reply.objects.get(pk=reply).ticket_id
            self._call(
                user, "post", f"/api/v1/replies/{reply}/{action}/", payload, ticket_id=ticket
            )

    @rule(
        user=ACTORS,
        action=st.sampled_from(["close", "ignore", "flag-regulated", "clear-regulated"]),
        data=st.data(),
    )
    def act_on_ticket(self, user, action, data):
        if ticket := self._pick(data, self.tickets):
            self._call(
                user,
                "post",
                f"/api/v1/tickets/{ticket}/{action}/",
                {"reason": "why"},
                ticket_id=ticket,
            )

    @rule(data=st.data(), lawyer=st.sampled_from(["lawyer", "lawyer2", "lawyer_supervisor"]))
    def progress(self, data, lawyer):
        """The next sensible step on a ticket, by the right person: reaches deep states."""
        ticket_id = self._pick(data, self.tickets)
        if ticket_id is None:
            return
        ticket = Ticket.objects.get(pk=ticket_id)
        reply = ticket.replies.exclude(state__in=["sent", "discarded"]).first()
        assignee = ticket.assignee.username if ticket.assignee_id else None
        if ticket.state == "open":
            self._call(
                data.draw(st.sampled_from(["agent", "agent2"])),
                "post",
                f"/api/v1/tickets/{ticket_id}/claim/",
            )
        elif ticket.state == "in_progress" and reply is None:
            body = data.draw(st.sampled_from(BODIES))
            self._call(assignee, "post", f"/api/v1/tickets/{ticket_id}/replies/", {"body": body})
        elif ticket.state == "in_progress" and ticket.regulated:
            # Mostly to legal; sometimes the agent tries to send it straight out.
            action = data.draw(st.sampled_from(["submit", "submit", "send"]))
            self._call(assignee, "post", f"/api/v1/replies/{reply.pk}/{action}/")
        elif ticket.state == "in_legal_review":
            self._call(lawyer, "post", f"/api/v1/replies/{reply.pk}/approve/", {})
        elif ticket.state == "approved" and data.draw(st.booleans()):
            # A last-minute edit after approval (rule 2: it must void the approval).
            body = data.draw(st.sampled_from(BODIES))
            self._call(assignee, "patch", f"/api/v1/replies/{reply.pk}/", {"body": body})
        elif ticket.state in ("in_progress", "approved", "send_failed"):
            self._call(assignee, "post", f"/api/v1/replies/{reply.pk}/send/")

    @rule(data=st.data(), lawyer=st.sampled_from(["lawyer", "lawyer2"]))
    def progress_again(self, data, lawyer):
        self.progress(data, lawyer)

    # ---- the rules that must always hold ----------------------------------------------

    @invariant()
    def published_replies_obey_the_legal_gate(self):
        posts = list(SimulatedPost.objects.all())
        replies = {reply.idempotency_key: reply for reply in Reply.objects.all()}
        published = AuditEvent.objects.filter(action="reply.published")
        # Never twice: one platform post per reply, one publish event per post.
        assert len({post.idempotency_key for post in posts}) == len(posts)
        assert published.count() == len(posts)
        for post in posts:
            reply = replies[post.idempotency_key]
            text_hash = hashlib.sha256(post.text.encode()).hexdigest()
            assert post.text == reply.body
            assert not screen(post.text).blocked, "PII was published"
            event = published.get(object_id=reply.pk)
            if _regulated_when(event):
                editors = set(
                    ReplyRevision.objects.filter(reply=reply).values_list("editor_id", flat=True)
                ) | {reply.author_id}
                assert (
                    LegalReview.objects.filter(
                        reply=reply,
                        decision=Decision.APPROVED,
                        body_sha256=text_hash,
                        reviewer__groups__name="legal",
                    )
                    .exclude(reviewer_id__in=editors)
                    .exists()
                ), "regulated reply published unapproved"

    @invariant()
    def every_state_is_where_its_audit_trail_ends(self):
        for ticket in Ticket.objects.all():
            last = (
                AuditEvent.objects.filter(ticket_id=ticket.pk)
                .exclude(to_state="")
                .order_by("-seq")
                .first()
            )
            assert last is not None and last.to_state == ticket.state, ticket.pk

    @invariant()
    def audit_chain_verifies(self):
        assert audit_verify().ok


def _regulated_when(event: AuditEvent) -> bool:
    """Was the ticket regulated when this event happened? Replayed from its own trail."""
    regulated = False
    for earlier in AuditEvent.objects.filter(ticket_id=event.ticket_id, seq__lt=event.seq):
        if earlier.action == "ticket.triage":
            regulated = earlier.data["regulated"]
        elif earlier.action == "ticket.regulated":
            regulated = True
        elif earlier.action == "ticket.regulated_cleared":
            regulated = False
    assert event.data["regulated"] == regulated
    return regulated


def test_legal_rules_hold_for_any_sequence_of_api_calls(db):
    ChannelFactory()
    LegalGateMachine.users = {
        name: UserFactory(username=name, roles=roles) for name, roles in ROLES.items()
    }
    run_state_machine_as_test(
        LegalGateMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
