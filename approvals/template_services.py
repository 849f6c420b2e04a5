"""Services for pre-approved templates and for the versioned screening policy.

Templates: legal (or a supervisor) writes a draft version; a lawyer who wrote none of
its text approves it, optionally until a date (rates go stale); an approved version
never changes — editing starts the next draft. Policy: only a draft version changes;
publishing it makes it the one every screening uses.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import (
    PolicyRule,
    PolicyState,
    PolicyVersion,
    ResponseTemplate,
    TemplatePurpose,
    TemplateState,
    TemplateVersion,
)
from approvals.policy import CompiledPolicy, PolicyError, RuleSpec, policy_changed
from approvals.screening import screen
from approvals.slots import placeholders
from servicedesk.audit import audit_record
from servicedesk.errors import InvalidInput, NotFound, RoleRequired, TransitionRefused
from servicedesk.roles import LEGAL, SUPERVISOR, has_role
from tickets.services.common import sha256_text


def _require_template_writer(actor) -> None:
    if not has_role(actor, LEGAL, SUPERVISOR):
        raise RoleRequired("Only legal and supervisors can write templates.")


def _require_legal(actor, what: str) -> None:
    if not has_role(actor, LEGAL):
        raise RoleRequired(f"Only legal can {what}.")


def _check_body(body: str) -> None:
    if not body.strip():
        raise InvalidInput("A template needs text.", code="template_invalid")
    placeholders(body)
    if screen(body, kind="draft").blocked:
        raise InvalidInput(
            "The template contains personal data; templates never carry a customer's data.",
            code="pii_in_template",
        )


def _lock_template(template_id: int) -> ResponseTemplate:
    template = ResponseTemplate.objects.select_for_update(of=("self",)).filter(pk=template_id)
    template = template.first()
    if template is None:
        raise NotFound("No such template.")
    return template


def template_create(
    *, actor, name: str, body: str, purpose: str = TemplatePurpose.ANSWER, description: str = ""
) -> TemplateVersion:
    """A new template with its first draft version."""
    _require_template_writer(actor)
    _check_body(body)
    if purpose not in TemplatePurpose.values:
        raise InvalidInput(f"purpose must be one of {', '.join(TemplatePurpose.values)}.")
    try:
        with transaction.atomic():
            template = ResponseTemplate.objects.create(
                name=name.strip(), purpose=purpose, description=description, created_by=actor
            )
            version = TemplateVersion.objects.create(
                template=template,
                number=1,
                body=body,
                body_sha256=sha256_text(body),
                created_by=actor,
                editor_ids=[actor.pk],
            )
            audit_record(
                action="template.create",
                actor=actor,
                obj=version,
                data={"template": template.name, "version": 1, "body_sha256": version.body_sha256},
            )
    except IntegrityError:
        raise TransitionRefused(
            f"A template named {name.strip()!r} exists already.", code="template_exists"
        ) from None
    return version


def template_update(*, template_id: int, actor, body: str) -> TemplateVersion:
    """Change the template's draft text; with no draft, start the next version."""
    _require_template_writer(actor)
    _check_body(body)
    with transaction.atomic():
        template = _lock_template(template_id)
        draft = template.versions.filter(state=TemplateState.DRAFT).first()
        if draft is None:
            latest = template.versions.order_by("-number").first()
            draft = TemplateVersion(
                template=template,
                number=(latest.number + 1) if latest else 1,
                created_by=actor,
                editor_ids=[],
            )
        draft.body = body
        draft.body_sha256 = sha256_text(body)
        if actor.pk not in draft.editor_ids:
            draft.editor_ids = [*draft.editor_ids, actor.pk]
        draft.save()
        audit_record(
            action="template.edit",
            actor=actor,
            obj=draft,
            data={
                "template": template.name,
                "version": draft.number,
                "body_sha256": draft.body_sha256,
            },
        )
    return draft


