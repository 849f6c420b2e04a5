"""The HTML pages of legal review (mounted at /legal/)."""

from django.urls import path

from approvals import compliance_views, views

app_name = "legal"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("rows/", views.queue_rows, name="queue-rows"),
    path("reviews/<int:reply_id>/", views.review, name="review"),
    path("reviews/<int:reply_id>/approve/", views.approve, name="approve"),
    path("reviews/<int:reply_id>/request-changes/", views.request_changes, name="request-changes"),
    path("templates/", compliance_views.templates, name="templates"),
    path("templates/new/", compliance_views.template_create, name="template-create"),
    path("templates/<int:template_id>/", compliance_views.template_detail, name="template"),
    path("policy/", compliance_views.policy, name="policy"),
    path("policy/draft/", compliance_views.policy_draft, name="policy-draft"),
    path("policy/<int:number>/", compliance_views.policy_version, name="policy-version"),
]
