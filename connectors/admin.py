from django import forms
from django.contrib import admin, messages

from connectors.models import ChannelAccount, OutboundMessage, RawDelivery, SimulatedPost
from connectors.registry import connector_class
from connectors.selectors import channels_changed
from servicedesk.admin import ReadOnlyAdmin


class ChannelAccountForm(forms.ModelForm):
    new_secrets = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text="key=value lines to set or replace secrets. Stored secrets are never shown.",
    )

    class Meta:
        model = ChannelAccount
        fields = [
            "name",
            "platform",
            "display_name",
            "settings",
            "is_active",
            "poll_interval_seconds",
        ]

    def clean_new_secrets(self):
        values = {}
        for line in self.cleaned_data["new_secrets"].splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise forms.ValidationError(f"Not key=value: {key.strip()!r}")
            values[key.strip()] = value.strip()
        return values


@admin.register(ChannelAccount)
class ChannelAccountAdmin(admin.ModelAdmin):
    form = ChannelAccountForm
    list_display = (
        "name",
        "platform",
        "is_active",
        "last_success_at",
        "last_error_at",
        "lag_seconds",
    )
    list_filter = ("platform", "is_active")
    readonly_fields = (
        "stored_secrets",
        "poll_cursor",
        "last_success_at",
        "last_error",
        "last_error_at",
    )

    @admin.display(description="Stored secrets")
    def stored_secrets(self, obj):
        keys = sorted(obj.secrets) if obj.pk else []
        return ", ".join(f"{key}: ••••••••" for key in keys) or "none"

    def save_model(self, request, obj, form, change):
        new = form.cleaned_data.get("new_secrets") or {}
        if new:
            secret_keys = {
                item.key for item in connector_class(obj.platform).settings_spec if item.secret
            }
            unknown = sorted(set(new) - secret_keys)
            if unknown:
                messages.warning(request, f"Ignored unknown secret keys: {', '.join(unknown)}")
            obj.set_secrets({**obj.secrets, **{k: v for k, v in new.items() if k in secret_keys}})
        super().save_model(request, obj, form, change)
        channels_changed()


@admin.register(RawDelivery)
class RawDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "platform",
        "channel",
        "kind",
        "status",
        "attempts",
        "received_at",
        "short_error",
    )
    list_filter = ("status", "platform", "kind")
    list_select_related = ("channel",)
    actions = ["reprocess"]
    exclude = ("body",)
    readonly_fields = ("body_text",)

    @admin.display(description="Error")
    def short_error(self, obj):
        return obj.error[:120]

    @admin.display(description="Body")
    def body_text(self, obj):
        return bytes(obj.body).decode("utf-8", errors="replace")

    @admin.action(description="Reprocess the selected deliveries")
    def reprocess(self, request, queryset):
        from connectors.services import deliveries_wake

        ids = list(queryset.exclude(status="processed").values_list("pk", flat=True))
        # Back in the workers' queue with a fresh count of attempts: claimed by the next
        # drain, or by the sweep if the broker cannot be reached now — never stranded.
        queryset.filter(pk__in=ids).update(
            status="pending", attempts=0, next_attempt_at=None, error=""
        )
        deliveries_wake()
        messages.info(request, f"{len(ids)} delivery(ies) queued for processing.")

    def has_change_permission(self, request, obj=None):
        # The reprocess action needs it; the change form itself is all read-only fields.
        return request.user.has_perm("connectors.change_rawdelivery")


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ReadOnlyAdmin):
    list_display = (
        "reply",
        "channel",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "sent_at",
    )
    list_filter = ("state",)
    list_select_related = ("channel",)


@admin.register(SimulatedPost)
class SimulatedPostAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "channel", "in_reply_to_external_id", "posted_at")
