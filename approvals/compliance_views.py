"""HTML pages legal owns beside reviews: pre-approved templates and the screening policy.

Templates: list (with replies legal keeps approving, suggested as templates), create,
edit the draft version, approve (never a version one wrote; optional expiry), retire.
Policy: the active version's rules, a draft to edit rule by rule, a text tried against
the draft and the active version side by side, and publishing.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import selectors, template_services
from approvals.models import (
    AppliesTo,
    Category,
    PolicyState,
    PolicyVersion,
    RuleKind,
    TemplatePurpose,
    TemplateState,
)
from approvals.policy import active_policy
from approvals.screening import screen
from approvals.slots import SLOT_HELP, SLOT_TYPES, placeholders
from servicedesk.errors import ApplicationError, InvalidInput, NotFound
from servicedesk.roles import LEGAL, SUPERVISOR, has_role
from servicedesk.two_factor import StepUpRequired, require_step_up, step_up_redirect
from tickets.ui import advice_items, highlight, html_view

_MAX_TEXT = 5000


def _text(request: HttpRequest, name: str, *, limit: int = _MAX_TEXT) -> str:
    value = request.POST.get(name, "")
    if "\x00" in value or len(value) > limit:
        raise InvalidInput(f"'{name}' must be plain text of at most {limit:,} characters.")
    return value


# --- templates -------------------------------------------------------------------------


def _template_rows(request: HttpRequest) -> list[dict[str, Any]]:
    rows = []
    for template in selectors.template_list(user=request.user):
        versions = list(template.versions.all())
        approved = next((v for v in versions if v.state == TemplateState.APPROVED), None)
        draft = next((v for v in versions if v.state == TemplateState.DRAFT), None)
        rows.append(
            {
                "template": template,
                "approved": approved,
                "draft": draft,
                "expired": bool(
                    approved and approved.expires_at and approved.expires_at <= timezone.now()
                ),
                "url": reverse("legal:template", args=[template.pk]),
            }
        )
    return rows


@require_GET
@html_view(LEGAL, SUPERVISOR)
def templates(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "approvals/templates.html",
        {
            "rows": _template_rows(request),
            "candidates": selectors.template_candidates(user=request.user)[:10],
            "purposes": TemplatePurpose.choices,
            "slot_help": [("{" + name + "}", SLOT_HELP[kind]) for name, kind in SLOT_TYPES.items()],
        },
    )


@require_POST
@html_view(LEGAL, SUPERVISOR)
def template_create(request: HttpRequest) -> HttpResponse:
    form = {
        "name": _text(request, "name", limit=120),
        "body": _text(request, "body"),
        "purpose": request.POST.get("purpose", TemplatePurpose.ANSWER),
        "description": _text(request, "description", limit=300),
    }
    try:
        version = template_services.template_create(actor=request.user, **form)
    except ApplicationError as exc:
        if exc.status_code == 403:
            raise
        context = {
            "rows": _template_rows(request),
            "candidates": selectors.template_candidates(user=request.user)[:10],
            "purposes": TemplatePurpose.choices,
            "form": form,
            "error": exc.message,
            "slot_help": [("{" + n + "}", SLOT_HELP[k]) for n, k in SLOT_TYPES.items()],
        }
        return render(request, "approvals/templates.html", context, status=exc.status_code)
    messages.success(request, "Template created as a draft: another lawyer approves it.")
    return redirect(reverse("legal:template", args=[version.template_id]))


def _template_context(request: HttpRequest, template_id: int, **extra) -> dict[str, Any]:
    template = selectors.template_get(user=request.user, template_id=template_id)
    versions = list(template.versions.all())
    draft = next((v for v in versions if v.state == TemplateState.DRAFT), None)
    approved = next((v for v in versions if v.state == TemplateState.APPROVED), None)
    draft_screening = screen(draft.body, kind="draft").as_dict() if draft else None
    own = bool(draft and request.user.pk in (draft.editor_ids or [draft.created_by_id]))
    is_lawyer = has_role(request.user, LEGAL)
    return {
        "template": template,
        "versions": versions,
        "draft": draft,
        "approved": approved,
        "draft_html": highlight(draft.body, draft_screening) if draft else "",
        "draft_advice": advice_items(draft_screening),
        "draft_slots": placeholders(draft.body) if draft else [],
        "own": own,
        "can_approve": bool(draft) and is_lawyer and not own,
        "can_retire": bool(approved) and is_lawyer,
        "can_edit": has_role(request.user, LEGAL, SUPERVISOR),
        "edit_body": (draft or approved).body if (draft or approved) else "",
        **extra,
    }


@require_http_methods(["GET", "POST"])
@html_view(LEGAL, SUPERVISOR)
def template_detail(request: HttpRequest, template_id: int) -> HttpResponse:
    if request.method == "GET":
        return render(request, "approvals/template.html", _template_context(request, template_id))
    action = request.POST.get("action", "")
    try:
        if action == "edit":
            template_services.template_update(
                template_id=template_id, actor=request.user, body=_text(request, "body")
            )
            messages.success(request, "Draft saved.")
        elif action == "approve":
            try:
                require_step_up(request)
            except StepUpRequired:
                return step_up_redirect(request, reverse("legal:template", args=[template_id]))
            template_services.template_approve(
                template_id=template_id,
                actor=request.user,
                expires_at=_expiry(request.POST.get("expires_on", "")),
                comment=_text(request, "comment"),
            )
            messages.success(request, "Approved: agents can send this version at once.")
        elif action == "retire":
            template_services.template_retire(template_id=template_id, actor=request.user)
            messages.success(request, "Retired: replies made from it now need a review.")
        else:
            raise InvalidInput("Unknown action.")
    except ApplicationError as exc:
        if exc.status_code == 403 and exc.code != "self_approval":
            raise
        context = _template_context(
            request, template_id, error=exc.message, edit_body=request.POST.get("body", "")
        )
        return render(request, "approvals/template.html", context, status=exc.status_code)
    return redirect(reverse("legal:template", args=[template_id]))


def _expiry(value: str) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("The expiry is a date, YYYY-MM-DD.", code="invalid_input") from None
    return timezone.make_aware(datetime.combine(day, time(23, 59, 59)))


# --- the screening policy ------------------------------------------------------------------


def _version(number: int) -> PolicyVersion:
    version = PolicyVersion.objects.filter(number=number).prefetch_related("rules").first()
    if version is None:
        raise NotFound("No such policy version.")
    return version


@require_GET
@html_view(LEGAL, SUPERVISOR)
def policy(request: HttpRequest) -> HttpResponse:
    versions = list(selectors.policy_versions(user=request.user)[:20])
    active = next((v for v in versions if v.state == PolicyState.ACTIVE), None)
    draft = next((v for v in versions if v.state == PolicyState.DRAFT), None)
    return render(
        request,
        "approvals/policy.html",
        {
            "versions": versions,
            "active": active,
            "draft": draft,
            "in_use": active_policy().label,
            "is_lawyer": has_role(request.user, LEGAL),
        },
    )


@require_POST
@html_view(LEGAL)
def policy_draft(request: HttpRequest) -> HttpResponse:
    try:
        draft = template_services.policy_draft_create(
            actor=request.user, note=_text(request, "note")
        )
    except ApplicationError as exc:
        if exc.status_code == 403:
            raise
        messages.error(request, exc.message)
        return redirect(reverse("legal:policy"))
    return redirect(reverse("legal:policy-version", args=[draft.number]))


def _version_context(request: HttpRequest, version: PolicyVersion, **extra) -> dict[str, Any]:
    rules = sorted(version.rules.all(), key=lambda rule: (rule.category, rule.rule_id))
    editable = version.state == PolicyState.DRAFT and has_role(request.user, LEGAL)
    return {
        "version": version,
        "rules": rules,
        "editable": editable,
        "categories": Category.choices,
        "kinds": RuleKind.choices,
        "applies": AppliesTo.choices,
        "blank_rule": {"distance": 6, "language": "any", "kind": "terms", "applies_to": "any"},
        **extra,
    }


@require_http_methods(["GET", "POST"])
@html_view(LEGAL, SUPERVISOR)
def policy_version(request: HttpRequest, number: int) -> HttpResponse:
    version = _version(number)
    if request.method == "GET":
        return render(request, "approvals/policy_version.html", _version_context(request, version))
    action = request.POST.get("action", "")
    try:
        if action == "try":
            return _try(request, version)
        if action == "save_rule":
            data = {name: _text(request, name, limit=20000) for name in _RULE_FORM}
            rule_pk = request.POST.get("rule_pk") or None
            template_services.policy_rule_save(
                version_id=version.pk,
                actor=request.user,
                data=data,
                rule_pk=int(rule_pk) if rule_pk and rule_pk.isdigit() else None,
            )
            messages.success(request, f"Rule {data['rule_id']} saved.")
        elif action == "delete_rule":
            rule_pk = request.POST.get("rule_pk", "")
            template_services.policy_rule_delete(
                version_id=version.pk,
                actor=request.user,
                rule_pk=int(rule_pk) if rule_pk.isdigit() else 0,
            )
            messages.success(request, "Rule deleted.")
        elif action == "note":
            template_services.policy_note_save(
                version_id=version.pk,
                actor=request.user,
                note=_text(request, "note"),
                not_pii=_text(request, "not_pii"),
            )
            messages.success(request, "Saved.")
        elif action == "publish":
            template_services.policy_publish(version_id=version.pk, actor=request.user)
            messages.success(request, f"Policy v{version.number} is now the active policy.")
            return redirect(reverse("legal:policy"))
        else:
            raise InvalidInput("Unknown action.")
    except ApplicationError as exc:
        if exc.status_code == 403:
            raise
        context = _version_context(request, _version(number), error=exc.message)
        if action == "save_rule":
            context["failed_rule"] = {name: request.POST.get(name, "") for name in _RULE_FORM}
            context["failed_rule_pk"] = request.POST.get("rule_pk", "")
        return render(request, "approvals/policy_version.html", context, status=exc.status_code)
    return redirect(reverse("legal:policy-version", args=[number]))


_RULE_FORM = (
    "rule_id",
    "category",
    "kind",
    "applies_to",
    "language",
    "terms",
    "near",
    "distance",
    "description",
)


def _try(request: HttpRequest, version: PolicyVersion) -> HttpResponse:
    """A text screened with this version and with the active one, side by side."""
    text = _text(request, "text")
    kind = "draft" if request.POST.get("kind") == "draft" else "post"
    compiled = template_services.policy_compile_check(version)
    here = screen(text, kind=kind, policy=compiled).as_dict()
    now = screen(text, kind=kind, policy=active_policy()).as_dict()
    context = _version_context(
        request,
        version,
        tried={
            "text": text,
            "kind": kind,
            "here": here,
            "here_html": highlight(text, here),
            "now": now,
            "now_html": highlight(text, now),
            "active_label": active_policy().label,
        },
    )
    return render(request, "approvals/policy_version.html", context)
