"""HTTP API for legal decisions, the review queue and live screening."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import selectors, services
from approvals.screening import screen
from servicedesk.api_fields import BoundedTextField
from servicedesk.errors import RoleRequired
from servicedesk.pagination import Pagination
from servicedesk.roles import is_desk_user
from tickets.api import ReplyOut, ScreeningOut, TicketListOut, reply_response


class CommentIn(serializers.Serializer):
    comment = serializers.CharField(required=False, default="", allow_blank=True, max_length=5000)


class ReplyApproveApi(APIView):
    @extend_schema(request=CommentIn, responses=ReplyOut)
    def post(self, request, reply_id: int):
        serializer = CommentIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.review_approve(reply_id=reply_id, actor=request.user, **serializer.validated_data)
        return reply_response(request, reply_id)


class ReplyRequestChangesApi(APIView):
    @extend_schema(request=CommentIn, responses=ReplyOut)
    def post(self, request, reply_id: int):
        serializer = CommentIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.review_request_changes(
            reply_id=reply_id, actor=request.user, **serializer.validated_data
        )
        return reply_response(request, reply_id)


class ScreenIn(serializers.Serializer):
    text = BoundedTextField(allow_blank=True)


class ScreenApi(APIView):
    """The screening of any text: the live check behind the draft editor."""

    @extend_schema(request=ScreenIn, responses=ScreeningOut)
    def post(self, request):
        if not is_desk_user(request.user):
            raise RoleRequired("Only agents, legal and supervisors can screen text.")
        serializer = ScreenIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(screen(serializer.validated_data["text"]).as_dict())


class ReviewQueueItemOut(ReplyOut):
    ticket_summary = TicketListOut(source="ticket")


class ReviewQueueApi(APIView):
    """Replies waiting for legal, the customer's soonest deadline first."""

    @extend_schema(responses=ReviewQueueItemOut(many=True))
    def get(self, request):
        queryset = selectors.review_queue(user=request.user).prefetch_related("reviews__reviewer")
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        for reply in page:
            # The summary's excerpt reads `first_text`, as on the ticket list.
            reply.ticket.first_text = reply.ticket_first_text
        return paginator.get_paginated_response(ReviewQueueItemOut(page, many=True).data)
