"""Services for replies: draft, edit, submit for review, send, publish.

Every service locks the ticket row first, then the reply, so two requests on the same
ticket run one after the other and see each other's result.
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.utils import timezone

from approvals.screening import Screening, screen
from connectors.outbox import outbox_enqueue
from servicedesk.audit import audit_record
from servicedesk.errors import ApplicationError, RoleRequired, TransitionRefused
from tickets import permissions as perms
from tickets.enums import ACTIVE_REPLY_STATES, ReplyState, TicketState
from tickets.models import Reply, ReplyRevision, Ticket
from tickets.services.common import (
    apply_transition,
    legal_gate,
    lock_reply,
    lock_ticket,
    require_assignee,
    sha256_text,
)
from tickets.services.tickets import ticket_mark_regulated

logger = logging.getLogger(__name__)


def _require_drafter(ticket: Ticket, actor) -> None:
    if not perms.can_work_tickets(ticket, actor):
        raise RoleRequired("Your role does not allow drafting replies.")
    require_assignee(ticket, actor)


def _screen_draft(ticket: Ticket, body: str, actor) -> Screening:
    """Screen a draft; a draft that states credit terms makes the ticket regulated (rule 3)."""
    screening = screen(body)
    if screening.regulated:
        ticket_mark_regulated(ticket=ticket, source="draft", screening=screening, actor=None)
    return screening


def _pii_refusal() -> TransitionRefused:
    return TransitionRefused(
        "The reply contains personal data (a card, account or social security number); "
        "remove it before it can go further.",
        code="pii_in_reply",
    )


def reply_create(*, ticket_id: int, actor, body: str) -> Reply:
    """Start the ticket's reply.

    1. lock the ticket; 2. only its assignee, while it is in progress, with no other
    unsent reply; 3. screen the text (may flag the ticket); 4. store the reply and its
    first revision; 5. audit.
    """
    with transaction.atomic():
        ticket = lock_ticket(ticket_id)
        _require_drafter(ticket, actor)
        if ticket.state != TicketState.IN_PROGRESS:
            raise TransitionRefused(
                "Replies are drafted on a ticket in progress; claim it first.",
                code="invalid_transition",
                state=ticket.state,
            )
        active = Reply.objects.filter(ticket=ticket, state__in=ACTIVE_REPLY_STATES).first()
        if active is not None:
            raise TransitionRefused(
                "The ticket already has an unsent reply; edit that one.",
                code="reply_exists",
                reply_id=active.pk,
            )
        screening = _screen_draft(ticket, body, actor)
        reply = Reply.objects.create(
            ticket=ticket,
            author=actor,
            body=body,
            body_sha256=sha256_text(body),
            screening=screening.as_dict(),
            idempotency_key=uuid.uuid4(),
        )
        ReplyRevision.objects.create(
            reply=reply,
            number=1,
            body=body,
            body_sha256=reply.body_sha256,
            editor=actor,
            screening=reply.screening,
        )
        audit_record(
            action="reply.create",
            actor=actor,
            ticket_id=ticket.pk,
            obj=reply,
            data={"revision": 1, "body_sha256": reply.body_sha256, "blocked": screening.blocked},
        )
    return reply


def reply_update(*, reply_id: int, actor, body: str) -> Reply:
    """Edit the reply's text.

    Editing an approved reply voids the approval (rule 2): the ticket returns to
    in_progress and the new text needs a new review. Editing a reply whose publish
    failed returns the ticket to in_progress too. A reply in review, being sent or
    sent cannot change.
    """
    with transaction.atomic():
        ticket, reply = lock_reply(reply_id)
        _require_drafter(ticket, actor)
        if reply.state in (ReplyState.IN_REVIEW,):
            raise TransitionRefused(
                "The reply is with legal; wait for their decision.", code="reply_in_review"
            )
        if reply.state not in (ReplyState.DRAFT, ReplyState.APPROVED, ReplyState.FAILED):
            raise TransitionRefused(
                f"A reply that is {reply.get_state_display().lower()} cannot change.",
                code="reply_locked",
                state=reply.state,
            )
        if body == reply.body:
            return reply
        from_state = ticket.state
        if reply.state == ReplyState.APPROVED:
            apply_transition(ticket, "void_approval", None)
        elif reply.state == ReplyState.FAILED:
            apply_transition(ticket, "revise", None)
        if ticket.state != from_state:
            ticket.save(update_fields=["state", "updated_at"])
        screening = _screen_draft(ticket, body, actor)
        previous_state = reply.state
        reply.body = body
        reply.body_sha256 = sha256_text(body)
        reply.revision += 1
        reply.screening = screening.as_dict()
        reply.state = ReplyState.DRAFT
        reply.failure_reason = ""
        reply.save(
            update_fields=[
                "body",
                "body_sha256",
                "revision",
                "screening",
                "state",
                "failure_reason",
                "updated_at",
            ]
        )
        ReplyRevision.objects.create(
            reply=reply,
            number=reply.revision,
            body=body,
            body_sha256=reply.body_sha256,
            editor=actor,
            screening=reply.screening,
        )
        audit_record(
            action="reply.update",
            actor=actor,
            ticket_id=ticket.pk,
            obj=reply,
            from_state=from_state,
            to_state=ticket.state,
            data={
                "revision": reply.revision,
                "body_sha256": reply.body_sha256,
                "approval_voided": previous_state == ReplyState.APPROVED,
                "blocked": screening.blocked,
            },
        )
    return reply


def reply_submit(*, reply_id: int, actor) -> Reply:
    """Send the draft to legal.

    1. lock; 2. assignee only, draft only, no PII; 3. not the same text legal just sent
    back; 4. transition in_progress → in_legal_review; 5. audit.
    """
    with transaction.atomic():
        ticket, reply = lock_reply(reply_id)
        _require_drafter(ticket, actor)
        if reply.state != ReplyState.DRAFT:
            raise TransitionRefused(
                "Only a draft can be submitted; this reply is "
                f"{reply.get_state_display().lower()}.",
                code="invalid_transition",
                state=reply.state,
            )
        if screen(reply.body).blocked:
            raise _pii_refusal()
        if reply.reviews.filter(revision=reply.revision).exists():
            raise TransitionRefused(
                "Legal already decided on this text; change it before submitting again.",
                code="unchanged_since_review",
            )
        from_state = apply_transition(ticket, "submit", actor)
        ticket.submitted_at = timezone.now()
        ticket.save(update_fields=["state", "submitted_at", "updated_at"])
        reply.state = ReplyState.IN_REVIEW
        reply.save(update_fields=["state", "updated_at"])
        audit_record(
            action="reply.submit",
            actor=actor,
            ticket_id=ticket.pk,
            obj=reply,
            from_state=from_state,
            to_state=ticket.state,
            data={"revision": reply.revision, "body_sha256": reply.body_sha256},
        )
    return reply


def reply_send(*, reply_id: int, actor) -> Reply:
    """Send the reply: checks the legal gate and hands the publish to a Celery task.

    1. lock the ticket, then the reply (a second click waits here, then finds the
       ticket already sending and is refused: one reply per send, rule 4);
    2. assignee only; 3. screen the exact text again: PII blocks (rule 6), credit
       terms make the ticket regulated (rule 3); 4. the legal gate (rule 1);
    5. transition to sending; 6. audit; 7. put the reply in the outbox and enqueue its
    publish on commit.
    A newly found regulated flag is kept (committed) even though the send is refused.
    """
    refusal: ApplicationError | None = None
    with transaction.atomic():
        ticket, reply = lock_reply(reply_id)
        _require_drafter(ticket, actor)
        if reply.state not in (ReplyState.DRAFT, ReplyState.APPROVED, ReplyState.FAILED):
            raise TransitionRefused(
                f"This reply is {reply.get_state_display().lower()}; it cannot be sent now.",
                code="invalid_transition",
                state=reply.state,
            )
        screening = screen(reply.body)
        if screening.regulated and not ticket.regulated:
            ticket_mark_regulated(ticket=ticket, source="draft", screening=screening)
        if screening.blocked:
            refusal = _pii_refusal()
        else:
            refusal, approval = legal_gate(ticket, reply)
        if refusal is None:
            transition_name = "retry" if ticket.state == TicketState.SEND_FAILED else "send"
            from_state = apply_transition(ticket, transition_name, actor)
            ticket.sent_at = timezone.now()
            ticket.save(update_fields=["state", "sent_at", "updated_at"])
            reply.state = ReplyState.SENDING
            reply.failure_reason = ""
            reply.save(update_fields=["state", "failure_reason", "updated_at"])
            audit_record(
                action="reply.send",
                actor=actor,
                ticket_id=ticket.pk,
                obj=reply,
                from_state=from_state,
                to_state=ticket.state,
                data={
                    "body_sha256": reply.body_sha256,
                    "regulated": ticket.regulated,
                    "approval_id": approval.pk if approval else None,
                },
            )
            outbox_enqueue(reply=reply, channel=ticket.channel)
            transaction.on_commit(lambda: _enqueue_publish(reply.pk))
    if refusal is not None:
        raise refusal
    return reply


def _enqueue_publish(reply_id: int) -> None:
    from tickets.tasks import reply_publish_task

    reply_publish_task.delay(reply_id=reply_id)


def reply_publish_check(*, reply_id: int) -> tuple[Ticket, Reply, ApplicationError | None]:
    """Just before the platform call: may this exact text go out now? (rules 1 and 6)

    Locks the ticket and the reply for the caller's transaction. A refusal here (the
    ticket was flagged regulated after the send was accepted, say) is final: the
    caller marks the reply failed with `reply_mark_failed`.
    """
    ticket, reply = lock_reply(reply_id)
    if reply.state != ReplyState.SENDING:
        return ticket, reply, TransitionRefused("The reply is not being sent.", code="not_sending")
    refusal, _ = legal_gate(ticket, reply)
    if refusal is None and screen(reply.body).blocked:
        refusal = _pii_refusal()
    return ticket, reply, refusal


def reply_mark_published(*, reply_id: int, external_id: str, url: str) -> Reply:
    """Record the platform's post: ticket sending → replied, audited with the exact
    hash of the text and the approval it went out under. Safe to call twice."""
    with transaction.atomic():
        ticket, reply = lock_reply(reply_id)
        if reply.state != ReplyState.SENDING:
            return reply
        _, approval = legal_gate(ticket, reply)
        from_state = apply_transition(ticket, "mark_replied", None)
        now = timezone.now()
        ticket.replied_at = now
        ticket.save(update_fields=["state", "replied_at", "updated_at"])
        reply.state = ReplyState.SENT
        reply.sent_at = now
        reply.external_id = external_id
        reply.external_url = url
        reply.save(update_fields=["state", "sent_at", "external_id", "external_url", "updated_at"])
        audit_record(
            action="reply.published",
            ticket_id=ticket.pk,
            obj=reply,
            from_state=from_state,
            to_state=ticket.state,
            data={
                "body_sha256": sha256_text(reply.body),
                "external_id": external_id,
                "regulated": ticket.regulated,
                "approval_id": approval.pk if approval else None,
            },
        )
    return reply


def reply_mark_failed(*, reply_id: int, reason: str) -> Reply:
    """The publish will not happen: ticket sending → send_failed, the reason shown to
    the agent, audited. Safe to call twice."""
    with transaction.atomic():
        ticket, reply = lock_reply(reply_id)
        if reply.state != ReplyState.SENDING:
            return reply
        from_state = apply_transition(ticket, "mark_send_failed", None)
        ticket.save(update_fields=["state", "updated_at"])
        reply.state = ReplyState.FAILED
        reply.failure_reason = reason[:500]
        reply.save(update_fields=["state", "failure_reason", "updated_at"])
        audit_record(
            action="reply.send_failed",
            ticket_id=ticket.pk,
            obj=reply,
            from_state=from_state,
            to_state=ticket.state,
            data={"reason": reason[:500]},
        )
    logger.warning("reply %s on ticket %s failed to publish: %s", reply.pk, ticket.pk, reason)
    return reply
