"""Presentation helpers for the HTML pages: the page decorator (login, roles, CSP),
countdowns, masking, highlighting, diffs and why a reply can or cannot be sent.

Everything that renders text a customer or a colleague wrote escapes it here, with
`format_html`/`conditional_escape`: post text is hostile input.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import wraps
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString

from servicedesk.errors import ApplicationError, NotFound, RoleRequired
from servicedesk.roles import ADMIN, AGENT, LEGAL, SUPERVISOR, has_role, role_names
from tickets.clock import duration_text
from tickets.enums import WORKING_STATES, ReplyState, TicketState

# No inline script or style anywhere: htmx runs with eval off and its indicator styles
# come from our stylesheet, so a script injected through a post could never run.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

ROLE_LABELS = {AGENT: "Agent", LEGAL: "Legal", SUPERVISOR: "Supervisor", ADMIN: "Admin"}

# Short text "icons" per platform: no image requests, readable by screen readers.
CHANNEL_ICONS = {
    "x": "X",
    "facebook": "f",
    "instagram": "IG",
    "linkedin": "in",
    "youtube": "YT",
    "mastodon": "M",
    "bluesky": "BS",
    "generic": "W",
    "simulated": "S",
}


def with_csp(response: HttpResponse) -> HttpResponse:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def csp(view: Callable) -> Callable:
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        return with_csp(view(request, *args, **kwargs))

    return wrapper


def error_page(request: HttpRequest, status: int, message: str) -> HttpResponse:
    template = {403: "403.html", 404: "404.html"}.get(status, "error.html")
    response = render(request, template, {"message": message, "status": status}, status=status)
    return with_csp(response)


def html_view(*roles: str) -> Callable:
    """A page: logged-in users only (others go to the login page), optionally of some
    roles (others get a 403 page saying why), a service's role or not-found error shown
    as a 403/404 page rather than a 500, and the CSP header on every answer."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            if roles and not has_role(request.user, *roles):
                wanted = " or ".join(ROLE_LABELS.get(role, role).lower() for role in roles)
                return error_page(request, 403, f"This page is for {wanted} users.")
            try:
                response = view(request, *args, **kwargs)
            except RoleRequired as exc:
                return error_page(request, 403, exc.message)
            except PermissionDenied as exc:
                return error_page(request, 403, str(exc) or "Your role does not allow this.")
            except (NotFound, Http404) as exc:
                message = exc.message if isinstance(exc, NotFound) else "Not found."
                return error_page(request, 404, message)
            except ApplicationError as exc:
                return error_page(request, exc.status_code, exc.message)
            return with_csp(response)

        return wrapper

    return decorate


# ---- who is logged in -------------------------------------------------------------


def display_name(user) -> str:
    return user.get_full_name() or user.get_username()


def user_label(user) -> str:
    """'Full Name (username)' or the username."""
    full = user.get_full_name()
    return f"{full} ({user.get_username()})" if full else user.get_username()


def _nav(request: HttpRequest) -> dict[str, Any]:
    from tickets.selectors import notifications_for

    user = request.user
    roles = role_names(user)
    bell = notifications_for(user=user)
    return {
        "name": display_name(user),
        "roles": ", ".join(ROLE_LABELS[role] for role in ROLE_LABELS if role in roles) or "Guest",
        "is_agent": AGENT in roles,
        "is_legal": LEGAL in roles,
        "is_supervisor": SUPERVISOR in roles,
        "is_admin": ADMIN in roles,
        "desk": bool(roles & {AGENT, LEGAL, SUPERVISOR}),
        "unread": bell["unread"],
    }


