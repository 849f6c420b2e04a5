"""Read queries for tickets. Views fetch objects only through these, so role scoping lives here."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from approvals.models import LegalReview
from servicedesk.errors import InvalidInput, NotFound, RoleRequired
from servicedesk.models import AuditEvent
from servicedesk.roles import SUPERVISOR, has_role, is_desk_user
from tickets.enums import WORKING_STATES, TicketState
from tickets.models import Mention, Reply, ReplyRevision, Ticket

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _require_desk(user) -> None:
    if not is_desk_user(user):
        raise RoleRequired("Only agents, legal and supervisors can read tickets.")


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidInput(f"'{name}' must be true or false.", code="invalid_filter", field=name)


def ticket_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[Ticket]:
    """Tickets the user may see, soonest deadline first, narrowed by the filters.

    Filters: state (comma-separated), regulated, channel (account name), assignee
    (username, `me` or `none`), breached (past the deadline and not yet answered).
    """
    _require_desk(user)
    filters = filters or {}
    for name, value in filters.items():
        # No column can match a NUL, and PostgreSQL refuses it in a query (a 500).
        if "\x00" in value:
            raise InvalidInput(
                f"'{name}' holds a NUL character.", code="invalid_filter", field=name
            )
    first_text = Mention.objects.filter(ticket=OuterRef("pk")).order_by("posted_at", "id")
    queryset = Ticket.objects.select_related("channel", "customer", "assignee").annotate(
        first_text=Subquery(first_text.values("text")[:1])
    )
    if states := filters.get("state"):
        wanted = [state.strip() for state in states.split(",") if state.strip()]
        unknown = sorted(set(wanted) - set(TicketState.values))
        if unknown:
            raise InvalidInput(
                f"Unknown state: {', '.join(unknown)}.", code="invalid_filter", field="state"
            )
        queryset = queryset.filter(state__in=wanted)
    if (regulated := filters.get("regulated")) is not None:
        queryset = queryset.filter(regulated=_parse_bool("regulated", regulated))
    if channel := filters.get("channel"):
        queryset = queryset.filter(channel__name=channel)
    if assignee := filters.get("assignee"):
        if assignee == "none":
            queryset = queryset.filter(assignee__isnull=True)
        elif assignee == "me":
            queryset = queryset.filter(assignee=user)
        else:
            queryset = queryset.filter(assignee__username=assignee)
    if (breached := filters.get("breached")) is not None:
        overdue = Q(deadline__lt=timezone.now(), state__in=WORKING_STATES)
        queryset = queryset.filter(overdue if _parse_bool("breached", breached) else ~overdue)
    return queryset.order_by("deadline", "id")


def ticket_get(*, user, ticket_id: int) -> Ticket:
    """One ticket with its thread, replies (with revisions and reviews) and audit events."""
    _require_desk(user)
    queryset = Ticket.objects.select_related("channel", "customer", "assignee").prefetch_related(
        Prefetch("mentions", queryset=Mention.objects.select_related("customer")),
        Prefetch(
            "replies",
            queryset=Reply.objects.select_related("author").prefetch_related(
                Prefetch("revisions", queryset=ReplyRevision.objects.select_related("editor")),
                Prefetch("reviews", queryset=LegalReview.objects.select_related("reviewer")),
            ),
        ),
    )
    try:
        ticket = queryset.get(pk=ticket_id)
    except Ticket.DoesNotExist:
        raise NotFound("No such ticket.", code="ticket_not_found") from None
    ticket.audit_events = list(AuditEvent.objects.filter(ticket_id=ticket.pk).order_by("seq"))
    return ticket


def reply_get(*, user, reply_id: int) -> Reply:
    _require_desk(user)
    try:
        return Reply.objects.select_related("author", "ticket").get(pk=reply_id)
    except Reply.DoesNotExist:
        raise NotFound("No such reply.", code="reply_not_found") from None


def audit_list(*, user, ticket_id: int | None = None) -> QuerySet[AuditEvent]:
    """Audit events: a ticket's for any desk user, the whole log for supervisors."""
    _require_desk(user)
    queryset = AuditEvent.objects.order_by("seq")
    if ticket_id is not None:
        return queryset.filter(ticket_id=ticket_id)
    if not has_role(user, SUPERVISOR):
        raise RoleRequired("Only supervisors can read the whole audit log; name a ticket.")
    return queryset
