"""Who may take each ticket transition. Shared by the FSM, the services and the API."""

from __future__ import annotations

from servicedesk.roles import AGENT, LEGAL, SUPERVISOR, has_role


def can_work_tickets(instance, user) -> bool:
    """Claim, draft, send, close, ignore: agents and supervisors."""
    return has_role(user, AGENT, SUPERVISOR)


def can_review(instance, user) -> bool:
    return has_role(user, LEGAL)


def can_flag_regulated(instance, user) -> bool:
    return has_role(user, AGENT, LEGAL, SUPERVISOR)


def can_clear_regulated(instance, user) -> bool:
    return has_role(user, LEGAL, SUPERVISOR)


def system_only(instance, user) -> bool:
    """Transitions only the platform side (triage, publish results, follow-ups) takes."""
    return user is None
