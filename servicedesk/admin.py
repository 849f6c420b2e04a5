from django.contrib import admin

from servicedesk.models import AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that change only through the services (and their audit trail)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "seq",
        "created_at",
        "actor_name",
        "action",
        "ticket_id",
        "from_state",
        "to_state",
    )
    list_filter = ("action",)
    search_fields = ("ticket_id", "actor_name", "action")
