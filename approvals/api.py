"""HTTP API for legal decisions, the review queue and live screening."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import selectors, services, template_services
from approvals.models import Branch, Product, TemplatePurpose, TemplateState
from approvals.screening import screen
from approvals.slots import SLOT_TYPES, placeholders, published_phones
from servicedesk.api_fields import AwareDateTimeField, BoundedTextField
from servicedesk.errors import NotFound, RoleRequired
from servicedesk.pagination import Pagination, paginated
from servicedesk.roles import is_desk_user
from servicedesk.two_factor import require_step_up
from tickets.api import ReplyOut, ScreeningOut, TicketListOut, reply_response


class CommentIn(serializers.Serializer):
    comment = serializers.CharField(required=False, default="", allow_blank=True, max_length=5000)


class ApproveIn(CommentIn):
    # With token auth: the current code from the lawyer's authenticator app (step-up).
    otp = serializers.CharField(required=False, max_length=12, write_only=True)


class ReplyApproveApi(APIView):
    @extend_schema(request=ApproveIn, responses=ReplyOut)
    def post(self, request, reply_id: int):
        serializer = ApproveIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        require_step_up(request, serializer.validated_data.pop("otp", None))
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
    kind = serializers.ChoiceField(choices=["post", "draft"], default="draft")


class ScreenApi(APIView):
    """The screening of any text: the live check behind the draft editor."""

    @extend_schema(request=ScreenIn, responses=ScreeningOut)
    def post(self, request):
        if not is_desk_user(request.user):
            raise RoleRequired("Only agents, legal and supervisors can screen text.")
        serializer = ScreenIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return Response(screen(data["text"], kind=data["kind"]).as_dict())


class ReviewQueueItemOut(ReplyOut):
    ticket_summary = TicketListOut(source="ticket")


class ReviewQueueApi(APIView):
    """Replies waiting for legal, the customer's soonest deadline first."""

    @extend_schema(operation_id="v1_reviews_list", responses=paginated(ReviewQueueItemOut))
    def get(self, request):
        queryset = selectors.review_queue(user=request.user).prefetch_related("reviews__reviewer")
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        for reply in page:
            # The summary's excerpt reads `first_text`, as on the ticket list.
            reply.ticket.first_text = reply.ticket_first_text
        return paginator.get_paginated_response(ReviewQueueItemOut(page, many=True).data)


# ---- templates ------------------------------------------------------------------------


class TemplateVersionOut(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    state = serializers.CharField()
    body = serializers.CharField()
    body_sha256 = serializers.CharField()
    slots = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    approved_by = serializers.CharField(
        source="approved_by.username", default=None, allow_null=True
    )
    approved_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)

    def get_slots(self, version) -> dict[str, str]:
        return {name: SLOT_TYPES[name] for name in placeholders(version.body)}


class TemplateOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    purpose = serializers.CharField()
    description = serializers.CharField()
    approved_version = serializers.SerializerMethodField()
    versions = TemplateVersionOut(many=True)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_approved_version(self, template) -> int | None:
        return next(
            (v.number for v in template.versions.all() if v.state == TemplateState.APPROVED), None
        )


