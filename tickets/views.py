"""HTML pages for agents and everyone who helps them: login, inbox, ticket page.

Views read through selectors and change state only through services; a service's
refusal is shown to the user (a message, or the page again with the error), never a 500.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from approvals.screening import screen
from servicedesk.errors import ApplicationError, InvalidInput, RoleRequired
from servicedesk.roles import AGENT, LEGAL, SUPERVISOR, has_role, is_desk_user
from tickets import selectors, services
from tickets.enums import Sentiment, TicketState
from tickets.models import InvitationRole
from tickets.services import collab
from tickets.ui import (
    CHANNEL_ICONS,
    active_reply,
    advice_items,
    can_write,
    countdown,
    csp,
    editor_state,
    excerpt,
    highlight,
    html_view,
    landing_url,
    now_context,
    safe_url,
    user_label,
)

DESK = (AGENT, LEGAL, SUPERVISOR)
FINISHED_STATES = (TicketState.REPLIED, TicketState.CLOSED, TicketState.IGNORED)
CLOSABLE_STATES = (
    TicketState.OPEN,
    TicketState.IN_PROGRESS,
    TicketState.SEND_FAILED,
    TicketState.REPLIED,
)


# ---- small helpers ------------------------------------------------------------------


def _text(request: HttpRequest, name: str, *, limit: int | None = None) -> str:
    """A text field from the form, refused when it could not be stored as it is."""
    value = request.POST.get(name, "")
    if "\x00" in value:
        raise InvalidInput("The text holds a NUL character.", code="invalid_input")
    if len(value.encode("utf-8")) > (limit or settings.MAX_TEXT_BYTES):
        raise InvalidInput("The text is too long.", code="text_too_long")
    return value.replace("\r\n", "\n")


def _ticket_url(ticket_id: int) -> str:
    return reverse("web:ticket", args=[ticket_id])


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _act(request: HttpRequest, action, *, success: str, then: str) -> HttpResponse:
    """Run one service; say what happened; back to the page. A role refusal is a 403 page."""
    try:
        action()
    except RoleRequired:
        raise
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if success:
            messages.success(request, success)
    return redirect(then)


def _channel(ticket) -> dict[str, str]:
    return {
        "icon": CHANNEL_ICONS.get(ticket.channel.platform, "?"),
        "platform": ticket.channel.platform,
        "label": f"{ticket.channel.get_platform_display()} — {ticket.channel.name}",
    }


# ---- login and landing --------------------------------------------------------------


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        return landing_url(self.request.user)


login_view = csp(LoginView.as_view())
logout_view = csp(auth_views.LogoutView.as_view(next_page=settings.LOGOUT_REDIRECT_URL))


@html_view()
def home(request: HttpRequest) -> HttpResponse:
    return redirect(landing_url(request.user))


# ---- inbox ----------------------------------------------------------------------------


def _inbox_filters(request: HttpRequest) -> dict[str, str]:
    query = request.GET
    view = query.get("view", "all")
    state = query.get("state", "")
    regulated = query.get("regulated", "")
    return {
        "view": view if view in selectors.INBOX_VIEWS else "all",
        "state": state if state in TicketState.values else "",
        "regulated": regulated if regulated in ("true", "false") else "",
        "channel": query.get("channel", "")[:64],
    }


def _inbox_rows(request: HttpRequest, filters: dict[str, str]) -> dict[str, Any]:
    """The rows as plain strings: the inbox is the hottest page, and the template then
    does nothing but dictionary lookups (no includes, no URL reversing per row)."""
    tickets, more = selectors.inbox_tickets(user=request.user, **filters)
    clock = now_context()
    presence = selectors.presence_for(ticket_ids=[ticket.pk for ticket in tickets])
    can_claim = has_role(request.user, AGENT, SUPERVISOR)
    states = dict(TicketState.choices)
    sentiments = dict(Sentiment.choices)
    rows = []
    for ticket in tickets:
        customer = ticket.customer
        url = f"/tickets/{ticket.pk}/"
        rows.append(
            {
                "id": ticket.pk,
                "url": url,
                "claim_url": f"{url}claim/",
                "channel": _channel(ticket),
                "customer": customer.handle or customer.external_id,
                "customer_name": customer.display_name,
                "excerpt": excerpt(ticket.first_text, ticket.first_screening),
                "sentiment": ticket.sentiment,
                "sentiment_label": sentiments.get(ticket.sentiment, ticket.sentiment),
                "regulated": ticket.regulated,
                "state": ticket.state,
                "state_label": states.get(ticket.state, ticket.state),
                "assignee": ticket.assignee.username if ticket.assignee_id else "—",
                "cd": countdown(ticket, clock["now"]),
                "others": [
                    entry
                    for entry in presence.get(ticket.pk, ())
                    if entry["user_id"] != request.user.pk
                ],
                "claimable": can_claim and ticket.state == TicketState.OPEN,
            }
        )
    return {"rows": rows, "more": more, "query": request.GET.urlencode(), **clock}


@require_GET
@html_view(*DESK)
def inbox(request: HttpRequest) -> HttpResponse:
    filters = _inbox_filters(request)
    context = {
        "filters": filters,
        "channels": selectors.channel_names(user=request.user),
        "states": [(value, label) for value, label in TicketState.choices if value != "new"],
        **_inbox_rows(request, filters),
    }
    return render(request, "tickets/inbox.html", context)


@require_GET
@html_view(*DESK)
def inbox_rows(request: HttpRequest) -> HttpResponse:
    """The inbox's rows alone: htmx polls this so new tickets appear without a reload."""
    context = _inbox_rows(request, _inbox_filters(request))
    return render(request, "tickets/_inbox_rows.html", context)


