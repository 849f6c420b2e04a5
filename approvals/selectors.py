"""Read queries for legal work."""

from __future__ import annotations

import re

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from approvals.models import (
    Decision,
    LegalReview,
    PolicyState,
    PolicyVersion,
    ResponseTemplate,
    TemplateState,
    TemplateVersion,
)
from servicedesk.errors import NotFound, RoleRequired
from servicedesk.roles import LEGAL, SUPERVISOR, has_role, is_desk_user
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


def template_list(*, user, usable_only: bool = False) -> QuerySet[ResponseTemplate]:
    """Templates with their versions (newest first). Agents see only those they can use
    now: an approved, unexpired version."""
    if not is_desk_user(user):
        raise RoleRequired("Only agents, legal and supervisors can read templates.")
    queryset = ResponseTemplate.objects.prefetch_related(
        Prefetch(
            "versions",
            queryset=TemplateVersion.objects.select_related("approved_by", "created_by"),
        )
    ).order_by("name")
    if usable_only or not has_role(user, LEGAL, SUPERVISOR):
        now = timezone.now()
        queryset = queryset.filter(
            Exists(
                TemplateVersion.objects.filter(
                    template=OuterRef("pk"), state=TemplateState.APPROVED
                ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            )
        )
    return queryset


def template_get(*, user, template_id: int) -> ResponseTemplate:
    template = template_list(user=user).filter(pk=template_id).first()
    if template is None:
        raise NotFound("No such template.")
    return template


def template_candidates(*, user, min_approvals: int = 3) -> list[dict]:
    """Reply texts legal approved again and again: worth making templates.

    Texts are compared with handles and greeting names set aside, so "Hi @ana, …" and
    "Hi @raj, …" count as one text.
    """
    if not has_role(user, LEGAL, SUPERVISOR):
        raise RoleRequired("Only legal and supervisors see template candidates.")
    reviews = (
        LegalReview.objects.filter(decision=Decision.APPROVED, reply__template_version=None)
        .select_related("reply")
        .order_by("-created_at")[:5000]
    )
    groups: dict[str, dict] = {}
    for review in reviews:
        key = _candidate_key(review.reply.body)
        group = groups.setdefault(key, {"text": key, "approvals": 0, "reply_ids": []})
        group["approvals"] += 1
        if len(group["reply_ids"]) < 10:
            group["reply_ids"].append(review.reply_id)
    found = [g for g in groups.values() if g["approvals"] >= min_approvals]
    return sorted(found, key=lambda g: -g["approvals"])


_HANDLE = re.compile(r"@[\w.-]+(?:@[\w.-]+)?")
_GREETING = re.compile(r"^(hi|hello|hey|hola|thanks|gracias)\s+[^\W\d_]+([,!])", re.IGNORECASE)


def _candidate_key(body: str) -> str:
    text = _HANDLE.sub("{handle}", body.strip())
    text = _GREETING.sub(lambda m: f"{m.group(1)} {{first_name}}{m.group(2)}", text)
    return " ".join(text.split())


def policy_active(*, user) -> PolicyVersion | None:
    if not is_desk_user(user):
        raise RoleRequired("Only agents, legal and supervisors can read the policy.")
    return PolicyVersion.objects.filter(state=PolicyState.ACTIVE).prefetch_related("rules").first()


def policy_versions(*, user) -> QuerySet[PolicyVersion]:
    if not has_role(user, LEGAL, SUPERVISOR):
        raise RoleRequired("Only legal and supervisors can read policy versions.")
    return PolicyVersion.objects.select_related("created_by", "published_by").order_by("-number")