class TemplateIn(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    body = BoundedTextField(allow_blank=False)
    purpose = serializers.ChoiceField(choices=TemplatePurpose.choices, default="answer")
    description = serializers.CharField(max_length=300, required=False, default="")


class TemplateEditIn(serializers.Serializer):
    body = BoundedTextField(allow_blank=False)


class TemplateApproveIn(serializers.Serializer):
    expires_at = AwareDateTimeField(required=False, allow_null=True, default=None)
    comment = serializers.CharField(required=False, default="", allow_blank=True, max_length=5000)
    otp = serializers.CharField(required=False, max_length=12, write_only=True)


def _template_response(request, template_id: int, code=status.HTTP_200_OK) -> Response:
    template = selectors.template_get(user=request.user, template_id=template_id)
    return Response(TemplateOut(template).data, status=code)


class TemplateListApi(APIView):
    """Templates. Agents see the ones they can use now; legal and supervisors see all."""

    @extend_schema(operation_id="v1_templates_list", responses=paginated(TemplateOut))
    def get(self, request):
        usable = request.query_params.get("usable") in ("1", "true")
        queryset = selectors.template_list(user=request.user, usable_only=usable)
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(TemplateOut(page, many=True).data)

    @extend_schema(request=TemplateIn, responses={201: TemplateOut})
    def post(self, request):
        serializer = TemplateIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = template_services.template_create(actor=request.user, **serializer.validated_data)
        return _template_response(request, version.template_id, code=status.HTTP_201_CREATED)


class TemplateDetailApi(APIView):
    @extend_schema(responses=TemplateOut)
    def get(self, request, template_id: int):
        return _template_response(request, template_id)

    @extend_schema(request=TemplateEditIn, responses=TemplateOut)
    def patch(self, request, template_id: int):
        """Edit the draft version's text (an approved version never changes: editing one
        starts the next version)."""
        serializer = TemplateEditIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        template_services.template_update(
            template_id=template_id, actor=request.user, body=serializer.validated_data["body"]
        )
        return _template_response(request, template_id)


class TemplateApproveApi(APIView):
    @extend_schema(request=TemplateApproveIn, responses=TemplateOut)
    def post(self, request, template_id: int):
        serializer = TemplateApproveIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        require_step_up(request, serializer.validated_data.pop("otp", None))
        template_services.template_approve(
            template_id=template_id, actor=request.user, **serializer.validated_data
        )
        return _template_response(request, template_id)


class TemplateRetireApi(APIView):
    @extend_schema(request=None, responses=TemplateOut)
    def post(self, request, template_id: int):
        template_services.template_retire(template_id=template_id, actor=request.user)
        return _template_response(request, template_id)


class TemplateCandidateOut(serializers.Serializer):
    text = serializers.CharField()
    approvals = serializers.IntegerField()
    reply_ids = serializers.ListField(child=serializers.IntegerField())


class TemplateCandidatesApi(APIView):
    """Reply texts legal approved again and again: suggested as templates."""

    @extend_schema(responses=TemplateCandidateOut(many=True))
    def get(self, request):
        candidates = selectors.template_candidates(user=request.user)
        return Response(TemplateCandidateOut(candidates, many=True).data)


class SlotChoicesApi(APIView):
    """The values the chosen-from-a-list slots accept: branches, products, phones."""

    @extend_schema(responses=dict)
    def get(self, request):
        if not is_desk_user(request.user):
            raise RoleRequired("Only agents, legal and supervisors can read slot choices.")
        return Response(
            {
                "branch": list(Branch.objects.filter(active=True).values_list("name", flat=True)),
                "product": list(Product.objects.filter(active=True).values_list("name", flat=True)),
                "phone": sorted(published_phones().values()),
                "url_domains": list(settings.SERVICEDESK_LINK_DOMAINS),
            }
        )


# ---- policy ---------------------------------------------------------------------------


class PolicyRuleOut(serializers.Serializer):
    rule_id = serializers.CharField()
    category = serializers.CharField()
    kind = serializers.CharField()
    applies_to = serializers.CharField()
    language = serializers.CharField()
    terms = serializers.CharField()
    near = serializers.CharField()
    distance = serializers.IntegerField()
    description = serializers.CharField()


class PolicyOut(serializers.Serializer):
    number = serializers.IntegerField()
    label = serializers.CharField()
    state = serializers.CharField()
    note = serializers.CharField()
    not_pii = serializers.CharField()
    published_at = serializers.DateTimeField(allow_null=True)
    rules = PolicyRuleOut(many=True)


class PolicyActiveApi(APIView):
    """The screening policy every result is made with now."""

    @extend_schema(responses=PolicyOut)
    def get(self, request):
        version = selectors.policy_active(user=request.user)
        if version is None:
            raise NotFound("No policy version is active; the built-in default is in use.")
        return Response(PolicyOut(version).data)