def template_approve(
    *, template_id: int, actor, expires_at: datetime | None = None, comment: str = ""
) -> TemplateVersion:
    """Approve the draft version: legal only, never a version one wrote; the approved
    version before it is retired (replies still made from it will need a review)."""
    _require_legal(actor, "approve templates")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("The approval must end in the future.", code="expiry_in_past")
    with transaction.atomic():
        template = _lock_template(template_id)
        draft = template.versions.filter(state=TemplateState.DRAFT).first()
        if draft is None:
            raise TransitionRefused(
                "This template has no draft version to approve.", code="no_draft_version"
            )
        if actor.pk in draft.editor_ids or actor.pk == draft.created_by_id:
            raise RoleRequired(
                "You wrote this version; another lawyer must approve it.", code="self_approval"
            )
        now = timezone.now()
        template.versions.filter(state=TemplateState.APPROVED).update(
            state=TemplateState.RETIRED, retired_at=now
        )
        draft.state = TemplateState.APPROVED
        draft.approved_by = actor
        draft.approved_at = now
        draft.expires_at = expires_at
        draft.save(update_fields=["state", "approved_by", "approved_at", "expires_at"])
        audit_record(
            action="template.approve",
            actor=actor,
            obj=draft,
            data={
                "template": template.name,
                "version": draft.number,
                "body_sha256": draft.body_sha256,
                "expires_at": expires_at.isoformat() if expires_at else None,
                "comment": comment,
            },
        )
    return draft


def template_retire(*, template_id: int, actor) -> TemplateVersion:
    _require_legal(actor, "retire templates")
    with transaction.atomic():
        template = _lock_template(template_id)
        version = template.versions.filter(state=TemplateState.APPROVED).first()
        if version is None:
            raise TransitionRefused(
                "This template has no approved version to retire.", code="not_approved"
            )
        version.state = TemplateState.RETIRED
        version.retired_at = timezone.now()
        version.save(update_fields=["state", "retired_at"])
        audit_record(
            action="template.retire",
            actor=actor,
            obj=version,
            data={"template": template.name, "version": version.number},
        )
    return version


# --- the screening policy ------------------------------------------------------------


def policy_draft_create(*, actor, note: str = "") -> PolicyVersion:
    """A new draft version, a copy of the active one, for legal to edit."""
    _require_legal(actor, "edit the compliance policy")
    with transaction.atomic():
        if PolicyVersion.objects.filter(state=PolicyState.DRAFT).exists():
            raise TransitionRefused(
                "A draft policy version exists already; edit or publish it.",
                code="policy_draft_exists",
            )
        active = PolicyVersion.objects.filter(state=PolicyState.ACTIVE).first()
        latest = PolicyVersion.objects.order_by("-number").first()
        draft = PolicyVersion.objects.create(
            number=(latest.number + 1) if latest else 1,
            note=note,
            not_pii=active.not_pii if active else "",
            created_by=actor,
        )
        if active is not None:
            PolicyRule.objects.bulk_create(
                PolicyRule(
                    policy=draft,
                    rule_id=rule.rule_id,
                    category=rule.category,
                    kind=rule.kind,
                    applies_to=rule.applies_to,
                    language=rule.language,
                    terms=rule.terms,
                    near=rule.near,
                    distance=rule.distance,
                    description=rule.description,
                )
                for rule in active.rules.all()
            )
        audit_record(action="policy.draft", actor=actor, obj=draft, data={"number": draft.number})
    return draft


def policy_compile_check(version: PolicyVersion) -> CompiledPolicy:
    """Compile a version's rules or say which rule is wrong (InvalidInput)."""
    from approvals.policy import compile_version

    try:
        return compile_version(version)
    except PolicyError as exc:
        raise InvalidInput(str(exc), code="policy_invalid") from None


