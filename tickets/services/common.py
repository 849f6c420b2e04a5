"""Helpers shared by the ticket and reply services: locking, transitions, the legal gate."""

from __future__ import annotations

import hashlib

from django_fsm import can_proceed, has_transition_perm

from approvals.models import Decision, LegalReview
from approvals.slots import reply_is_unmodified_template
from servicedesk.errors import ApplicationError, NotFound, RoleRequired, TransitionRefused
from servicedesk.roles import LEGAL, SUPERVISOR, has_role
from tickets.enums import ReplyKind
from tickets.models import Reply, Ticket


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lock_ticket(ticket_id: int) -> Ticket:
    """The ticket row, locked until the end of the transaction (a no-op on SQLite,
    whose IMMEDIATE transactions already serialize writers).

    `of=("self",)`: only the ticket row. A plain FOR UPDATE would lock the joined
    channel row too, serializing the whole channel and deadlocking with any
    transaction whose deferred foreign-key check on that channel runs at commit.
    """
    try:
        return (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("channel")
            .get(pk=ticket_id)
        )
    except (Ticket.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such ticket.", code="ticket_not_found") from None


def lock_reply(reply_id: int) -> tuple[Ticket, Reply]:
    """Lock the reply's ticket first, then the reply: every service locks in that order."""
    ticket_id = Reply.objects.filter(pk=reply_id).values_list("ticket_id", flat=True).first()
    if ticket_id is None:
        raise NotFound("No such reply.", code="reply_not_found")
    ticket = lock_ticket(ticket_id)
    reply = Reply.objects.select_for_update().get(pk=reply_id)
    return ticket, reply


def apply_transition(ticket: Ticket, name: str, actor, *, refused_code: str = "invalid_transition"):
    """Run one FSM transition after checking it is allowed now and for this user.

    Returns the state the ticket left. The role check comes first: a user who may
    never take this transition learns that (403), not the ticket's state.
    """
    method = getattr(ticket, name)
    from_state = ticket.state
    action = name.replace("_", " ")
    if actor is not None and not _role_may(method, ticket, actor):
        raise RoleRequired(f"Your role does not allow '{action}' on a ticket.")
    if not can_proceed(method):
        raise TransitionRefused(
            f"A ticket that is {ticket.get_state_display().lower()} cannot {action}.",
            code=refused_code,
            state=from_state,
        )
    if actor is not None and not has_transition_perm(method, actor):
        raise RoleRequired(f"Your role does not allow '{action}' on a ticket.")
    method()
    return from_state


def _role_may(method, ticket: Ticket, actor) -> bool:
    """May the actor take this transition from any state at all? Checked before the
    state, so someone who may never take it is not told the ticket's state."""
    transitions = method._django_fsm.transitions.values()
    return any(transition.has_perm(ticket, actor) for transition in transitions)


def require_assignee(ticket: Ticket, actor) -> None:
    if ticket.assignee_id != actor.pk:
        holder = ticket.assignee.get_username() if ticket.assignee_id else "nobody"
        raise TransitionRefused(
            f"Only the ticket's assignee can do this; it is assigned to {holder}.",
            code="not_assignee",
            assignee=ticket.assignee.get_username() if ticket.assignee_id else None,
        )


def reply_editor_ids(reply: Reply) -> set[int]:
    """Everyone who wrote any version of the reply: none of them may approve it."""
    return set(reply.revisions.values_list("editor_id", flat=True)) | {reply.author_id}


def legal_gate(ticket: Ticket, reply: Reply) -> tuple[ApplicationError | None, LegalReview | None]:
    """Rule 1: may this exact text be published on this ticket now?

    Returns (refusal, approval). A regulated ticket needs an approval on the hash of
    the very text to publish, by a current member of legal who wrote no version of it
    — or the reply is an approved, unexpired template version filled with valid slot
    values and otherwise unchanged (approval None: the audit names the version).
    """
    if reply.kind == ReplyKind.HOLDING:
        # A holding reply is only ever an approved template, whatever the ticket.
        if reply_is_unmodified_template(reply):
            return None, None
        return TransitionRefused(
            "A holding reply must be an approved, unexpired template, unchanged.",
            code="template_not_approved",
        ), None
    if not ticket.regulated:
        return None, None
    current_hash = sha256_text(reply.body)
    approvals = list(
        LegalReview.objects.filter(reply=reply, decision=Decision.APPROVED)
        .select_related("reviewer")
        .order_by("-created_at", "-id")
    )
    editors = reply_editor_ids(reply)
    for approval in approvals:
        if (
            approval.body_sha256 == current_hash
            and approval.reviewer_id not in editors
            and has_role(approval.reviewer, LEGAL)
        ):
            return None, approval
    if reply_is_unmodified_template(reply):
        # Legal approved this text once, as a template version, for exactly these slots.
        return None, None
    if approvals:
        return TransitionRefused(
            "The text changed after legal approved it; submit it for review again.",
            code="approval_stale",
        ), None
    return TransitionRefused(
        "This ticket is regulated: a lawyer must approve this exact text before it is sent.",
        code="legal_approval_required",
    ), None


def may_act_for_assignee(ticket: Ticket, actor) -> bool:
    """Supervisors may act on anyone's ticket; others only on unassigned or their own."""
    return ticket.assignee_id in (None, actor.pk) or has_role(actor, SUPERVISOR)
