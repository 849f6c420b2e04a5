from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from approvals import template_services
from approvals.models import (
    Branch,
    LegalReview,
    PolicyRule,
    PolicyState,
    PolicyVersion,
    Product,
    ResponseTemplate,
    TemplateVersion,
)
from approvals.policy import PolicyError, RuleSpec
from servicedesk.admin import ReadOnlyAdmin
from servicedesk.errors import ApplicationError
from servicedesk.roles import LEGAL, has_role


@admin.register(LegalReview)
class LegalReviewAdmin(ReadOnlyAdmin):
    list_display = ("id", "reply", "reviewer", "decision", "revision", "created_at")
    list_filter = ("decision",)
    list_select_related = ("reply", "reviewer")


# --- the screening policy: legal edits a draft version, then publishes it ---------------


class PolicyRuleFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            try:
                from approvals.policy import CompiledPolicy

                CompiledPolicy(label="check", rules=(RuleSpec.from_mapping(form.cleaned_data),))
            except PolicyError as exc:
                raise ValidationError(str(exc)) from None


class PolicyRuleInline(admin.StackedInline):
    model = PolicyRule
    formset = PolicyRuleFormSet
    extra = 0
    fields = (
        ("rule_id", "category", "kind", "applies_to", "language"),
        "description",
        ("terms", "near", "distance"),
    )

    def _editable(self, request, obj) -> bool:
        return obj is not None and obj.state == PolicyState.DRAFT and has_role(request.user, LEGAL)

    def has_add_permission(self, request, obj=None):
        return self._editable(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(request, obj)


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    """Only a draft changes; "Publish" makes it active. "New draft" copies the active one."""

    list_display = ("number", "state", "note", "created_by", "published_by", "published_at")
    list_filter = ("state",)
    inlines = [PolicyRuleInline]
    actions = ["publish", "new_draft"]
    fields = ("number", "state", "note", "not_pii", "created_by", "published_by", "published_at")
    readonly_fields = ("number", "state", "created_by", "published_by", "published_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.state != PolicyState.DRAFT:
            return False
        return has_role(request.user, LEGAL) or request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.state != PolicyState.DRAFT:
            return self.fields
        return self.readonly_fields

    @admin.action(description="Publish the selected draft (it becomes the active policy)")
    def publish(self, request, queryset):
        for version in queryset:
            try:
                template_services.policy_publish(version_id=version.pk, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, f"Policy v{version.number} is now active.")

    @admin.action(description="Start a new draft from the active policy")
    def new_draft(self, request, queryset):
        try:
            draft = template_services.policy_draft_create(actor=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, f"Draft policy v{draft.number} created.")


# --- templates ---------------------------------------------------------------------------


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    extra = 0
    fields = ("number", "state", "body", "created_by", "approved_by", "approved_at", "expires_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ResponseTemplate)
class ResponseTemplateAdmin(ReadOnlyAdmin):
    """Templates change through the services (API and legal UI), which keep versions and
    the audit trail; the admin shows them."""

    list_display = ("name", "purpose", "created_by", "created_at")
    list_filter = ("purpose",)
    inlines = [TemplateVersionInline]


@admin.register(Branch)
class BranchAdmin(admin.ModelAdmin):
    list_display = ("name", "phone", "address", "active")
    list_filter = ("active",)
    search_fields = ("name",)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "active")
    list_filter = ("active",)
