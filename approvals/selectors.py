"""Read queries for legal work."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from servicedesk.errors import RoleRequired
from servicedesk.roles import LEGAL, SUPERVISOR, has_role
from tickets.enums import ReplyState
from tickets.models import Mention, Reply


def review_queue(*, user) -> QuerySet[Reply]:
    """Replies waiting for legal, the customer's soonest deadline first.

    Each reply carries `ticket_first_text`, the customer's first post (the excerpt).
    """
    if not has_role(user, LEGAL, SUPERVISOR):
        raise RoleRequired("Only legal and supervisors can read the legal queue.")
    first_text = Mention.objects.filter(ticket=OuterRef("ticket_id")).order_by("posted_at", "id")
    return (
        Reply.objects.filter(state=ReplyState.IN_REVIEW)
        .annotate(ticket_first_text=Subquery(first_text.values("text")[:1]))
        .select_related(
            "ticket", "ticket__channel", "ticket__customer", "ticket__assignee", "author"
        )
        .order_by("ticket__deadline", "ticket_id")
    )
