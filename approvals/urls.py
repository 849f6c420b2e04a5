from django.urls import path

from approvals import api

urlpatterns = [
    path("replies/<int:reply_id>/approve/", api.ReplyApproveApi.as_view(), name="reply-approve"),
    path(
        "replies/<int:reply_id>/request-changes/",
        api.ReplyRequestChangesApi.as_view(),
        name="reply-request-changes",
    ),
    path("screen/", api.ScreenApi.as_view(), name="screen"),
    path("reviews/", api.ReviewQueueApi.as_view(), name="review-queue"),
    path("templates/", api.TemplateListApi.as_view(), name="template-list"),
    path(
        "templates/candidates/",
        api.TemplateCandidatesApi.as_view(),
        name="template-candidates",
    ),
    path("templates/slot-choices/", api.SlotChoicesApi.as_view(), name="template-slot-choices"),
    path("templates/<int:template_id>/", api.TemplateDetailApi.as_view(), name="template-detail"),
    path(
        "templates/<int:template_id>/approve/",
        api.TemplateApproveApi.as_view(),
        name="template-approve",
    ),
    path(
        "templates/<int:template_id>/retire/",
        api.TemplateRetireApi.as_view(),
        name="template-retire",
    ),
    path("policy/", api.PolicyActiveApi.as_view(), name="policy-active"),
]
