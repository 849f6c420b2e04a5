"""Services for replies: draft, edit, submit for review, send, publish.

Every service locks the ticket row first, then the reply, so two requests on the same
ticket run one after the other and see each other's result.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import transaction

from approvals.models import ResponseTemplate, TemplatePurpose, TemplateState, TemplateVersion
from approvals.screening import Screening, screen
from approvals.slots import fill, reply_is_unmodified_template, version_usable
from connectors.outbox import outbox_enqueue
from servicedesk.audit import audit_record
from servicedesk.errors import (
    ApplicationError,
    InvalidInput,
    NotFound,
    RoleRequired,
    TransitionRefused,
)
from tickets import permissions as perms
from tickets.clock import stamp_now
from tickets.enums import ACTIVE_REPLY_STATES, ReplyKind, ReplyState, TicketState
from tickets.models import Reply, ReplyRevision, Ticket
from tickets.services.collab import invited_to_draft
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


def _revision_record(reply: Reply, editor) -> ReplyRevision:
    """The reply's text as it stands now, kept as its current revision (drafts keep
    every version for the evidence bundle)."""
    return ReplyRevision.objects.create(
        reply=reply,
        number=reply.revision,
        body=reply.body,
        body_sha256=reply.body_sha256,
        editor=editor,
        screening=reply.screening,
    )


def _require_drafter(ticket: Ticket, actor) -> None:
    if not perms.can_work_tickets(ticket, actor):
        raise RoleRequired("Your role does not allow drafting replies.")
    require_assignee(ticket, actor)


def _require_writer(ticket: Ticket, actor) -> None:
    """Drafting: the assignee, or a colleague invited to draft (they never submit or send)."""
    if invited_to_draft(ticket, actor):
        return
    _require_drafter(ticket, actor)


def _screen_draft(ticket: Ticket, body: str, actor) -> Screening:
    """Screen a draft; a draft that states credit terms makes the ticket regulated (rule 3)."""
    screening = screen(body, kind="draft")
    if screening.regulated:
        ticket_mark_regulated(ticket=ticket, source="draft", screening=screening, actor=None)
    return screening


def _pii_refusal() -> TransitionRefused:
    return TransitionRefused(
        "The reply contains personal data (a card, account or social security number); "
        "remove it before it can go further.",
        code="pii_in_reply",
    )


def reply_create(
    *,
    ticket_id: int,
    actor,
    body: str | None = None,
    template_id: int | None = None,
    slots: dict | None = None,
) -> Reply:
    """Start the ticket's reply, from free text or from an approved template.

    1. lock the ticket; 2. only its assignee (or an invited colleague), while it is in
    progress, with no other unsent reply; 3. from a template: its approved, unexpired
    version filled with valid slot values; 4. screen the text (may flag the ticket);
    5. store the reply and its first revision; 6. audit.
    """
    template_version = None
    template_slots: dict = {}
    if template_id is not None:
        template_version = _usable_version(template_id)
        body, template_slots = fill(template_version.body, slots or {})
    if body is None:
        raise InvalidInput("A reply needs a body, or a template and its slots.")
    with transaction.atomic():
        ticket = lock_ticket(ticket_id)
        _require_writer(ticket, actor)
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
            template_version=template_version,
            template_slots=template_slots,
        )
        _revision_record(reply, actor)
        audit_record(
            action="reply.create",
            actor=actor,
            ticket_id=ticket.pk,
            obj=reply,
            data={
                "revision": 1,
                "body_sha256": reply.body_sha256,
                "blocked": screening.blocked,
                **_template_data(reply),
            },
        )
    return reply


def _template_data(reply: Reply) -> dict:
    """What the audit records of a reply made from a template: version and slot values."""
    if reply.template_version_id is None:
        return {}
    return {
        "template_version_id": reply.template_version_id,
        "template_slots": reply.template_slots,
        "template_unmodified": reply_is_unmodified_template(reply),
    }


def _usable_version(template_id: int, *, purpose: str | None = None) -> TemplateVersion:
    """The template's approved version, if it can be used now (409 otherwise)."""
    template = ResponseTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise NotFound("No such template.")
    if purpose is not None and template.purpose != purpose:
        raise TransitionRefused(
            f"{template.name!r} is not a {purpose} template.", code="wrong_template_purpose"
        )
    version = (
        template.versions.filter(state=TemplateState.APPROVED).select_related("template").first()
    )
    reason = "it has no approved version" if version is None else version_usable(version)
    if reason is not None:
        raise TransitionRefused(
            f"The template {template.name!r} cannot be used: {reason}.",
            code="template_not_approved",
        )
    return version


def reply_update(*, reply_id: int, actor, body: str) -> Reply:
    """Edit the reply's text.

    Editing an approved reply voids the approval (rule 2): the ticket returns to
    in_progress and the new text needs a new review. Editing a reply whose publish
    failed returns the ticket to in_progress too. A reply in review, being sent or
    sent cannot change.
    """
    with transaction.atomic():
        ticket, reply = lock_reply(reply_id)
        _require_writer(ticket, actor)
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
        _revision_record(reply, actor)
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
        if screen(reply.body, kind="draft").blocked:
            raise _pii_refusal()
        if reply.reviews.filter(revision=reply.revision).exists():
            raise TransitionRefused(
                "Legal already decided on this text; change it before submitting again.",
                code="unchanged_since_review",
            )
        from_state = apply_transition(ticket, "submit", actor)
        ticket.submitted_at = stamp_now()
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
        if settings.SERVICEDESK_AUTO_HOLDING_REPLY and ticket.regulated:
            ticket_id = ticket.pk
            transaction.on_commit(lambda: _auto_holding_reply(ticket_id, actor))
    return reply


