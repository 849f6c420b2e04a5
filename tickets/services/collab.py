"""Working together on a ticket: asking a colleague, internal notes, reassigning,
notifications and presence (who is looking at a ticket right now)."""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from servicedesk.audit import audit_record
from servicedesk.errors import InvalidInput, RoleRequired, TransitionRefused
from servicedesk.roles import SUPERVISOR, has_role, is_desk_user
from tickets import permissions as perms
from tickets.clock import stamp_now
from tickets.enums import TicketState
from tickets.models import (
    InvitationRole,
    Notification,
    NotificationKind,
    Ticket,
    TicketInvitation,
    TicketNote,
)
from tickets.services.common import apply_transition, lock_ticket

NOTE_MAX_CHARS = 5000

# Tickets whose work can change hands. A ticket being published stays with whoever sent it.
REASSIGNABLE_STATES = (
    TicketState.OPEN,
    TicketState.IN_PROGRESS,
    TicketState.IN_LEGAL_REVIEW,
    TicketState.APPROVED,
    TicketState.SEND_FAILED,
)


def invited_to_draft(ticket: Ticket, user) -> bool:
    """Was this user asked to write the ticket's reply? (They may draft, never send.)"""
    if user is None or not user.is_authenticated:
        return False
    return TicketInvitation.objects.filter(
        ticket_id=ticket.pk, invitee_id=user.pk, role=InvitationRole.DRAFT
    ).exists()


def _active_user(user_id) -> object:
    try:
        return get_user_model().objects.get(pk=int(user_id), is_active=True)
    except (get_user_model().DoesNotExist, TypeError, ValueError):
        raise InvalidInput("Choose a colleague from the list.", code="unknown_user") from None


def ticket_invite(
    *, ticket_id: int, actor, invitee_id: int, role: str, message: str = ""
) -> TicketInvitation:
    """Ask any colleague to advise on a ticket or to draft its reply.

    1. desk users only; 2. lock the ticket; 3. record the invitation (asking the same
    person again updates their role and message); 4. audit; 5. notify the invitee in-app.
    """
    if not is_desk_user(actor):
        raise RoleRequired("Only agents, legal and supervisors can ask a colleague.")
    if role not in InvitationRole.values:
        raise InvalidInput("Choose whether the colleague advises or drafts.", code="invalid_role")
    message = message.strip()[:500]
    with transaction.atomic():
        ticket = lock_ticket(ticket_id)
        invitee = _active_user(invitee_id)
        if invitee.pk == actor.pk:
            raise InvalidInput("Invite someone other than yourself.", code="self_invitation")
        invitation, _ = TicketInvitation.objects.update_or_create(
            ticket=ticket,
            invitee=invitee,
            defaults={"invited_by": actor, "role": role, "message": message},
        )
        audit_record(
            action="ticket.invite",
            actor=actor,
            ticket_id=ticket.pk,
            obj=invitation,
            data={"invitee": invitee.get_username(), "role": role},
        )
        verb = "draft the reply to" if role == InvitationRole.DRAFT else "advise on"
        Notification.objects.create(
            recipient=invitee,
            kind=NotificationKind.INVITATION,
            ticket=ticket,
            text=f"{actor.get_username()} asked you to {verb} ticket #{ticket.pk}."
            + (f" “{message[:150]}”" if message else ""),
        )
    return invitation


def ticket_note_add(*, ticket_id: int, actor, body: str) -> TicketNote:
    """Add an internal note: desk users and invited colleagues. Audited, never published."""
    body = body.strip()
    if not body:
        raise InvalidInput("Write the note first.", code="empty_note")
    if len(body) > NOTE_MAX_CHARS:
        raise InvalidInput(f"A note is at most {NOTE_MAX_CHARS} characters.", code="note_too_long")
    with transaction.atomic():
        ticket = lock_ticket(ticket_id)
        if (
            not is_desk_user(actor)
            and not TicketInvitation.objects.filter(ticket=ticket, invitee=actor).exists()
        ):
            raise RoleRequired("Only the desk and invited colleagues can add notes.")
        note = TicketNote.objects.create(ticket=ticket, author=actor, body=body)
        audit_record(action="ticket.note", actor=actor, ticket_id=ticket.pk, obj=note)
    return note