def nav_context(request: HttpRequest) -> dict[str, Any]:
    """Template context for the navigation, computed only when a page's layout reads it
    (fragments that htmx polls never do, so they cost no extra queries)."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"nav": SimpleLazyObject(lambda: _nav(request))}


def landing_url(user) -> str:
    """Where a user lands after logging in: by role."""
    if has_role(user, SUPERVISOR) and not has_role(user, AGENT):
        return "/reports/"
    if has_role(user, AGENT):
        return "/inbox/"
    if has_role(user, LEGAL):
        return "/legal/"
    if has_role(user, ADMIN):
        return "/admin/"
    # Anyone else works only on the tickets they were invited to.
    return "/notifications/"


# ---- time ---------------------------------------------------------------------------


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


fmt_duration = duration_text  # the pages and the supervision messages write time alike


def countdown(ticket, now: datetime) -> dict[str, Any] | None:
    """The window countdown as rendered on the server (the browser keeps it ticking).

    Amber once half of the window is used, red at 80%, then "overdue by …".
    None for tickets that no longer wait for an answer.
    """
    if ticket.state not in WORKING_STATES:
        return None
    window = max((ticket.deadline - ticket.posted_at).total_seconds(), 1.0)
    left = (ticket.deadline - now).total_seconds()
    used = (now - ticket.posted_at).total_seconds() / window
    if left < 0:
        level, text = "overdue", f"overdue by {fmt_duration(left)}"
    else:
        level = "red" if used >= 0.8 else "amber" if used >= 0.5 else "ok"
        text = f"{fmt_duration(left)} left"
    return {
        "start_ms": epoch_ms(ticket.posted_at),
        "deadline_ms": epoch_ms(ticket.deadline),
        "iso": ticket.deadline.isoformat(),
        "level": level,
        "text": text,
    }


# ---- text: masking, highlighting, diffs ---------------------------------------------------


def _spans(items: Iterable[dict[str, Any]], length: int) -> list[tuple[int, int, dict]]:
    spans = []
    for item in items or ():
        try:
            start, end = int(item["start"]), int(item["end"])
        except (KeyError, TypeError, ValueError):
            continue
        start, end = max(start, 0), min(end, length)
        if start < end:
            spans.append((start, end, item))
    return spans


def mask_pii(text: str, screening: dict[str, Any] | None) -> str:
    """The text with every personal-data span the screening found replaced by its mask."""
    if not text or not screening:
        return text or ""
    spans = sorted(_spans(screening.get("pii") or (), len(text)), key=lambda span: span[0])
    parts: list[str] = []
    position = 0
    for start, end, item in spans:
        if start < position:  # overlaps the previous span: already masked
            start = position
            if start >= end:
                continue
        parts.append(text[position:start])
        masked = str(item.get("masked") or "")
        parts.append(masked if masked and masked != text[start:end] else "•" * (end - start))
        position = end
    parts.append(text[position:])
    return "".join(parts)


def excerpt(text: str | None, screening: dict[str, Any] | None, limit: int = 140) -> str:
    """The first line of a post, personal data masked, at most `limit` characters."""
    masked = mask_pii(text or "", screening)
    first = next((line.strip() for line in masked.splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def highlight(text: str, screening: dict[str, Any] | None, *, show_pii: bool = True) -> SafeString:
    """The text, escaped, with the screening's matched spans wrapped in <mark>.

    Policy matches are marked with their category and rule id; personal data is marked
    as such, or replaced by its mask when the viewer may not read it.
    """
    text = text or ""
    screening = screening or {}
    marks = [
        (start, end, "rule", item)
        for start, end, item in _spans(screening.get("reasons") or (), len(text))
    ] + [(start, end, "pii", item) for start, end, item in _spans(screening.get("pii"), len(text))]
    if not marks:
        return conditional_escape(text)
    cuts = sorted({0, len(text), *(m[0] for m in marks), *(m[1] for m in marks)})
    out: list[SafeString] = []
    for left, right in zip(cuts, cuts[1:], strict=False):
        piece = text[left:right]
        covering = [m for m in marks if m[0] <= left and m[1] >= right]
        pii = [m for m in covering if m[2] == "pii"]
        if pii and not show_pii:
            # The whole span becomes its mask, written once where the span starts.
            for start, end, _, item in pii:
                if start == left:
                    mask = str(item.get("masked") or "") or "•" * (end - start)
                    out.append(
                        format_html('<mark class="hl-pii" title="personal data">{}</mark>', mask)
                    )
            continue
        if not covering:
            out.append(conditional_escape(piece))
            continue
        labels = sorted(
            {
                f"personal data: {m[3].get('kind', '')}"
                if m[2] == "pii"
                else f"{m[3].get('category', '')}: {m[3].get('rule', '')}"
                for m in covering
            }
        )
        out.append(
            format_html(
                '<mark class="{}" title="{}">{}</mark>',
                "hl-pii" if pii else "hl-rule",
                "; ".join(labels),
                piece,
            )
        )
    return _join(out)


def _join(pieces: list[SafeString]) -> SafeString:
    """Concatenate already-escaped pieces (each is escaped again if it is not safe)."""
    return format_html_join("", "{}", ((piece,) for piece in pieces))


def advice_items(screening: dict[str, Any] | None) -> list[str]:
    """The screening's advice (Reg Z, UDAAP, personal data) as plain sentences."""
    items = []
    for entry in (screening or {}).get("advice") or ():
        if isinstance(entry, str):
            items.append(entry)
        elif isinstance(entry, dict):
            keys = ("message", "text", "advice", "description")
            text = next((entry[key] for key in keys if key in entry), None)
            items.append(str(text) if text is not None else ", ".join(map(str, entry.values())))
    return items


_TOKENS = re.compile(r"\S+\s*|\s+")


def word_diff(old: str, new: str) -> SafeString:
    """A word-level diff of two texts, escaped, with <del> and <ins>."""
    before = _TOKENS.findall(old or "")
    after = _TOKENS.findall(new or "")
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    out: list[SafeString] = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            out.append(conditional_escape("".join(before[a0:a1])))
            continue
        if op in ("delete", "replace"):
            out.append(format_html("<del>{}</del>", "".join(before[a0:a1])))
        if op in ("insert", "replace"):
            out.append(format_html("<ins>{}</ins>", "".join(after[b0:b1])))
    return _join(out)


