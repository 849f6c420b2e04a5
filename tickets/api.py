"""HTTP API for mentions, tickets and replies: one thin view per operation."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.pii import mask_text
from approvals.screening import screen
from connectors.models import ChannelAccount
from connectors.selectors import channel_active_by_name
from servicedesk.api_fields import AwareDateTimeField, BoundedTextField, ReasonSerializer
from servicedesk.errors import RoleRequired
from servicedesk.pagination import Pagination, paginated
from servicedesk.roles import AGENT, INTEGRATION, LEGAL, SUPERVISOR, has_role
from tickets import selectors, services
from tickets.enums import WORKING_STATES
from tickets.models import Ticket

# A post stamped this far in the future is a wrong clock, not a customer.
MAX_CLOCK_SKEW = timedelta(minutes=5)


# ---- output shapes ----------------------------------------------------------------


def _seconds_left(ticket: Ticket) -> int:
    return int((ticket.deadline - timezone.now()).total_seconds())


class CustomerOut(serializers.Serializer):
    external_id = serializers.CharField()
    handle = serializers.CharField()
    display_name = serializers.CharField()


class ScreeningOut(serializers.Serializer):
    regulated = serializers.BooleanField()
    categories = serializers.ListField(child=serializers.CharField(), default=list)
    reasons = serializers.ListField(child=serializers.DictField())
    pii = serializers.ListField(child=serializers.DictField())
    blocked = serializers.BooleanField()
    regz = serializers.DictField(allow_null=True, default=None)
    advice = serializers.ListField(child=serializers.CharField(), default=list)
    kind = serializers.CharField(default="draft")
    policy_version = serializers.CharField()


class TicketListOut(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    channel = serializers.CharField(source="channel.name")
    platform = serializers.CharField(source="channel.platform")
    customer = CustomerOut()
    excerpt = serializers.SerializerMethodField()
    priority = serializers.CharField()
    sentiment = serializers.CharField()
    regulated = serializers.BooleanField()
    assignee = serializers.CharField(source="assignee.username", default=None, allow_null=True)
    posted_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField()
    seconds_left = serializers.SerializerMethodField()
    breached = serializers.SerializerMethodField()

    def get_excerpt(self, ticket) -> str:
        """The first post's opening, personal data masked (lists are seen by everyone)."""
        text = getattr(ticket, "first_text", None) or ""
        return mask_text(text, _pii_of(getattr(ticket, "first_screening", None)))[:140]

    def get_seconds_left(self, ticket) -> int:
        return _seconds_left(ticket)

    def get_breached(self, ticket) -> bool:
        return ticket.state in WORKING_STATES and _seconds_left(ticket) < 0


