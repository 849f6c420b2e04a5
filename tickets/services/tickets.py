"""Services for ticket transitions taken by people: claim, close, ignore, (un)flag."""

from __future__ import annotations

from django.db import transaction

from approvals.screening import Screening
from servicedesk.audit import audit_record
from servicedesk.errors import RoleRequired, TransitionRefused
from tickets import permissions as perms
from tickets.clock import stamp_now
from tickets.enums import ACTIVE_REPLY_STATES, ReplyState
from tickets.models import Reply, Ticket
from tickets.services.common import apply_transition, lock_ticket, may_act_for_assignee


def ticket_mark_regulated(
    *, ticket: Ticket, source: str, screening: Screening | None = None, actor=None, note: str = ""
) -> bool:
    """Add reasons to the ticket's regulated flag (rule 3). Returns True if the flag was off.

    The caller holds the ticket's lock and its transaction; this writes the audit event.
    """
    new_reasons = (
        [{"source": source, **reason.__dict__} for reason in screening.reasons]
        if screening is not None
        else [{"source": source, "rule": "manual", "category": "manual", "match": note}]
    )
    was_regulated = ticket.regulated
    ticket.regulated = True
    ticket.regulated_reasons = [*ticket.regulated_reasons, *new_reasons]
    if actor is not None and not was_regulated:
        ticket.regulated_by = actor
    ticket.save(update_fields=["regulated", "regulated_reasons", "regulated_by", "updated_at"])
    audit_record(
        action="ticket.regulated",
        actor=actor,
        ticket_id=ticket.pk,
        obj=ticket,
        data={"source": source, "reasons": new_reasons, "was_regulated": was_regulated},
    )
    return not was_regulated


def ticket_claim(*, ticket_id: int, actor) -> Ticket:
    """Take an open ticket.

    1. lock the ticket; 2. transition open → in_progress (role checked);
    3. set the assignee and claim time; 4. audit.
    """
    with transaction.atomic():
        ticket = lock_ticket(ticket_id)
        from_state = apply_transition(ticket, "claim", actor)
        ticket.assignee = actor
        ticket.claimed_at = ticket.claimed_at or stamp_now()
        ticket.save(update_fields=["state", "assignee", "claimed_at", "updated_at"])
        audit_record(
            action="ticket.claim",
            actor=actor,
            ticket_id=ticket.pk,
            obj=ticket,
            from_state=from_state,
            to_state=ticket.state,
        )
    return ticket


def _ticket_finish(*, ticket_id: int, actor, reason: str, transition_name: str) -> Ticket:
    """Close or ignore: the shared steps.

    1. lock; 2. only the assignee (or a supervisor) may finish an assigned ticket;
    3. transition; 4. discard the unsent draft, if any; 5. audit.
    """
    with transaction.atomic():
        ticket = lock_ticket(ticket_id)
        if not perms.can_work_tickets(ticket, actor):
            raise RoleRequired(f"Your role does not allow '{transition_name}' on a ticket.")
        if not may_act_for_assignee(ticket, actor):
            raise TransitionRefused(
                f"Only the assignee ({ticket.assignee.get_username()}) or a supervisor can "
                f"{transition_name} this ticket.",
                code="not_assignee",
                assignee=ticket.assignee.get_username(),
            )
        from_state = apply_transition(ticket, transition_name, actor)
        ticket.closed_at = stamp_now()
        ticket.close_reason = reason
        ticket.save(update_fields=["state", "closed_at", "close_reason", "updated_at"])
        discarded = list(
            Reply.objects.filter(ticket=ticket, state__in=ACTIVE_REPLY_STATES).values_list(
                "pk", flat=True
            )
        )
        Reply.objects.filter(pk__in=discarded).update(state=ReplyState.DISCARDED)
        audit_record(
            action=f"ticket.{transition_name}",
            actor=actor,
            ticket_id=ticket.pk,
            obj=ticket,
            from_state=from_state,
            to_state=ticket.state,
            data={"reason": reason, "discarded_replies": discarded},
        )
    return ticket


def ticket_close(*, ticket_id: int, actor, reason: str) -> Ticket:
    return _ticket_finish(ticket_id=ticket_id, actor=actor, reason=reason, transition_name="close")


def ticket_ignore(*, ticket_id: int, actor, reason: str) -> Ticket:
    return _ticket_finish(ticket_id=ticket_id, actor=actor, reason=reason, transition_name="ignore")


def ticket_flag_regulated(*, ticket_id: int, actor, reason: str) -> Ticket:
    """Mark a ticket regulated by hand: any desk user may, with a reason."""
    with transaction.atomic():
        ticket = lock_ticket(ticket_id)
        if not perms.can_flag_regulated(ticket, actor):
            raise RoleRequired("Your role does not allow flagging tickets.")
        if ticket.regulated:
            raise TransitionRefused("The ticket is already regulated.", code="already_regulated")
        ticket_mark_regulated(ticket=ticket, source="manual", actor=actor, note=reason)
    return ticket


def ticket_clear_regulated(*, ticket_id: int, actor, reason: str) -> Ticket:
    """Clear a wrong regulated flag: legal or a supervisor only, with a reason, audited.

    The reasons that were on the ticket go into the audit event, so the record shows
    what was cleared and why.
    """
    with transaction.atomic():
        ticket = lock_ticket(ticket_id)
        if not perms.can_clear_regulated(ticket, actor):
            raise RoleRequired("Only legal or a supervisor can clear the regulated flag.")
        if not ticket.regulated:
            raise TransitionRefused("The ticket is not regulated.", code="not_regulated")
        cleared = ticket.regulated_reasons
        ticket.regulated = False
        ticket.regulated_reasons = []
        ticket.regulated_by = None
        ticket.save(update_fields=["regulated", "regulated_reasons", "regulated_by", "updated_at"])
        audit_record(
            action="ticket.regulated_cleared",
            actor=actor,
            ticket_id=ticket.pk,
            obj=ticket,
            data={"reason": reason, "cleared_reasons": cleared},
        )
    return ticket
