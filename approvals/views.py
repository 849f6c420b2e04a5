"""HTML pages for legal: the review queue and the review of one reply."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from approvals import services
from approvals.models import Decision
from approvals.slots import fill
from servicedesk.errors import ApplicationError, InvalidInput, RoleRequired
from servicedesk.roles import LEGAL, SUPERVISOR, has_role
from servicedesk.two_factor import StepUpRequired, require_step_up, step_up_redirect
from tickets import selectors
from tickets.enums import ReplyState
from tickets.ui import (
    CHANNEL_ICONS,
    advice_items,
    countdown,
    epoch_ms,
    excerpt,
    fmt_duration,
    highlight,
    html_view,
    now_context,
    safe_url,
    word_diff,
)


def _review_url(reply_id: int) -> str:
    return reverse("legal:review", args=[reply_id])


def _queue_rows(request: HttpRequest) -> dict[str, Any]:
    replies, more = selectors.legal_queue(user=request.user)
    clock = now_context()
    rows = []
    for reply in replies:
        ticket = reply.ticket
        submitted_at = ticket.submitted_at or reply.updated_at
        rows.append(
            {
                "reply_id": reply.pk,
                "revision": reply.revision,
                "ticket_id": ticket.pk,
                "url": f"/legal/reviews/{reply.pk}/",
                "icon": CHANNEL_ICONS.get(ticket.channel.platform, "?"),
                "platform_id": ticket.channel.platform,
                "platform": ticket.channel.get_platform_display(),
                "customer": ticket.customer.handle or ticket.customer.external_id,
                "excerpt": excerpt(reply.ticket_first_text, reply.ticket_first_screening),
                "cd": countdown(ticket, clock["now"]),
                "submitted_ms": epoch_ms(submitted_at),
                "waiting": fmt_duration((clock["now"] - submitted_at).total_seconds()),
                "submitted_by": reply.submitted_by or reply.author.get_username(),
                "own": reply.author_id == request.user.pk,
            }
        )
    return {"rows": rows, "more": more, **clock}


@require_GET
@html_view(LEGAL, SUPERVISOR)
def queue(request: HttpRequest) -> HttpResponse:
    return render(request, "approvals/queue.html", _queue_rows(request))


@require_GET
@html_view(LEGAL, SUPERVISOR)
def queue_rows(request: HttpRequest) -> HttpResponse:
    """The queue's rows alone, polled by htmx."""
    return render(request, "approvals/_queue_rows.html", _queue_rows(request))


def _review_context(request: HttpRequest, reply, *, comment: str = "") -> dict[str, Any]:
    ticket = reply.ticket
    clock = now_context()
    revisions = list(reply.revisions.all())
    reviews = list(reply.reviews.all())
    editors = {revision.editor_id for revision in revisions} | {reply.author_id}
    last_review = reviews[-1] if reviews else None
    previous = None
    if last_review is not None:
        previous = next((r for r in revisions if r.number == last_review.revision), None)
    pending = reply.state == ReplyState.IN_REVIEW
    is_lawyer = has_role(request.user, LEGAL)
    own = request.user.pk in editors
    return {
        "reply": reply,
        "ticket": ticket,
        "icon": CHANNEL_ICONS.get(ticket.channel.platform, "?"),
        "platform": ticket.channel.get_platform_display(),
        "countdown": countdown(ticket, clock["now"]),
        "posts": [
            {
                "mention": mention,
                "html": highlight(mention.text, mention.screening),
                "url": safe_url(mention.url),
                "reasons": (mention.screening or {}).get("reasons") or [],
            }
            for mention in ticket.mentions.all()
        ],
        "draft_html": highlight(reply.body, reply.screening),
        "reasons": (reply.screening or {}).get("reasons") or [],
        "pii": (reply.screening or {}).get("pii") or [],
        "advice": advice_items(reply.screening),
        "policy_version": (reply.screening or {}).get("policy_version", ""),
        "ticket_reasons": ticket.regulated_reasons or [],
        "previous": previous,
        "last_review": last_review,
        "diff": word_diff(previous.body, reply.body) if previous else None,
        **_template_diff(reply),
        "reviews": reviews,
        "revisions": revisions,
        "pending": pending,
        "own": own,
        "can_approve": pending and is_lawyer and not own,
        "can_request_changes": pending and is_lawyer,
        "comment": comment,
        "submitted_ms": epoch_ms(ticket.submitted_at) if ticket.submitted_at else None,
        "Decision": Decision,
        **clock,
    }


def _template_diff(reply) -> dict[str, Any]:
    """A reply made from a template: the lawyer reads only what differs from the text
    legal already approved (the version filled with the reply's slot values)."""
    version = reply.template_version
    if version is None:
        return {"template_version": None}
    try:
        approved_text, _ = fill(version.body, reply.template_slots or {})
    except ApplicationError:
        approved_text = version.body
    return {
        "template_version": version,
        "template_diff": word_diff(approved_text, reply.body),
        "template_unchanged": approved_text == reply.body,
    }


@require_GET
@html_view(LEGAL, SUPERVISOR)
def review(request: HttpRequest, reply_id: int) -> HttpResponse:
    reply = selectors.review_page(user=request.user, reply_id=reply_id)
    return render(request, "approvals/review.html", _review_context(request, reply))


def _decide(request: HttpRequest, reply_id: int, decide, success: str) -> HttpResponse:
    comment = request.POST.get("comment", "")
    if "\x00" in comment or len(comment) > 5000:
        raise InvalidInput("The comment must be plain text of at most 5,000 characters.")
    try:
        decide(comment)
    except RoleRequired:
        raise
    except ApplicationError as exc:
        reply = selectors.review_page(user=request.user, reply_id=reply_id)
        context = {**_review_context(request, reply, comment=comment), "error": exc.message}
        return render(request, "approvals/review.html", context, status=exc.status_code)
    messages.success(request, success)
    return redirect(reverse("legal:queue"))


@require_POST
@html_view(LEGAL)
def approve(request: HttpRequest, reply_id: int) -> HttpResponse:
    try:
        require_step_up(request)
    except StepUpRequired:
        return step_up_redirect(request, _review_url(reply_id))
    return _decide(
        request,
        reply_id,
        lambda comment: services.review_approve(
            reply_id=reply_id, actor=request.user, comment=comment
        ),
        "Approved: the agent can send this exact text.",
    )


@require_POST
@html_view(LEGAL)
def request_changes(request: HttpRequest, reply_id: int) -> HttpResponse:
    return _decide(
        request,
        reply_id,
        lambda comment: services.review_request_changes(
            reply_id=reply_id, actor=request.user, comment=comment
        ),
        "Changes requested: the draft is back with the agent.",
    )