def _auto_holding_reply(ticket_id: int, actor) -> None:
    """The setting's automatic holding reply; when none can go out, the agent still can."""
    try:
        reply_send_holding(ticket_id=ticket_id, actor=actor)
    except ApplicationError as exc:
        logger.info("no automatic holding reply on ticket %s: %s", ticket_id, exc.message)


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
        screening = screen(reply.body, kind="draft")
        if screening.regulated and not ticket.regulated:
            ticket_mark_regulated(ticket=ticket, source="draft", screening=screening)
        if screening.blocked:
            refusal = _pii_refusal()
        else:
            refusal, approval = legal_gate(ticket, reply)
        if refusal is None:
            transition_name = "retry" if ticket.state == TicketState.SEND_FAILED else "send"
            from_state = apply_transition(ticket, transition_name, actor)
            ticket.sent_at = stamp_now()
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
                    **_template_data(reply),
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
    if refusal is None and screen(reply.body, kind="draft").blocked:
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
        now = stamp_now()
        if reply.kind == ReplyKind.HOLDING:
            # Acknowledged, not answered: the ticket's own answer is still to come.
            from_state = ticket.state
            if ticket.acknowledged_at is None:
                ticket.acknowledged_at = now
                ticket.save(update_fields=["acknowledged_at", "updated_at"])
        else:
            from_state = apply_transition(ticket, "mark_replied", None)
            ticket.replied_at = now
            ticket.save(update_fields=["state", "replied_at", "updated_at"])
        reply.state = ReplyState.SENT
        reply.sent_at = now
        reply.external_id = external_id
        reply.external_url = url
        reply.save(update_fields=["state", "sent_at", "external_id", "external_url", "updated_at"])
        audit_record(
            action="reply.holding_published"
            if reply.kind == ReplyKind.HOLDING
            else "reply.published",
            ticket_id=ticket.pk,
            obj=reply,
            from_state=from_state,
            to_state=ticket.state,
            data={
                "body_sha256": sha256_text(reply.body),
                "external_id": external_id,
                "regulated": ticket.regulated,
                "approval_id": approval.pk if approval else None,
                **_template_data(reply),
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
        if reply.kind == ReplyKind.HOLDING:
            from_state = ticket.state
        else:
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


def _default_slots(ticket: Ticket) -> dict[str, str]:
    """Slot values a holding reply can take from the ticket itself."""
    values = {}
    if ticket.customer.handle:
        values["handle"] = ticket.customer.handle
    first = (ticket.customer.display_name or "").split(" ")[0]
    if first.isalpha() and len(first) <= 40:
        values["first_name"] = first
    return values


def reply_send_holding(
    *, ticket_id: int, actor, template_id: int | None = None, slots: dict | None = None
) -> Reply:
    """Send an approved holding template now, while the answer waits for legal.

    1. lock the ticket; 2. its assignee only, while a regulated answer is in review or
    approved; 3. one holding reply per ticket; 4. the template's approved, unexpired
    version filled with valid values (the customer's handle and first name fill in by
    themselves); 5. no PII; 6. audit and publish through the outbox. The ticket's state
    does not change: the customer is acknowledged, not answered.
    """
    with transaction.atomic():
        ticket = lock_ticket(ticket_id)
        _require_drafter(ticket, actor)
        if ticket.state not in (TicketState.IN_LEGAL_REVIEW, TicketState.APPROVED):
            raise TransitionRefused(
                "A holding reply goes out while the answer is with legal.",
                code="invalid_transition",
                state=ticket.state,
            )
        if ticket.replies.filter(kind=ReplyKind.HOLDING).exclude(state=ReplyState.FAILED).exists():
            raise TransitionRefused(
                "This customer already has a holding reply.", code="holding_reply_exists"
            )
        if template_id is None:
            candidates = list(
                ResponseTemplate.objects.filter(
                    purpose=TemplatePurpose.HOLDING, versions__state=TemplateState.APPROVED
                ).values_list("pk", flat=True)[:2]
            )
            if len(candidates) != 1:
                raise TransitionRefused(
                    "Choose the holding template to send."
                    if candidates
                    else "Legal has approved no holding template yet.",
                    code="template_not_approved",
                )
            template_id = candidates[0]
        version = _usable_version(template_id, purpose=TemplatePurpose.HOLDING)
        from approvals.slots import placeholders

        wanted = set(placeholders(version.body))
        values = {k: v for k, v in _default_slots(ticket).items() if k in wanted}
        values.update(slots or {})
        body, cleaned = fill(version.body, values)
        if screen(body, kind="draft").blocked:
            raise _pii_refusal()
        reply = Reply.objects.create(
            ticket=ticket,
            author=actor,
            kind=ReplyKind.HOLDING,
            state=ReplyState.SENDING,
            body=body,
            body_sha256=sha256_text(body),
            screening=screen(body, kind="draft").as_dict(),
            idempotency_key=uuid.uuid4(),
            template_version=version,
            template_slots=cleaned,
        )
        _revision_record(reply, actor)
        audit_record(
            action="reply.holding_send",
            actor=actor,
            ticket_id=ticket.pk,
            obj=reply,
            data={"body_sha256": reply.body_sha256, **_template_data(reply)},
        )
        outbox_enqueue(reply=reply, channel=ticket.channel)
        transaction.on_commit(lambda: _enqueue_publish(reply.pk))
    return reply
