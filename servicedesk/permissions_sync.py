"""Django-admin permissions for each role group."""

from __future__ import annotations

from servicedesk.roles import ADMIN, AGENT, LEGAL, SUPERVISOR

_READ_MODELS = [
    ("tickets", "ticket"),
    ("tickets", "mention"),
    ("tickets", "customer"),
    ("tickets", "reply"),
    ("tickets", "replyrevision"),
    ("tickets", "windowpolicy"),
    ("approvals", "legalreview"),
    ("approvals", "policyversion"),
    ("approvals", "policyrule"),
    ("approvals", "responsetemplate"),
    ("approvals", "templateversion"),
    ("approvals", "branch"),
    ("approvals", "product"),
    ("servicedesk", "auditevent"),
    ("connectors", "channelaccount"),
    ("connectors", "rawdelivery"),
    ("connectors", "outboundmessage"),
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    AGENT: [],
    # Legal edits the screening policy (draft versions only; publishing is a service).
    LEGAL: [f"{app}.view_{model}" for app, model in _READ_MODELS if model != "channelaccount"]
    + ["approvals.change_policyversion"]
    # Lawyers see the rota and mark themselves available or not.
    + ["tickets.view_legalrotaentry", "tickets.change_legalrotaentry"]
    + [f"approvals.{verb}_policyrule" for verb in ("add", "change", "delete")],
    SUPERVISOR: [f"{app}.view_{model}" for app, model in _READ_MODELS if model != "channelaccount"]
    + ["tickets.change_windowpolicy"]
    # Supervision: the legal clock, the rota and the platforms' reply windows.
    + ["tickets.view_legalclock", "tickets.change_legalclock", "tickets.add_legalclock"]
    + [
        f"tickets.{verb}_{model}"
        for model in ("legalrotaentry", "platformreplywindow")
        for verb in ("view", "add", "change", "delete")
    ]
    + ["tickets.view_escalation", "tickets.view_responsecycle"]
    # Dead letters: supervisors are alerted to them and mark them resolved.
    + ["servicedesk.view_deadletter", "servicedesk.change_deadletter"],
    ADMIN: [f"{app}.view_{model}" for app, model in _READ_MODELS]
    + [
        f"{app}.{verb}_{model}"
        for app, model in (
            ("connectors", "channelaccount"),
            ("tickets", "windowpolicy"),
            ("approvals", "branch"),
            ("approvals", "product"),
        )
        for verb in ("add", "change", "delete")
    ]
    + ["connectors.change_rawdelivery"]
    + ["servicedesk.view_deadletter", "servicedesk.change_deadletter"]
    + ["auth.view_user", "auth.add_user", "auth.change_user", "auth.view_group"],
}


def sync_role_permissions(sender=None, **kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    for role, codenames in ROLE_PERMISSIONS.items():
        group = Group.objects.filter(name=role).first()
        if group is None:
            continue
        wanted = []
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is not None:
                wanted.append(permission)
        group.permissions.add(*wanted)
