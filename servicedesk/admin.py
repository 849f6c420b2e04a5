from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from servicedesk.dead_letters import dead_letters_resolve
from servicedesk.models import AuditEvent, DeadLetter


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


class _OpenFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    """Work set aside for a person. Fix the cause, reprocess (a delivery: its link leads
    to the raw delivery, whose "reprocess" action runs it again), then mark it resolved.
    Never deleted: /metrics counts the rows."""

    list_display = (
        "created_at",
        "kind",
        "reference",
        "attempts",
        "occurrences",
        "last_seen_at",
        "short_error",
        "resolved_at",
        "resolved_by",
        "reprocess_link",
    )
    list_filter = ("kind", _OpenFilter, "created_at")
    list_select_related = ("resolved_by",)
    search_fields = ("reference", "task_name", "error")
    readonly_fields = (
        "kind",
        "reference",
        "delivery_id",
        "task_name",
        "task_id",
        "error",
        "attempts",
        "occurrences",
        "created_at",
        "last_seen_at",
        "resolved_at",
        "resolved_by",
        "reprocess_link",
    )
    exclude = ("key",)
    actions = ["mark_resolved"]

    @admin.display(description="Error")
    def short_error(self, obj):
        return obj.error.splitlines()[0][:120] if obj.error else ""

    @admin.display(description="Reprocess")
    def reprocess_link(self, obj):
        if obj.delivery_id is None:
            return ""
        url = reverse("admin:connectors_rawdelivery_changelist")
        return format_html(
            '<a href="{}?id__exact={}">delivery #{} → select it, action "Reprocess"</a>',
            url,
            obj.delivery_id,
            obj.delivery_id,
        )

    @admin.action(description="Mark the selected dead letters resolved")
    def mark_resolved(self, request, queryset):
        count = dead_letters_resolve(ids=queryset.values_list("pk", flat=True), actor=request.user)
        messages.info(request, f"{count} dead letter(s) marked resolved.")

    def has_change_permission(self, request, obj=None):
        # The action needs it; the change form itself is all read-only fields.
        return request.user.has_perm("servicedesk.change_deadletter")