# ---- ticket page ----------------------------------------------------------------------


def _may_see_pii(ticket, user) -> bool:
    """The full text of a post with personal data: the assignee, legal and supervisors."""
    return ticket.assignee_id == user.pk or has_role(user, LEGAL, SUPERVISOR)


def _thread(ticket, *, show_pii: bool) -> list[dict[str, Any]]:
    items = []
    for mention in ticket.mentions.all():
        items.append(
            {
                "kind": "post",
                "at": mention.posted_at,
                "who": mention.customer.handle or mention.customer.external_id,
                "name": mention.customer.display_name,
                "html": highlight(mention.text, mention.screening, show_pii=show_pii),
                "url": safe_url(mention.url),
                "raw_url": mention.url,
                "deleted_at": mention.deleted_at,
                # Earlier texts carry no screening to mask them by: shown only to those
                # who may read personal data.
                "edits": [edit.get("text", "") for edit in mention.edit_history]
                if show_pii
                else [],
                "edit_count": len(mention.edit_history),
                "screening": mention.screening or {},
                "reasons": (mention.screening or {}).get("reasons") or [],
                "advice": advice_items(mention.screening),
            }
        )
    for reply in ticket.replies.all():
        if reply.state != "sent":
            continue
        items.append(
            {
                "kind": "reply",
                "at": reply.sent_at or reply.updated_at,
                "who": reply.author.get_username(),
                "html": highlight(reply.body, None),
                "url": safe_url(reply.external_url),
                "reply_kind": getattr(reply, "kind", "answer"),
            }
        )
    return sorted(items, key=lambda item: item["at"])