def policy_publish(*, version_id: int, actor) -> PolicyVersion:
    """Make the draft the active policy; the active one before it is retired."""
    _require_legal(actor, "publish the compliance policy")
    with transaction.atomic():
        version = PolicyVersion.objects.select_for_update().filter(pk=version_id).first()
        if version is None:
            raise NotFound("No such policy version.")
        if version.state != PolicyState.DRAFT:
            raise TransitionRefused(
                f"Policy v{version.number} is {version.state}; only a draft is published.",
                code="invalid_transition",
            )
        policy_compile_check(version)
        previous = PolicyVersion.objects.select_for_update().filter(state=PolicyState.ACTIVE)
        previous_numbers = list(previous.values_list("number", flat=True))
        previous.update(state=PolicyState.RETIRED)
        version.state = PolicyState.ACTIVE
        version.published_by = actor
        version.published_at = timezone.now()
        version.save(update_fields=["state", "published_by", "published_at"])
        audit_record(
            action="policy.publish",
            actor=actor,
            obj=version,
            data={"number": version.number, "replaces": previous_numbers, "note": version.note},
        )
        transaction.on_commit(policy_changed)
    return version


def rule_spec_check(data: dict) -> RuleSpec:
    """Validate one rule as the policy editor submits it (compiles it alone)."""
    spec = RuleSpec.from_mapping(data)
    try:
        CompiledPolicy(label="check", rules=(spec,))
    except PolicyError as exc:
        raise InvalidInput(str(exc), code="policy_invalid") from None
    return spec


_RULE_FIELDS = (
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


def _lock_draft_policy(version_id: int) -> PolicyVersion:
    version = PolicyVersion.objects.select_for_update().filter(pk=version_id).first()
    if version is None:
        raise NotFound("No such policy version.")
    if version.state != PolicyState.DRAFT:
        raise TransitionRefused(
            f"Policy v{version.number} is {version.state}; only a draft version changes.",
            code="policy_not_draft",
        )
    return version


def policy_rule_save(
    *, version_id: int, actor, data: dict, rule_pk: int | None = None
) -> PolicyRule:
    """Add or change one rule of a draft version (compiled alone first: a broken rule is
    refused with its name)."""
    _require_legal(actor, "edit the compliance policy")
    values = {name: data.get(name, "") for name in _RULE_FIELDS}
    values["rule_id"] = str(values["rule_id"]).strip()
    if not values["rule_id"]:
        raise InvalidInput("A rule needs an id, e.g. lending.product.", code="policy_invalid")
    try:
        values["distance"] = int(values["distance"] or 6)
    except (TypeError, ValueError):
        raise InvalidInput("The distance is a number of words.", code="policy_invalid") from None
    if not 1 <= values["distance"] <= 50:
        raise InvalidInput("The distance is between 1 and 50 words.", code="policy_invalid")
    rule_spec_check(values)
    with transaction.atomic():
        version = _lock_draft_policy(version_id)
        rule = version.rules.filter(pk=rule_pk).first() if rule_pk else PolicyRule(policy=version)
        if rule is None:
            raise NotFound("No such rule in this version.")
        for name, value in values.items():
            setattr(rule, name, value)
        try:
            with transaction.atomic():
                rule.save()
        except IntegrityError:
            raise InvalidInput(
                f"This version already has a rule {values['rule_id']!r}.", code="policy_invalid"
            ) from None
        audit_record(
            action="policy.rule_save",
            actor=actor,
            obj=version,
            data={"number": version.number, "rule_id": rule.rule_id},
        )
    return rule


def policy_rule_delete(*, version_id: int, actor, rule_pk: int) -> None:
    _require_legal(actor, "edit the compliance policy")
    with transaction.atomic():
        version = _lock_draft_policy(version_id)
        rule = version.rules.filter(pk=rule_pk).first()
        if rule is None:
            raise NotFound("No such rule in this version.")
        rule.delete()
        audit_record(
            action="policy.rule_delete",
            actor=actor,
            obj=version,
            data={"number": version.number, "rule_id": rule.rule_id},
        )


def policy_note_save(*, version_id: int, actor, note: str, not_pii: str) -> PolicyVersion:
    _require_legal(actor, "edit the compliance policy")
    with transaction.atomic():
        version = _lock_draft_policy(version_id)
        version.note = note
        version.not_pii = not_pii
        version.save(update_fields=["note", "not_pii"])
    return version
