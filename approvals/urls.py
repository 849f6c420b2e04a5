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
]
