from django.urls import path

from tickets import api, supervision_api

urlpatterns = [
    path("mentions/", api.MentionIngestApi.as_view(), name="mention-ingest"),
    path("tickets/", api.TicketListApi.as_view(), name="ticket-list"),
    path("tickets/<int:ticket_id>/", api.TicketDetailApi.as_view(), name="ticket-detail"),
    path("tickets/<int:ticket_id>/claim/", api.TicketClaimApi.as_view(), name="ticket-claim"),
    path("tickets/<int:ticket_id>/close/", api.TicketCloseApi.as_view(), name="ticket-close"),
    path("tickets/<int:ticket_id>/ignore/", api.TicketIgnoreApi.as_view(), name="ticket-ignore"),
    path(
        "tickets/<int:ticket_id>/flag-regulated/",
        api.TicketFlagRegulatedApi.as_view(),
        name="ticket-flag-regulated",
    ),
    path(
        "tickets/<int:ticket_id>/clear-regulated/",
        api.TicketClearRegulatedApi.as_view(),
        name="ticket-clear-regulated",
    ),
    path("tickets/<int:ticket_id>/replies/", api.ReplyCreateApi.as_view(), name="reply-create"),
    path(
        "tickets/<int:ticket_id>/holding-reply/",
        api.HoldingReplyApi.as_view(),
        name="ticket-holding-reply",
    ),
    path("replies/<int:reply_id>/", api.ReplyDetailApi.as_view(), name="reply-detail"),
    path("replies/<int:reply_id>/submit/", api.ReplySubmitApi.as_view(), name="reply-submit"),
    path("replies/<int:reply_id>/send/", api.ReplySendApi.as_view(), name="reply-send"),
    path("audit/", api.AuditListApi.as_view(), name="audit-list"),
    # Supervision (supervisors; evidence also legal).
    path("metrics/latency/", supervision_api.LatencyMetricsApi.as_view(), name="metrics-latency"),
    path(
        "metrics/latency/export/",
        supervision_api.LatencyExportApi.as_view(),
        name="metrics-latency-export",
    ),
    path("metrics/breaches/", supervision_api.BreachesApi.as_view(), name="metrics-breaches"),
    path("metrics/staffing/", supervision_api.StaffingApi.as_view(), name="metrics-staffing"),
    path("metrics/wall/", supervision_api.WallApi.as_view(), name="metrics-wall"),
    path(
        "tickets/<int:ticket_id>/evidence/",
        supervision_api.EvidenceApi.as_view(),
        name="ticket-evidence",
    ),
]