def _ticket_context(
    request: HttpRequest, ticket, *, body: str | None = None, error: str = ""
) -> dict[str, Any]:
    user = request.user
    clock = now_context()
    reply = active_reply(ticket)
    text = body if body is not None else (reply.body if reply else "")
    draft_screening = screen(text, kind="draft").as_dict() if text.strip() else {}
    editor = editor_state(ticket, reply, user, text, draft_screening)
    presence = selectors.presence_for(ticket_ids=[ticket.pk]).get(ticket.pk, [])
    is_assignee = ticket.assignee_id == user.pk
    may_work = has_role(user, AGENT, SUPERVISOR)
    may_finish = may_work and (ticket.assignee_id in (None, user.pk) or has_role(user, SUPERVISOR))
    history = selectors.customer_history(user=user, ticket=ticket)
    return {
        "ticket": ticket,
        "channel": _channel(ticket),
        "countdown": countdown(ticket, clock["now"]),
        "thread": _thread(ticket, show_pii=_may_see_pii(ticket, user)),
        "history": [
            {"ticket": old, "excerpt": excerpt(old.first_text, old.first_screening)}
            for old in history
        ],
        "reply": reply,
        "reviews": list(reply.reviews.all()) if reply else [],
        "text": text,
        "draft_html": highlight(text, draft_screening),
        "draft_screening": draft_screening,
        "draft_advice": advice_items(draft_screening),
        "editor": editor,
        "can_write": can_write(ticket, user),
        "is_assignee": is_assignee,
        "can_claim": may_work and ticket.state == TicketState.OPEN,
        "can_close": may_finish and ticket.state in CLOSABLE_STATES,
        "can_ignore": may_finish and ticket.state in (TicketState.OPEN, TicketState.IN_PROGRESS),
        "can_clear_regulated": ticket.regulated and has_role(user, LEGAL, SUPERVISOR),
        "is_supervisor": has_role(user, SUPERVISOR),
        "workers": [
            {"id": worker.pk, "label": user_label(worker)}
            for worker in selectors.ticket_workers(user=user)
            if worker.pk != ticket.assignee_id
        ],
        "colleagues": [
            {"id": person.pk, "label": user_label(person)}
            for person in (selectors.colleagues(user=user) if is_desk_user(user) else [])
        ],
        "invitation_roles": InvitationRole.choices,
        "others": [entry for entry in presence if entry["user_id"] != user.pk],
        # Each saved draft adds its reasons again: show each one once.
        "regulated_reasons": list(
            {
                (r.get("source"), r.get("rule"), r.get("match"), r.get("start")): r
                for r in ticket.regulated_reasons or []
            }.values()
        ),
        "show_editor": reply is not None or ticket.state not in FINISHED_STATES,
        **_template_context(ticket, reply, user),
        "error": error,
        **clock,
    }


def _template_context(ticket, reply, user) -> dict[str, Any]:
    """The template picker (a draft can start from an approved template) and the
    holding reply (sent while the answer is with legal)."""
    from approvals.models import Branch, Product, TemplatePurpose, TemplateState
    from approvals.selectors import template_list
    from approvals.slots import SLOT_TYPES, placeholders, published_phones

    assignee = ticket.assignee_id == user.pk
    pick = can_write(ticket, user) and reply is None and ticket.state == TicketState.IN_PROGRESS
    hold = (
        assignee
        and ticket.state in (TicketState.IN_LEGAL_REVIEW, TicketState.APPROVED)
        and not any(r.kind == "holding" and r.state != "failed" for r in ticket.replies.all())
    )
    if not (pick or hold):
        return {"templates": [], "holding_templates": []}
    choices = {
        "branch": list(Branch.objects.filter(active=True).values_list("name", flat=True)),
        "product": list(Product.objects.filter(active=True).values_list("name", flat=True)),
        "phone": sorted(published_phones().values()),
    }
    first = (ticket.customer.display_name or "").split(" ")[0]
    defaults = {
        "handle": ticket.customer.handle,
        "first_name": first if first.isalpha() else "",
    }
    usable, holding = [], []
    for template in template_list(user=user, usable_only=True):
        version = next(v for v in template.versions.all() if v.state == TemplateState.APPROVED)
        slots = [
            {
                "name": name,
                "label": name.replace("_", " ").capitalize(),
                "type": SLOT_TYPES[name],
                "choices": choices.get(SLOT_TYPES[name]),
                "value": defaults.get(name, ""),
            }
            for name in placeholders(version.body)
        ]
        entry = {"template": template, "version": version, "slots": slots}
        if template.purpose == TemplatePurpose.HOLDING:
            holding.append(entry)
        else:
            usable.append(entry)
    return {"templates": usable if pick else [], "holding_templates": holding if hold else []}