class MentionOut(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    author = CustomerOut(source="customer")
    text = serializers.SerializerMethodField()
    text_masked = serializers.SerializerMethodField()
    url = serializers.CharField()
    posted_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    in_reply_to_external_id = serializers.CharField()
    screening = serializers.DictField()
    # A deleted post keeps its text here, marked deleted; edits keep the earlier texts.
    deleted_at = serializers.DateTimeField(allow_null=True)
    edit_history = serializers.SerializerMethodField()

    def _masked(self, mention) -> bool:
        return not self.context.get("full_text", False) and bool(_pii_of(mention.screening))

    def get_text(self, mention) -> str:
        """A post's personal data is shown in full only to the ticket's assignee, legal
        and supervisors; everyone else sees it masked."""
        if self._masked(mention):
            return mask_text(mention.text, _pii_of(mention.screening))
        return mention.text

    def get_text_masked(self, mention) -> bool:
        return self._masked(mention)

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_edit_history(self, mention) -> list[dict]:
        """The earlier texts, masked like `text` for those who may not read personal
        data: an edit that removed a card number must not show it again here."""
        if self.context.get("full_text", False):
            return mention.edit_history
        return [
            {**entry, "text": mask_text(entry.get("text", ""), screen(entry.get("text", "")).pii)}
            for entry in mention.edit_history
        ]


class ReviewOut(serializers.Serializer):
    id = serializers.IntegerField()
    reply = serializers.IntegerField(source="reply_id")
    reviewer = serializers.CharField(source="reviewer.username")
    decision = serializers.CharField()
    comment = serializers.CharField()
    body_sha256 = serializers.CharField()
    revision = serializers.IntegerField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class RevisionOut(serializers.Serializer):
    number = serializers.IntegerField()
    body = serializers.CharField()
    body_sha256 = serializers.CharField()
    editor = serializers.CharField(source="editor.username")
    created_at = serializers.DateTimeField()


class ReplyOut(serializers.Serializer):
    id = serializers.IntegerField()
    ticket = serializers.IntegerField(source="ticket_id")
    state = serializers.CharField()
    kind = serializers.CharField()
    author = serializers.CharField(source="author.username")
    body = serializers.CharField()
    body_sha256 = serializers.CharField()
    template_version = serializers.IntegerField(source="template_version_id", allow_null=True)
    template_slots = serializers.DictField()
    revision = serializers.IntegerField()
    screening = ScreeningOut()
    external_id = serializers.CharField()
    external_url = serializers.CharField()
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    reviews = ReviewOut(many=True)


class ReplyDetailOut(ReplyOut):
    revisions = RevisionOut(many=True)


class AuditEventOut(serializers.Serializer):
    seq = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_name")
    action = serializers.CharField()
    ticket_id = serializers.IntegerField(allow_null=True)
    object_type = serializers.CharField()
    object_id = serializers.IntegerField(allow_null=True)
    from_state = serializers.CharField()
    to_state = serializers.CharField()
    data = serializers.DictField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class TicketDetailOut(TicketListOut):
    regulated_reasons = serializers.ListField(child=serializers.DictField())
    pii_flags = serializers.ListField(child=serializers.CharField())
    close_reason = serializers.CharField()
    received_at = serializers.DateTimeField()
    claimed_at = serializers.DateTimeField(allow_null=True)
    submitted_at = serializers.DateTimeField(allow_null=True)
    approved_at = serializers.DateTimeField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    replied_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    thread = MentionOut(source="mentions", many=True)
    replies = ReplyDetailOut(many=True)
    events = AuditEventOut(source="audit_events", many=True)

    suggested_templates = serializers.SerializerMethodField()

    def get_excerpt(self, ticket) -> str:
        first = next(iter(ticket.mentions.all()), None)
        return mask_text(first.text, _pii_of(first.screening))[:140] if first else ""

    def get_suggested_templates(self, ticket) -> list[dict]:
        """A post showing personal data: the approved "please DM us" reply, ready to use."""
        if not ticket.pii_flags:
            return []
        from approvals.models import ResponseTemplate, TemplatePurpose, TemplateState

        return [
            {"id": template.pk, "name": template.name, "purpose": template.purpose}
            for template in ResponseTemplate.objects.filter(
                purpose=TemplatePurpose.MOVE_TO_DM, versions__state=TemplateState.APPROVED
            )
        ]


def _pii_of(screening) -> list:
    return (screening or {}).get("pii") or []


def may_read_full_text(ticket, user) -> bool:
    return ticket.assignee_id == user.pk or has_role(user, LEGAL, SUPERVISOR)


def ticket_detail_data(ticket, user) -> dict:
    return TicketDetailOut(ticket, context={"full_text": may_read_full_text(ticket, user)}).data


# ---- mentions ---------------------------------------------------------------------


class MentionAuthorIn(serializers.Serializer):
    external_id = serializers.CharField(max_length=255)
    handle = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    display_name = serializers.CharField(
        max_length=255, required=False, default="", allow_blank=True
    )


def _holds_nul(data) -> bool:
    """Whether any key or string anywhere in parsed JSON contains U+0000."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            return True
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


class MentionIn(serializers.Serializer):
    channel = serializers.SlugField(max_length=64)
    external_id = serializers.CharField(max_length=255)
    author = MentionAuthorIn()
    text = BoundedTextField(allow_blank=True)
    url = serializers.URLField(max_length=2048, required=False, default="", allow_blank=True)
    posted_at = AwareDateTimeField()
    in_reply_to_external_id = serializers.CharField(
        max_length=255, required=False, default="", allow_blank=True
    )
    raw = serializers.DictField(required=False, default=dict)

    def validate_channel(self, value: str) -> ChannelAccount:
        channel = channel_active_by_name(value)
        if channel is None:
            raise serializers.ValidationError(
                f"No active channel account named '{value}'.", code="unknown_channel"
            )
        return channel

    def validate_raw(self, value: dict) -> dict:
        # PostgreSQL's jsonb cannot hold U+0000; the other fields refuse it the same way.
        if _holds_nul(value):
            raise serializers.ValidationError(
                "Null characters are not allowed.", code="null_characters_not_allowed"
            )
        return value

    def validate_posted_at(self, value):
        if value > timezone.now() + MAX_CLOCK_SKEW:
            raise serializers.ValidationError(
                "posted_at is in the future.", code="posted_at_in_future"
            )
        return value


class IngestTicketOut(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    priority = serializers.CharField()
    regulated = serializers.BooleanField()
    deadline = serializers.DateTimeField()


class IngestOut(serializers.Serializer):
    mention_id = serializers.IntegerField(source="mention.pk")
    ticket_id = serializers.IntegerField(source="ticket.pk")
    created = serializers.BooleanField()
    ticket = IngestTicketOut()


class MentionIngestApi(APIView):
    """Ingest one mention in the normalized shape: 201 new, 200 a duplicate (same ticket)."""

    @extend_schema(request=MentionIn, responses={200: IngestOut, 201: IngestOut})
    def post(self, request):
        if not has_role(request.user, INTEGRATION, AGENT, SUPERVISOR):
            raise RoleRequired("Only integrations, agents and supervisors can log mentions.")
        serializer = MentionIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.mention_ingest(**serializer.validated_data, actor=request.user)
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(IngestOut(result).data, status=code)


# ---- tickets ----------------------------------------------------------------------


class TicketListApi(APIView):
    @extend_schema(operation_id="v1_tickets_list", responses=paginated(TicketListOut))
    def get(self, request):
        filters = {
            key: request.query_params[key]
            for key in ("state", "regulated", "channel", "assignee", "breached")
            if key in request.query_params
        }
        queryset = selectors.ticket_list(user=request.user, filters=filters)
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(TicketListOut(page, many=True).data)


class TicketDetailApi(APIView):
    @extend_schema(responses=TicketDetailOut)
    def get(self, request, ticket_id: int):
        ticket = selectors.ticket_get(user=request.user, ticket_id=ticket_id)
        return Response(ticket_detail_data(ticket, request.user))


def _ticket_response(request, ticket_id: int) -> Response:
    ticket = selectors.ticket_get(user=request.user, ticket_id=ticket_id)
    return Response(ticket_detail_data(ticket, request.user))


class TicketClaimApi(APIView):
    @extend_schema(request=None, responses=TicketDetailOut)
    def post(self, request, ticket_id: int):
        services.ticket_claim(ticket_id=ticket_id, actor=request.user)
        return _ticket_response(request, ticket_id)


class _TicketReasonApi(APIView):
    service = None

    @extend_schema(request=ReasonSerializer, responses=TicketDetailOut)
    def post(self, request, ticket_id: int):
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        type(self).service(
            ticket_id=ticket_id, actor=request.user, reason=serializer.validated_data["reason"]
        )
        return _ticket_response(request, ticket_id)


class TicketCloseApi(_TicketReasonApi):
    service = staticmethod(services.ticket_close)


class TicketIgnoreApi(_TicketReasonApi):
    service = staticmethod(services.ticket_ignore)


class TicketFlagRegulatedApi(_TicketReasonApi):
    service = staticmethod(services.ticket_flag_regulated)


class TicketClearRegulatedApi(_TicketReasonApi):
    service = staticmethod(services.ticket_clear_regulated)


# ---- replies ----------------------------------------------------------------------


class ReplyBodyIn(serializers.Serializer):
    body = BoundedTextField(allow_blank=False)


def reply_response(request, reply_id: int, *, code: int = status.HTTP_200_OK) -> Response:
    reply = selectors.reply_get(user=request.user, reply_id=reply_id)
    return Response(ReplyDetailOut(reply).data, status=code)


class ReplyCreateIn(serializers.Serializer):
    """Free text (`body`), or a pre-approved template and its slot values."""

    body = BoundedTextField(allow_blank=False, required=False)
    template = serializers.IntegerField(required=False, min_value=1)
    slots = serializers.DictField(child=serializers.CharField(max_length=300), required=False)

    def validate(self, data):
        if "body" not in data and "template" not in data:
            raise serializers.ValidationError(
                {"body": [serializers.ErrorDetail("This field is required.", code="required")]}
            )
        if "body" in data and "template" in data:
            raise serializers.ValidationError(
                "Give either a body, or a template and its slots.", code="body_or_template"
            )
        if "slots" in data and "template" not in data:
            raise serializers.ValidationError("Slots go with a template.", code="body_or_template")
        return data


class ReplyCreateApi(APIView):
    @extend_schema(request=ReplyCreateIn, responses={201: ReplyDetailOut})
    def post(self, request, ticket_id: int):
        serializer = ReplyCreateIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        reply = services.reply_create(
            ticket_id=ticket_id,
            actor=request.user,
            body=data.get("body"),
            template_id=data.get("template"),
            slots=data.get("slots"),
        )
        return reply_response(request, reply.pk, code=status.HTTP_201_CREATED)


class HoldingReplyIn(serializers.Serializer):
    template = serializers.IntegerField(required=False, min_value=1)
    slots = serializers.DictField(child=serializers.CharField(max_length=300), required=False)


class HoldingReplyApi(APIView):
    """Send an approved holding template now (202), while the answer is with legal."""

    @extend_schema(request=HoldingReplyIn, responses={202: ReplyDetailOut})
    def post(self, request, ticket_id: int):
        serializer = HoldingReplyIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        reply = services.reply_send_holding(
            ticket_id=ticket_id,
            actor=request.user,
            template_id=serializer.validated_data.get("template"),
            slots=serializer.validated_data.get("slots"),
        )
        return reply_response(request, reply.pk, code=status.HTTP_202_ACCEPTED)


class ReplyDetailApi(APIView):
    @extend_schema(responses=ReplyDetailOut)
    def get(self, request, reply_id: int):
        return reply_response(request, reply_id)

    @extend_schema(request=ReplyBodyIn, responses=ReplyDetailOut)
    def patch(self, request, reply_id: int):
        serializer = ReplyBodyIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.reply_update(
            reply_id=reply_id, actor=request.user, body=serializer.validated_data["body"]
        )
        return reply_response(request, reply_id)


class ReplySubmitApi(APIView):
    @extend_schema(request=None, responses=ReplyDetailOut)
    def post(self, request, reply_id: int):
        services.reply_submit(reply_id=reply_id, actor=request.user)
        return reply_response(request, reply_id)


class ReplySendApi(APIView):
    """Send: 202, the publish is handed to a worker; the reply's state says how far it got
    (`sending`, then `sent` with the platform's id, or `failed` with the reason)."""

    @extend_schema(request=None, responses={202: ReplyDetailOut})
    def post(self, request, reply_id: int):
        services.reply_send(reply_id=reply_id, actor=request.user)
        return reply_response(request, reply_id, code=status.HTTP_202_ACCEPTED)


class AuditListApi(APIView):
    @extend_schema(operation_id="v1_audit_list", responses=paginated(AuditEventOut))
    def get(self, request):
        raw_ticket = request.query_params.get("ticket")
        ticket_id = None
        if raw_ticket is not None:
            # isdigit alone lets through digits int() refuses, such as "²".
            if not (raw_ticket.isascii() and raw_ticket.isdigit()):
                raise serializers.ValidationError({"ticket": ["Must be a ticket id."]})
            ticket_id = int(raw_ticket)
        queryset = selectors.audit_list(user=request.user, ticket_id=ticket_id)
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(AuditEventOut(page, many=True).data)
