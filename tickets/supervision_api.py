"""HTTP API for supervision: latency metrics, breaches, the rows behind them as CSV,
staffing, the wall's figures and a ticket's evidence bundle.

Supervisors only (legal may read evidence too): anyone else gets a 403 with code
`role_required`. A period or a filter the server cannot read is a 400 with code
`invalid_filter`, never a 500.
"""

from __future__ import annotations

import json

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from servicedesk.errors import InvalidInput
from tickets.clock import db_now
from tickets.cycles import cycles_refresh_without_beat
from tickets.evidence import evidence_bundle
from tickets.reports import (
    GROUP_BY,
    breaches_list,
    group_by_parse,
    interval_parse,
    latency_export,
    latency_report,
    period_parse,
    require_evidence_reader,
    require_supervisor,
    staffing_table,
    wall_snapshot,
)

PERIOD_PARAMETERS = [
    OpenApiParameter(
        "since", str, description="ISO 8601 date or date-time; default: 7 days before until."
    ),
    OpenApiParameter("until", str, description="ISO 8601 date or date-time; default: now."),
]


def _int_param(request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InvalidInput(
            f"'{name}' must be a whole number from {low} to {high}.",
            code="invalid_filter",
            field=name,
        )
    return int(raw)


def _period(request):
    return period_parse(
        since=request.query_params.get("since"),
        until=request.query_params.get("until"),
        now=db_now(),
    )


class LatencyMetricsApi(APIView):
    @extend_schema(
        parameters=[
            *PERIOD_PARAMETERS,
            OpenApiParameter("group_by", str, enum=list(GROUP_BY)),
            OpenApiParameter("interval", str, enum=["hour", "day"]),
        ],
        responses=OpenApiTypes.OBJECT,
        description=(
            "First-response time p50/p90/p99 (seconds, nearest rank) and % within the "
            "window over a period; `groups` by stage, channel, agent, reviewer, regulated "
            "or template; `series` per hour or day."
        ),
    )
    def get(self, request):
        require_supervisor(request.user)
        period = _period(request)
        group_by = group_by_parse(request.query_params.get("group_by"))
        interval = interval_parse(request.query_params.get("interval"))
        cycles_refresh_without_beat()
        return Response(latency_report(period=period, group_by=group_by, interval=interval))


class LatencyExportApi(APIView):
    @extend_schema(
        parameters=PERIOD_PARAMETERS,
        responses={(200, "text/csv"): OpenApiTypes.STR},
        description="Every response cycle of the period, one CSV row each.",
    )
    def get(self, request):
        require_supervisor(request.user)
        period = _period(request)
        cycles_refresh_without_beat()
        response = StreamingHttpResponse(
            latency_export(period=period), content_type="text/csv; charset=utf-8"
        )
        name = f"latency-{period.since:%Y%m%d%H%M}-{period.until:%Y%m%d%H%M}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class BreachesApi(APIView):
    @extend_schema(
        parameters=[*PERIOD_PARAMETERS, OpenApiParameter("limit", int)],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request):
        require_supervisor(request.user)
        period = _period(request)
        limit = _int_param(request, "limit", default=100, low=1, high=1000)
        cycles_refresh_without_beat()
        return Response(breaches_list(period=period, limit=limit))


class StaffingApi(APIView):
    @extend_schema(
        parameters=[*PERIOD_PARAMETERS, OpenApiParameter("target_pct", int)],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request):
        require_supervisor(request.user)
        period = _period(request)
        target = _int_param(request, "target_pct", default=0, low=1, high=99) or None
        cycles_refresh_without_beat()
        return Response(staffing_table(period=period, target_pct=target))


class WallApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("hours", int)],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request):
        require_supervisor(request.user)
        hours = _int_param(request, "hours", default=0, low=1, high=24) or None
        cycles_refresh_without_beat()
        return Response(wall_snapshot(hours=hours))


class EvidenceApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("download", bool)],
        responses=OpenApiTypes.OBJECT,
        description="The ticket's evidence bundle (supervisors and legal).",
    )
    def get(self, request, ticket_id: int):
        require_evidence_reader(request.user)
        cycles_refresh_without_beat()
        bundle = evidence_bundle(user=request.user, ticket_id=ticket_id)
        if request.query_params.get("download") in ("1", "true"):
            # Indented, for people; the bundle's sha256 covers its canonical form.
            response = HttpResponse(
                json.dumps(bundle, indent=2, ensure_ascii=False),
                content_type="application/json; charset=utf-8",
            )
            response["Content-Disposition"] = (
                f'attachment; filename="evidence-ticket-{ticket_id}.json"'
            )
            return response
        return Response(bundle)
