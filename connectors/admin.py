from django.contrib import admin

from connectors.models import ChannelAccount, SimulatedPost
from connectors.selectors import channels_changed
from servicedesk.admin import ReadOnlyAdmin


@admin.register(ChannelAccount)
class ChannelAccountAdmin(admin.ModelAdmin):
    list_display = ("name", "platform", "display_name", "is_active")
    list_filter = ("platform", "is_active")
    # Credentials are never shown back; the real connectors add masked editing.
    exclude = ("settings",)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        channels_changed()


@admin.register(SimulatedPost)
class SimulatedPostAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "channel", "in_reply_to_external_id", "posted_at")
