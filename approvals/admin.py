from django.contrib import admin

from approvals.models import LegalReview
from servicedesk.admin import ReadOnlyAdmin


@admin.register(LegalReview)
class LegalReviewAdmin(ReadOnlyAdmin):
    list_display = ("id", "reply", "reviewer", "decision", "revision", "created_at")
    list_filter = ("decision",)
    list_select_related = ("reply", "reviewer")
