"""Typed slots of pre-approved templates: which values each accepts, and the text a
version renders to.

A slot can hold only values that cannot change what legal approved: a first name is
letters only, a branch or product comes from the bank's own tables, a phone number
from its published numbers, a link from its own domains, a date is rendered by us.
A reply is "the approved template" only if its text is exactly the version rendered
with valid values — checked again just before it is published.
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from servicedesk.errors import ApplicationError

# Placeholder name -> slot type.
SLOT_TYPES: dict[str, str] = {
    "first_name": "first_name",
    "handle": "handle",
    "branch": "branch",
    "phone": "phone",
    "branch_phone": "phone",
    "url": "url",
    "link": "url",
    "date": "date",
    "product": "product",
}

SLOT_HELP = {
    "first_name": "letters only, at most 40",
    "handle": "the customer's handle, e.g. @dana_r or dana@mastodon.example",
    "branch": "one of the bank's branches",
    "phone": "one of the bank's published phone numbers",
    "url": "a link on the bank's own domains",
    "date": "a date, YYYY-MM-DD",
    "product": "one of the bank's products",
}

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_FIRST_NAME = re.compile(r"^[^\W\d_]+(?:['’-][^\W\d_]+)*$")
_HANDLE = re.compile(r"^@?[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(?:@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?$")
_URL_PATH = re.compile(r"^[A-Za-z0-9/_\-.~%]*$")
_URL_QUERY = re.compile(r"^[A-Za-z0-9_\-.~%=&]*$")


class TemplateInvalid(ApplicationError):
    status_code = 400
    code = "template_invalid"


class SlotsInvalid(ApplicationError):
    status_code = 400
    code = "slots_invalid"


def placeholders(body: str) -> list[str]:
    """The slot names a template body uses, in order of first use; refuses unknown names
    and stray braces."""
    names: list[str] = []
    for name in _PLACEHOLDER.findall(body):
        if name not in SLOT_TYPES:
            known = ", ".join("{" + n + "}" for n in SLOT_TYPES)
            raise TemplateInvalid(f"{{{name}}} is not a slot. Slots: {known}.")
        if name not in names:
            names.append(name)
    if "{" in _PLACEHOLDER.sub("", body) or "}" in _PLACEHOLDER.sub("", body):
        raise TemplateInvalid("Braces are only for slots such as {first_name}.")
    return names


def published_phones() -> dict[str, str]:
    """The bank's published numbers (branches and the policy's own-number list), by digits."""
    from approvals.models import Branch
    from approvals.policy import active_policy

    phones = {}
    for phone in (
        Branch.objects.filter(active=True).exclude(phone="").values_list("phone", flat=True)
    ):
        phones[re.sub(r"\D", "", phone)[-10:]] = phone
    for line in active_policy().not_pii:
        digits = re.sub(r"\D", "", line)
        if len(digits) >= 10:
            phones[digits[-10:]] = line
    return phones


def _clean(slot_type: str, raw) -> str:
    if not isinstance(raw, str):
        raise ValueError("must be text")
    value = raw.strip()
    if slot_type == "first_name":
        if not value or len(value) > 40 or not _FIRST_NAME.match(value):
            raise ValueError("letters only (a hyphen or apostrophe may join them), at most 40")
        return value
    if slot_type == "handle":
        if not _HANDLE.match(value):
            raise ValueError("not a handle")
        return value if value.startswith("@") else "@" + value
    if slot_type == "branch":
        from approvals.models import Branch

        branch = Branch.objects.filter(active=True, name__iexact=value).first()
        if branch is None:
            raise ValueError("not one of the bank's branches")
        return branch.name
    if slot_type == "product":
        from approvals.models import Product

        product = Product.objects.filter(active=True, name__iexact=value).first()
        if product is None:
            raise ValueError("not one of the bank's products")
        return product.name
    if slot_type == "phone":
        phone = published_phones().get(re.sub(r"\D", "", value)[-10:])
        if phone is None or len(re.sub(r"\D", "", value)) < 10:
            raise ValueError("not one of the bank's published phone numbers")
        return phone
    if slot_type == "url":
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
        domains = [d.lower() for d in settings.SERVICEDESK_LINK_DOMAINS]
        if (
            parts.scheme != "https"
            or parts.username
            or parts.password
            or parts.port
            or not any(host == d or host.endswith("." + d) for d in domains)
            or not _URL_PATH.match(parts.path)
            or not _URL_QUERY.match(parts.query)
            or parts.fragment
            or len(value) > 200
        ):
            raise ValueError("an https link on " + ", ".join(domains) + " only")
        return value
    if slot_type == "date":
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError("a date as YYYY-MM-DD") from None
        return f"{day:%B} {day.day}, {day.year}"
    raise ValueError("unknown slot type")


def fill(body: str, values: dict) -> tuple[str, dict[str, str]]:
    """The rendered text and the cleaned values; SlotsInvalid names every bad slot."""
    if not isinstance(values, dict):
        raise SlotsInvalid("Slots must be an object of slot name to value.")
    names = placeholders(body)
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    for name in names:
        if name not in values or values[name] in (None, ""):
            errors[name] = f"required: {SLOT_HELP[SLOT_TYPES[name]]}"
            continue
        try:
            cleaned[name] = _clean(SLOT_TYPES[name], values[name])
        except ValueError as exc:
            errors[name] = str(exc)
    for name in values:
        if name not in names:
            errors[name] = "this template has no such slot"
    if errors:
        detail = "; ".join(f"{{{name}}}: {problem}" for name, problem in errors.items())
        raise SlotsInvalid(f"Some slot values are not allowed — {detail}.", errors=errors)
    return _PLACEHOLDER.sub(lambda m: cleaned[m.group(1)], body), cleaned


def version_usable(version, *, at=None) -> str | None:
    """Why an approved template version cannot be used now, or None if it can."""
    at = at or timezone.now()
    if version.state != "approved":
        return f"template version {version.number} is {version.state}, not approved"
    if version.expires_at is not None and version.expires_at <= at:
        return f"the approval of template version {version.number} expired"
    return None


def reply_is_unmodified_template(reply) -> bool:
    """Rule 1's second way out: the reply is exactly an approved, unexpired template
    version filled with values that are valid now."""
    version = reply.template_version
    if version is None or version_usable(version) is not None:
        return False
    try:
        text, _ = fill(version.body, reply.template_slots or {})
    except ApplicationError:
        return False
    return text == reply.body
