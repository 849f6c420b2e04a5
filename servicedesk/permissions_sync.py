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
    ("servicedesk", "auditevent"),
    ("connectors", "channelaccount"),
    ("connectors", "rawdelivery"),
    ("connectors", "outboundmessage"),
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    AGENT: [],
    LEGAL: [f"{app}.view_{model}" for app, model in _READ_MODELS if model != "channelaccount"],
    SUPERVISOR: [f"{app}.view_{model}" for app, model in _READ_MODELS if model != "channelaccount"]
    + ["tickets.change_windowpolicy"],
    ADMIN: [f"{app}.view_{model}" for app, model in _READ_MODELS]
    + [
        f"{app}.{verb}_{model}"
        for app, model in (("connectors", "channelaccount"), ("tickets", "windowpolicy"))
        for verb in ("add", "change", "delete")
    ]
    + ["connectors.change_rawdelivery"]
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
