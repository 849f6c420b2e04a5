"""Roles are Django groups created by a data migration; these helpers read them.

Every check of who may do what goes through `has_role`, so a role's meaning is
defined here once and shared by services, the API and the admin.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

AGENT = "agent"
LEGAL = "legal"
SUPERVISOR = "supervisor"
ADMIN = "admin"
INTEGRATION = "integration"

ALL_ROLES = (AGENT, LEGAL, SUPERVISOR, ADMIN, INTEGRATION)
# Roles whose members work tickets and may read the whole queue.
DESK_ROLES = frozenset({AGENT, LEGAL, SUPERVISOR})


def role_names(user: AbstractBaseUser | AnonymousUser | None) -> frozenset[str]:
    """The user's role names, cached on the user object for the request."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_servicedesk_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached = cached | {ADMIN}
        user._servicedesk_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(role_names(user) & set(roles))


def is_desk_user(user) -> bool:
    return bool(role_names(user) & DESK_ROLES)
