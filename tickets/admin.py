from django.contrib import admin

from servicedesk.admin import ReadOnlyAdmin
from tickets.models import Customer, Mention, Reply, ReplyRevision, Ticket, WindowPolicy
from tickets.windows import windows_changed


@admin.register(WindowPolicy)
class WindowPolicyAdmin(admin.ModelAdmin):
    list_display = ("platform", "priority", "first_response_minutes")
    list_editable = ("first_response_minutes",)
    list_filter = ("platform",)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        windows_changed()


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ("id", "state", "channel", "customer", "regulated", "assignee", "deadline")
    list_filter = ("state", "regulated", "channel", "priority")
    list_select_related = ("channel", "customer", "assignee")
    search_fields = ("id", "customer__handle")


@admin.register(Mention)
class MentionAdmin(ReadOnlyAdmin):
    list_display = ("id", "channel", "external_id", "customer", "ticket", "posted_at")
    list_select_related = ("channel", "customer")
    search_fields = ("external_id", "text")


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ("id", "platform", "handle", "display_name")
    search_fields = ("handle", "display_name", "external_id")


@admin.register(Reply)
class ReplyAdmin(ReadOnlyAdmin):
    list_display = ("id", "ticket", "state", "author", "revision", "sent_at")
    list_filter = ("state",)
    list_select_related = ("ticket", "author")


@admin.register(ReplyRevision)
class ReplyRevisionAdmin(ReadOnlyAdmin):
    list_display = ("reply", "number", "editor", "created_at")
    list_select_related = ("reply", "editor")


# ---- supervision: the clocks, the rota, escalations, the latency record ------------------

from tickets.models import (  # noqa: E402
    Escalation,
    LegalClock,
    LegalRotaEntry,
    PlatformReplyWindow,
    ResponseCycle,
)


@admin.register(PlatformReplyWindow)
class PlatformReplyWindowAdmin(admin.ModelAdmin):
    list_display = ("platform", "max_minutes", "note")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        windows_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        windows_changed()


@admin.register(LegalClock)
class LegalClockAdmin(admin.ModelAdmin):
    list_display = ("__str__", "mode", "share_pct", "minutes", "at_risk_pct", "updated_at")

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not LegalClock.objects.exists()


@admin.register(LegalRotaEntry)
class LegalRotaEntryAdmin(admin.ModelAdmin):
    list_display = ("user", "position", "primary", "backup", "available")
    list_editable = ("position", "primary", "backup", "available")
    list_select_related = ("user",)


@admin.register(Escalation)
class EscalationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "ticket", "backup", "emailed_at", "chat_posted_at")
    list_filter = ("kind",)
    list_select_related = ("ticket", "backup")


@admin.register(ResponseCycle)
class ResponseCycleAdmin(ReadOnlyAdmin):
    list_display = (
        "ticket",
        "number",
        "outcome",
        "channel",
        "posted_at",
        "response_seconds",
        "within_window",
    )
    list_filter = ("outcome", "regulated", "channel")
    list_select_related = ("ticket", "channel")
