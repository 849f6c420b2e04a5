from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ServicedeskConfig(AppConfig):
    name = "servicedesk"
    verbose_name = "Servicedesk core"

    def ready(self) -> None:
        from servicedesk.permissions_sync import sync_role_permissions

        # Model permissions exist only after every app migrated, so the groups made by
        # the data migration get theirs here, idempotently, after each migrate.
        post_migrate.connect(sync_role_permissions, dispatch_uid="servicedesk-role-perms")