@require_GET
@html_view()
def ticket_detail(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = selectors.ticket_page(user=request.user, ticket_id=ticket_id)
    collab.notifications_mark_read(user=request.user, ticket_id=ticket.pk)
    return render(request, "tickets/ticket.html", _ticket_context(request, ticket))


@require_POST
@html_view()
def ticket_screen(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """The live check of the draft as the agent types: the screening and the buttons."""
    ticket = selectors.ticket_page(user=request.user, ticket_id=ticket_id)
    text = _text(request, "body")
    context = _ticket_context(request, ticket, body=text)
    return render(request, "tickets/_screening.html", {**context, "oob": True})


@require_POST
@html_view()
def ticket_claim(request: HttpRequest, ticket_id: int) -> HttpResponse:
    return _act(
        request,
        lambda: services.ticket_claim(ticket_id=ticket_id, actor=request.user),
        success="",
        then=_ticket_url(ticket_id),
    )


@require_POST
@html_view()
def ticket_close(request: HttpRequest, ticket_id: int) -> HttpResponse:
    reason = _text(request, "reason", limit=500)
    return _act(
        request,
        lambda: services.ticket_close(ticket_id=ticket_id, actor=request.user, reason=reason),
        success=f"Ticket #{ticket_id} closed.",
        then=reverse("web:inbox"),
    )


@require_POST
@html_view()
def ticket_ignore(request: HttpRequest, ticket_id: int) -> HttpResponse:
    reason = _text(request, "reason", limit=500)
    return _act(
        request,
        lambda: services.ticket_ignore(ticket_id=ticket_id, actor=request.user, reason=reason),
        success=f"Ticket #{ticket_id} ignored.",
        then=reverse("web:inbox"),
    )


@require_POST
@html_view()
def ticket_reply(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """The draft form: Save draft, Send reply or Submit for legal review.

    The text in the editor is saved first when it changed (a new draft, or a new
    revision, which voids an approval), then sent or submitted. A refusal shows the
    page again with the text as typed and the reason.
    """
    action = request.POST.get("action", "save")
    body = _text(request, "body")
    user = request.user
    ticket = selectors.ticket_page(user=user, ticket_id=ticket_id)
    reply = active_reply(ticket)
    try:
        if reply is None:
            if not body.strip():
                raise InvalidInput("Write a reply first.", code="empty_reply")
            reply = services.reply_create(ticket_id=ticket.pk, actor=user, body=body)
        elif body != reply.body:
            if not body.strip():
                raise InvalidInput("Write a reply first.", code="empty_reply")
            reply = services.reply_update(reply_id=reply.pk, actor=user, body=body)
        if action == "send":
            services.reply_send(reply_id=reply.pk, actor=user)
            messages.success(request, "Reply sent to the platform.")
        elif action == "submit":
            services.reply_submit(reply_id=reply.pk, actor=user)
            messages.success(request, "Submitted for legal review.")
        else:
            messages.success(request, "Draft saved.")
    except RoleRequired:
        raise
    except ApplicationError as exc:
        ticket = selectors.ticket_page(user=user, ticket_id=ticket_id)
        context = _ticket_context(request, ticket, body=body, error=exc.message)
        return render(request, "tickets/ticket.html", context, status=exc.status_code)
    return redirect(_ticket_url(ticket_id))


def _slots_from(request: HttpRequest) -> dict[str, str]:
    return {
        key.removeprefix("slot_"): _text(request, key, limit=300)
        for key in request.POST
        if key.startswith("slot_")
    }


@require_POST
@html_view(*DESK)
def ticket_template(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """Start the reply from an approved template with its slot values."""
    template_id = request.POST.get("template", "")
    return _act(
        request,
        lambda: services.reply_create(
            ticket_id=ticket_id,
            actor=request.user,
            template_id=int(template_id) if template_id.isdigit() else 0,
            slots=_slots_from(request),
        ),
        success="Template filled in: an unchanged approved template can be sent at once.",
        then=_ticket_url(ticket_id) + "#draft",
    )


@require_POST
@html_view(*DESK)
def ticket_holding(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """Send the approved holding reply while the answer is with legal."""
    template_id = request.POST.get("template", "")
    return _act(
        request,
        lambda: services.reply_send_holding(
            ticket_id=ticket_id,
            actor=request.user,
            template_id=int(template_id) if template_id.isdigit() else None,
            slots=_slots_from(request),
        ),
        success="Holding reply sent: the customer knows a specialist is on it.",
        then=_ticket_url(ticket_id),
    )


@require_POST
@html_view()
def ticket_note(request: HttpRequest, ticket_id: int) -> HttpResponse:
    body = _text(request, "body", limit=20_000)
    return _act(
        request,
        lambda: collab.ticket_note_add(ticket_id=ticket_id, actor=request.user, body=body),
        success="Note added.",
        then=_ticket_url(ticket_id) + "#notes",
    )


@require_POST
@html_view(*DESK)
def ticket_invite(request: HttpRequest, ticket_id: int) -> HttpResponse:
    role = request.POST.get("role", "")
    message = _text(request, "message", limit=2000)
    return _act(
        request,
        lambda: collab.ticket_invite(
            ticket_id=ticket_id,
            actor=request.user,
            invitee_id=request.POST.get("invitee"),
            role=role,
            message=message,
        ),
        success="Colleague invited; they have been notified.",
        then=_ticket_url(ticket_id) + "#colleagues",
    )


@require_POST
@html_view(SUPERVISOR)
def ticket_reassign(request: HttpRequest, ticket_id: int) -> HttpResponse:
    reason = _text(request, "reason", limit=500)
    return _act(
        request,
        lambda: collab.ticket_reassign(
            ticket_id=ticket_id,
            actor=request.user,
            assignee_id=request.POST.get("assignee"),
            reason=reason,
        ),
        success="Ticket reassigned.",
        then=_ticket_url(ticket_id),
    )


@require_POST
@html_view(LEGAL, SUPERVISOR)
def ticket_clear_regulated(request: HttpRequest, ticket_id: int) -> HttpResponse:
    reason = _text(request, "reason", limit=500).strip()

    def clear():
        if not reason:
            raise InvalidInput("Say why the flag is wrong: a reason is required.")
        services.ticket_clear_regulated(ticket_id=ticket_id, actor=request.user, reason=reason)

    return _act(
        request, clear, success="The regulated flag was cleared.", then=_ticket_url(ticket_id)
    )


@require_POST
@html_view()
def ticket_presence(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """Heartbeat from an open ticket page; answers who else is there."""
    ticket = selectors.ticket_brief(user=request.user, ticket_id=ticket_id)
    collab.presence_beat(
        ticket_id=ticket.pk, user=request.user, activity=request.POST.get("activity", "")
    )
    presence = selectors.presence_for(ticket_ids=[ticket.pk]).get(ticket.pk, [])
    others = [entry for entry in presence if entry["user_id"] != request.user.pk]
    return render(request, "tickets/_presence.html", {"others": others, "ticket": ticket})


# ---- notifications --------------------------------------------------------------------


@require_GET
@html_view()
def notifications(request: HttpRequest) -> HttpResponse:
    bell = selectors.notifications_for(user=request.user, limit=50)
    return render(request, "tickets/notifications.html", {"bell": bell})


@require_GET
@html_view()
def notifications_bell(request: HttpRequest) -> HttpResponse:
    bell = selectors.notifications_for(user=request.user)
    return render(request, "tickets/_bell.html", {"unread": bell["unread"]})


@require_POST
@html_view()
def notifications_read(request: HttpRequest) -> HttpResponse:
    count = collab.notifications_mark_read(user=request.user)
    messages.success(request, f"{count} notification(s) marked read.")
    return redirect(_back(request, reverse("web:notifications")))