def safe_url(url: str | None) -> str:
    """The URL if it is a web link; '' for anything else (a javascript: URL never links)."""
    if not url:
        return ""
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return ""
    return url.strip() if scheme in ("http", "https") else ""


def reply_limit(platform: str) -> int | None:
    """The longest reply the platform takes, in characters (None: no limit we know)."""
    from connectors.base import PermanentError
    from connectors.registry import connector_class

    try:
        return connector_class(platform).max_reply_chars
    except (PermanentError, ImportError):
        return None


# ---- what the draft editor allows -----------------------------------------------------

EDITABLE_STATES = (TicketState.IN_PROGRESS, TicketState.APPROVED, TicketState.SEND_FAILED)


def can_write(ticket, user) -> bool:
    """May this user type in the ticket's draft now? The assignee, or a colleague
    invited to draft, while the ticket is in work and not with legal."""
    if ticket.state not in EDITABLE_STATES:
        return False
    if ticket.assignee_id == user.pk and has_role(user, AGENT, SUPERVISOR):
        return True
    invitation = getattr(ticket, "viewer_invitation", None)
    return invitation is not None and invitation.role == "draft"


def editor_state(ticket, reply, user, text: str, screening: dict[str, Any]) -> dict[str, Any]:
    """Whether Send reply and Submit for legal review can be used now, and if not why.

    The reasons are the ones the services would give (the legal gate is asked for the
    very text in the editor), so the button never promises what the server refuses.
    """
    from tickets.services.common import legal_gate

    limit = reply_limit(ticket.channel.platform)
    state = {
        "send_ok": False,
        "send_reason": "",
        "submit_ok": False,
        "submit_reason": "",
        "length": len(text),
        "limit": limit,
        "too_long": limit is not None and len(text) > limit,
    }
    is_assignee = ticket.assignee_id == user.pk
    holder = ticket.assignee.get_username() if ticket.assignee_id else None
    refusal = ""
    if ticket.state == TicketState.OPEN:
        refusal = "Claim the ticket first."
    elif not is_assignee:
        refusal = (
            f"Only the assignee ({holder}) can send or submit this reply."
            if holder
            else "Claim the ticket first."
        )
    elif ticket.state == TicketState.IN_LEGAL_REVIEW:
        refusal = "With legal: waiting for their decision."
    elif ticket.state == TicketState.SENDING:
        refusal = "The reply is being sent."
    elif ticket.state not in EDITABLE_STATES:
        refusal = f"The ticket is {ticket.get_state_display().lower()}."
    elif not text.strip():
        refusal = "Write a reply first."
    elif screening.get("blocked"):
        kinds = ", ".join(
            sorted({str(item.get("kind", "")).replace("_", " ") for item in screening["pii"]})
        )
        refusal = f"Remove the personal data ({kinds}): a reply carrying it cannot be sent."
    if refusal:
        state["send_reason"] = state["submit_reason"] = refusal
        return state

    changed = reply is None or text != reply.body
    # Submit: from in progress, or after an approval or a failed send once the text changed
    # (saving it first takes the ticket back to in progress).
    if ticket.state == TicketState.IN_PROGRESS or changed:
        decided = (
            reply is not None
            and not changed
            and any(review.revision == reply.revision for review in reply.reviews.all())
        )
        if decided:
            state["submit_reason"] = (
                "Legal already decided on this text; change it before submitting again."
            )
        else:
            state["submit_ok"] = True
    else:
        state["submit_reason"] = "Legal approved this text: send it, or change it to resubmit."

    if ticket.regulated or screening.get("regulated"):
        if reply is None:
            state["send_reason"] = (
                "This reply is regulated: a lawyer must approve this exact text before it is "
                "sent. Submit it for legal review."
            )
            return state
        # The gate as it will apply once this text is saved: regulated, whatever the
        # ticket's flag says now (a draft stating credit terms flags it on save).
        gated_ticket = SimpleNamespace(pk=ticket.pk, regulated=True)
        draft = copy.copy(reply)
        draft.body = text
        gate_refusal, _ = legal_gate(gated_ticket, draft)
        if gate_refusal is not None:
            state["send_reason"] = gate_refusal.message
            return state
    if state["too_long"]:
        state["send_reason"] = (
            f"Too long for {ticket.channel.get_platform_display()}: "
            f"{len(text)} of {limit} characters."
        )
        return state
    state["send_ok"] = True
    return state


def active_reply(ticket):
    """The ticket's current answer (not a holding reply), from the prefetched replies."""
    active = {
        ReplyState.DRAFT,
        ReplyState.IN_REVIEW,
        ReplyState.APPROVED,
        ReplyState.SENDING,
        ReplyState.FAILED,
    }
    for reply in ticket.replies.all():
        if reply.state in active and getattr(reply, "kind", "answer") == "answer":
            return reply
    return None


def now_context() -> dict[str, Any]:
    now = timezone.now()
    return {"now": now, "server_now_ms": epoch_ms(now)}
