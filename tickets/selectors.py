"""Read queries for tickets. Views fetch objects only through these, so role scoping lives here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from approvals.models import LegalReview
from servicedesk.errors import InvalidInput, NotFound, RoleRequired
from servicedesk.models import AuditEvent
from servicedesk.roles import LEGAL, SUPERVISOR, has_role, is_desk_user
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
        first_text=Subquery(first_text.values("text")[:1]),
        first_screening=Subquery(first_text.values("screening")[:1]),
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
    """A reply: desk users read any; a colleague invited to its ticket reads its replies
    (they may draft one, and must see what they drafted)."""
    if not is_desk_user(user):
        ticket_id = Reply.objects.filter(pk=reply_id).values_list("ticket_id", flat=True).first()
        if ticket_id is None or ticket_viewer_invitation(user=user, ticket_id=ticket_id) is None:
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


# ---- the web UI -----------------------------------------------------------------------

# The inbox shows the open work, soonest deadline first, a page at a time.
INBOX_STATES = (
    TicketState.OPEN,
    TicketState.IN_PROGRESS,
    TicketState.IN_LEGAL_REVIEW,
    TicketState.APPROVED,
    TicketState.SENDING,
    TicketState.SEND_FAILED,
)
INBOX_VIEWS = ("all", "mine", "unassigned")
INBOX_FIELDS = (
    "state",
    "sentiment",
    "regulated",
    "posted_at",
    "deadline",
    "assignee_id",
    "channel__name",
    "channel__platform",
    "customer__handle",
    "customer__external_id",
    "customer__display_name",
    "assignee__username",
)


def _first_mention(ticket_ref: str = "pk") -> QuerySet[Mention]:
    return Mention.objects.filter(ticket=OuterRef(ticket_ref)).order_by("posted_at", "id")


def inbox_tickets(
    *,
    user,
    view: str = "all",
    channel: str = "",
    regulated: str = "",
    state: str = "",
    limit: int = 50,
) -> tuple[list[Ticket], bool]:
    """One page of the inbox and whether more tickets match: one query, whatever the count.

    Each ticket carries `first_text` and `first_screening` (its first post and where that
    post holds personal data, to mask it).
    """
    filters: dict[str, str] = {"state": state or ",".join(INBOX_STATES)}
    if view == "mine":
        filters["assignee"] = "me"
    elif view == "unassigned":
        filters["assignee"] = "none"
    if channel:
        filters["channel"] = channel
    if regulated in ("true", "false"):
        filters["regulated"] = regulated
    queryset = ticket_list(user=user, filters=filters)
    if "first_screening" not in queryset.query.annotations:
        first = _first_mention()
        queryset = queryset.annotate(first_screening=Subquery(first.values("screening")[:1]))
    # Only what a row shows: a ticket and its channel carry a dozen timestamps that would
    # otherwise be read and parsed for every row.
    queryset = queryset.only(*INBOX_FIELDS)
    rows = list(queryset[: limit + 1])
    return rows[:limit], len(rows) > limit


def channel_names(*, user) -> list[str]:
    """The channel accounts, for the inbox's filter."""
    _require_desk(user)
    from connectors.models import ChannelAccount

    return list(ChannelAccount.objects.order_by("name").values_list("name", flat=True))


def ticket_viewer_invitation(*, user, ticket_id: int):
    """The user's invitation to this ticket, or None."""
    from tickets.models import TicketInvitation

    return TicketInvitation.objects.filter(ticket_id=ticket_id, invitee_id=user.pk).first()


def ticket_brief(*, user, ticket_id: int) -> Ticket:
    """The ticket alone (with its assignee), for a user who may open its page: one or
    two queries, for the heartbeat every open page sends."""
    if not user.is_authenticated:
        raise RoleRequired("Log in first.")
    if not is_desk_user(user) and ticket_viewer_invitation(user=user, ticket_id=ticket_id) is None:
        raise RoleRequired("You were not invited to this ticket.")
    try:
        return Ticket.objects.select_related("assignee").get(pk=ticket_id)
    except Ticket.DoesNotExist:
        raise NotFound("No such ticket.", code="ticket_not_found") from None


