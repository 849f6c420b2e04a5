"""Read queries for legal work."""

from __future__ import annotations

from django.db.models import QuerySet

from servicedesk.errors import RoleRequired
from servicedesk.roles import LEGAL, SUPERVISOR, has_role
from tickets.enums import ReplyState
from tickets.models import Reply


def review_queue(*, user) -> QuerySet[Reply]:
    """Replies waiting for legal, the customer's soonest deadline first."""
    if not has_role(user, LEGAL, SUPERVISOR):
        raise RoleRequired("Only legal and supervisors can read the legal queue.")
    return (
        Reply.objects.filter(state=ReplyState.IN_REVIEW)
        .select_related(
            "ticket", "ticket__channel", "ticket__customer", "ticket__assignee", "author"
        )
        .order_by("ticket__deadline", "ticket_id")
    )
