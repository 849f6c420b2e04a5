from django.contrib import admin

from connectors.models import ChannelAccount, SimulatedPost
from servicedesk.admin import ReadOnlyAdmin


@admin.register(ChannelAccount)
class ChannelAccountAdmin(admin.ModelAdmin):
    list_display = ("name", "platform", "display_name", "is_active")
    list_filter = ("platform", "is_active")
    # Credentials are never shown back; the real connectors add masked editing.
    exclude = ("settings",)


@admin.register(SimulatedPost)
class SimulatedPostAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "channel", "in_reply_to_external_id", "posted_at")