def ticket_page(*, user, ticket_id: int) -> Ticket:
    """Everything the ticket page shows, in a fixed number of queries.

    Desk users see every ticket; anyone else only the tickets they were invited to
    (social care is everyone's job: a loan officer asked to draft a mortgage answer).
    The ticket carries `viewer_invitation`, `notes_list` and `invitations_list`.
    """
    from tickets.models import TicketInvitation, TicketNote

    if not user.is_authenticated:
        raise RoleRequired("Log in first.")
    invitation = None
    if not is_desk_user(user):
        invitation = ticket_viewer_invitation(user=user, ticket_id=ticket_id)
        if invitation is None:
            raise RoleRequired("You were not invited to this ticket.")
    queryset = Ticket.objects.select_related(
        "channel", "customer", "assignee", "regulated_by"
    ).prefetch_related(
        Prefetch("mentions", queryset=Mention.objects.select_related("customer")),
        Prefetch(
            "replies",
            queryset=Reply.objects.select_related("author").prefetch_related(
                Prefetch("reviews", queryset=LegalReview.objects.select_related("reviewer")),
            ),
        ),
        Prefetch("notes", queryset=TicketNote.objects.select_related("author")),
        Prefetch(
            "invitations",
            queryset=TicketInvitation.objects.select_related("invitee", "invited_by"),
        ),
    )
    try:
        ticket = queryset.get(pk=ticket_id)
    except Ticket.DoesNotExist:
        raise NotFound("No such ticket.", code="ticket_not_found") from None
    if invitation is None:
        invitation = next(
            (item for item in ticket.invitations.all() if item.invitee_id == user.pk), None
        )
    ticket.viewer_invitation = invitation
    return ticket


def customer_history(*, user, ticket: Ticket, limit: int = 10) -> list[Ticket]:
    """The customer's other tickets, newest first, each with its first post."""
    first = _first_mention()
    return list(
        Ticket.objects.filter(customer_id=ticket.customer_id)
        .exclude(pk=ticket.pk)
        .annotate(
            first_text=Subquery(first.values("text")[:1]),
            first_screening=Subquery(first.values("screening")[:1]),
        )
        .order_by("-posted_at", "-id")[:limit]
    )


def colleagues(*, user) -> list:
    """Everyone who can be asked to help on a ticket: active users but oneself."""
    from django.contrib.auth import get_user_model

    return list(
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(pk=user.pk)
        .order_by("username")
        .only("id", "username", "first_name", "last_name")
    )


def ticket_workers(*, user) -> list:
    """Agents and supervisors: whom a supervisor can hand a ticket to."""
    from django.contrib.auth import get_user_model

    from servicedesk.roles import AGENT

    if not has_role(user, SUPERVISOR):
        return []
    return list(
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[AGENT, SUPERVISOR])
        .distinct()
        .order_by("username")
        .only("id", "username", "first_name", "last_name")
    )


QUEUE_FIELDS = (
    "revision",
    "updated_at",
    "author__username",
    "ticket__state",
    "ticket__posted_at",
    "ticket__deadline",
    "ticket__submitted_at",
    "ticket__channel__name",
    "ticket__channel__platform",
    "ticket__customer__handle",
    "ticket__customer__external_id",
)


def legal_queue(*, user, limit: int = 50) -> tuple[list[Reply], bool]:
    """Replies waiting for legal, the customer's soonest deadline first: two queries.

    The first picks the page (replies and tickets only); the second reads those rows with
    `ticket_first_text`, `ticket_first_screening` and `submitted_by` (who sent the reply
    to legal, from the audit trail), so the subqueries run for one page, not the queue.
    """
    from approvals.selectors import review_queue

    # A reply in review always has its ticket in legal review: saying so lets the database
    # use the tickets' state index.
    queue = review_queue(user=user).filter(ticket__state=TicketState.IN_LEGAL_REVIEW)
    page = list(queue.values_list("pk", flat=True)[: limit + 1])
    submitted_by = AuditEvent.objects.filter(
        ticket_id=OuterRef("ticket_id"), action="reply.submit", object_id=OuterRef("pk")
    ).order_by("-seq")
    first = _first_mention("ticket_id")
    rows = list(
        queue.filter(pk__in=page[:limit])
        .annotate(
            ticket_first_screening=Subquery(first.values("screening")[:1]),
            submitted_by=Subquery(submitted_by.values("actor_name")[:1]),
        )
        .select_related(None)
        .select_related("ticket__channel", "ticket__customer", "author")
        .only(*QUEUE_FIELDS)
    )
    return rows, len(page) > limit