def ticket_reassign(*, ticket_id: int, actor, assignee_id: int, reason: str = "") -> Ticket:
    """Give a ticket to another agent: supervisors only.

    1. supervisor only (403); 2. lock the ticket; 3. the new assignee must be able to
    work tickets; 4. an open ticket is claimed on their behalf (the queue wait ends);
    5. set the assignee; 6. audit with both names; 7. notify the new assignee.
    The unsent draft stays with the ticket: the new assignee carries it on.
    """
    if not has_role(actor, SUPERVISOR):
        raise RoleRequired("Only a supervisor can reassign tickets.")
    with transaction.atomic():
        ticket = lock_ticket(ticket_id)
        assignee = _active_user(assignee_id)
        if not perms.can_work_tickets(ticket, assignee):
            raise InvalidInput(
                f"{assignee.get_username()} is not an agent or supervisor.", code="not_a_worker"
            )
        if ticket.state not in REASSIGNABLE_STATES:
            raise TransitionRefused(
                f"A ticket that is {ticket.get_state_display().lower()} cannot be reassigned.",
                code="invalid_transition",
                state=ticket.state,
            )
        if ticket.assignee_id == assignee.pk:
            raise TransitionRefused(
                f"The ticket is already assigned to {assignee.get_username()}.",
                code="already_assigned",
            )
        previous = ticket.assignee.get_username() if ticket.assignee_id else None
        from_state = ticket.state
        if ticket.state == TicketState.OPEN:
            apply_transition(ticket, "claim", actor)
        ticket.assignee = assignee
        ticket.claimed_at = ticket.claimed_at or stamp_now()
        ticket.save(update_fields=["state", "assignee", "claimed_at", "updated_at"])
        audit_record(
            action="ticket.reassign",
            actor=actor,
            ticket_id=ticket.pk,
            obj=ticket,
            from_state=from_state,
            to_state=ticket.state,
            data={"from": previous, "to": assignee.get_username(), "reason": reason[:500]},
        )
        Notification.objects.create(
            recipient=assignee,
            kind=NotificationKind.ASSIGNED,
            ticket=ticket,
            text=f"{actor.get_username()} assigned ticket #{ticket.pk} to you."
            + (f" “{reason[:150]}”" if reason else ""),
        )
    return ticket


def notifications_mark_read(*, user, ticket_id: int | None = None) -> int:
    """Mark the user's notifications read (those of one ticket, or all). Returns how many."""
    queryset = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ticket_id is not None:
        queryset = queryset.filter(ticket_id=ticket_id)
    return queryset.update(read_at=timezone.now())


# ---- presence -----------------------------------------------------------------------

# A heartbeat every PRESENCE_BEAT seconds; an entry older than PRESENCE_TTL has left.
PRESENCE_BEAT = 10
PRESENCE_TTL = 30
PRESENCE_ACTIVITIES = ("viewing", "drafting")


def presence_key(ticket_id: int) -> str:
    return f"servicedesk:presence:ticket:{ticket_id}"


def presence_beat(*, ticket_id: int, user, activity: str) -> None:
    """Record that the user is on the ticket's page now (viewing or drafting).

    One cache entry per ticket maps user ids to their last beat. Two beats at the same
    moment may lose one of them; the next beat, seconds later, puts it back — presence
    is a hint for colleagues, not a lock (sending is guarded by the assignee check).
    """
    if activity not in PRESENCE_ACTIVITIES:
        activity = "viewing"
    key = presence_key(ticket_id)
    now = time.time()
    entries = {
        user_id: entry
        for user_id, entry in (cache.get(key) or {}).items()
        if now - entry["at"] <= PRESENCE_TTL
    }
    entries[str(user.pk)] = {
        "name": user.get_username(),
        "activity": activity,
        "at": now,
    }
    cache.set(key, entries, timeout=PRESENCE_TTL * 2)