def review_page(*, user, reply_id: int) -> Reply:
    """A reply under (or after) review with its ticket's thread, revisions and reviews."""
    if not has_role(user, LEGAL, SUPERVISOR):
        raise RoleRequired("Only legal and supervisors can open legal reviews.")
    queryset = Reply.objects.select_related(
        "author", "ticket", "ticket__channel", "ticket__customer", "ticket__assignee"
    ).prefetch_related(
        Prefetch("revisions", queryset=ReplyRevision.objects.select_related("editor")),
        Prefetch("reviews", queryset=LegalReview.objects.select_related("reviewer")),
        Prefetch("ticket__mentions", queryset=Mention.objects.select_related("customer")),
    )
    try:
        return queryset.get(pk=reply_id)
    except (Reply.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such reply.", code="reply_not_found") from None


# Where a supervisor's dead-letter notification leads: the open letters in the admin.
DEAD_LETTERS_URL = "/admin/servicedesk/deadletter/?status=open"
_KIND_LABELS = {
    "invitation": "Invitation",
    "assigned": "Assigned",
    "window_warning": "Window",
    "window_breach": "Breach",
    "legal_at_risk": "Legal",
    "legal_escalated": "Escalated",
    "dead_letter": "Dead letter",
}


def notifications_for(*, user, limit: int = 20) -> dict[str, Any]:
    """The bell: stored notifications (invitations, assignments), reviews waiting for a
    lawyer, and the user's own tickets about to breach (80% of the window used).

    Returns {"items": [...], "unread": n}; each item has kind, text, url, at.
    """
    from tickets.models import Notification, NotificationKind

    items: list[dict[str, Any]] = []
    # A ticket the window checks already warned this user about is listed once.
    warned: set[int] = set()
    window_kinds = {NotificationKind.WINDOW_WARNING, NotificationKind.WINDOW_BREACH}
    for note in Notification.objects.filter(recipient=user, read_at__isnull=True)[:limit]:
        if note.kind in window_kinds and note.ticket_id:
            warned.add(note.ticket_id)
        url = f"/tickets/{note.ticket_id}/" if note.ticket_id else ""
        if note.kind == NotificationKind.DEAD_LETTER:
            url = DEAD_LETTERS_URL
        items.append(
            {
                "kind": note.kind,
                "label": _KIND_LABELS.get(note.kind, note.kind),
                "text": note.text,
                "url": url,
                "at": note.created_at,
            }
        )
    if has_role(user, LEGAL):
        waiting = (
            Reply.objects.filter(state="in_review", ticket__state=TicketState.IN_LEGAL_REVIEW)
            .exclude(author=user)
            .select_related("ticket")
            .only("updated_at", "ticket__submitted_at")
            .order_by("ticket__deadline", "id")[:limit]
        )
        for reply in waiting:
            items.append(
                {
                    "kind": "review",
                    "label": "Review",
                    "text": f"Reply on ticket #{reply.ticket_id} is waiting for legal review.",
                    "url": f"/legal/reviews/{reply.pk}/",
                    "at": reply.ticket.submitted_at or reply.updated_at,
                }
            )
    now = timezone.now()
    mine = (
        Ticket.objects.filter(
            assignee=user, state__in=WORKING_STATES, deadline__lte=now + timedelta(hours=24)
        )
        .only("posted_at", "deadline")
        .order_by("deadline", "id")[:limit]
    )
    for ticket in mine:
        window = (ticket.deadline - ticket.posted_at).total_seconds() or 1
        used = (now - ticket.posted_at).total_seconds() / window
        if used >= 0.8 and ticket.pk not in warned:
            verb = "has breached its window" if used >= 1 else "is about to breach its window"
            items.append(
                {
                    "kind": "breach",
                    "label": "Window",
                    "text": f"Ticket #{ticket.pk} {verb}.",
                    "url": f"/tickets/{ticket.pk}/",
                    "at": ticket.deadline,
                }
            )
    return {"items": items, "unread": len(items)}


def presence_for(*, ticket_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Who is on each ticket's page now (one cache read for all of them)."""
    import time

    from django.core.cache import cache

    from tickets.services.collab import PRESENCE_TTL, presence_key

    if not ticket_ids:
        return {}
    keys = {presence_key(ticket_id): ticket_id for ticket_id in ticket_ids}
    found = cache.get_many(list(keys))
    now = time.time()
    result: dict[int, list[dict[str, Any]]] = {}
    for key, entries in found.items():
        fresh = [
            {"user_id": int(user_id), **entry}
            for user_id, entry in entries.items()
            if now - entry["at"] <= PRESENCE_TTL
        ]
        if fresh:
            result[keys[key]] = sorted(fresh, key=lambda entry: entry["name"])
    return result
