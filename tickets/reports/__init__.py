"""Supervisors' figures: latency reports, breaches, the command-center wall, staffing.

Read-only selectors over the latency record (tickets/cycles.py), the tickets and the
channels. Callers check the role first with `require_supervisor`.
"""

from tickets.reports.common import (
    Period,
    nearest_rank,
    percentiles,
    period_parse,
    require_evidence_reader,
    require_supervisor,
)
from tickets.reports.latency import (
    EXPORT_COLUMNS,
    GROUP_BY,
    breaches_list,
    group_by_parse,
    interval_parse,
    latency_export,
    latency_report,
    latency_series,
)
from tickets.reports.staffing import erlang_c, service_level, staff_needed, staffing_table
from tickets.reports.wall import channel_health, wall_snapshot

__all__ = [
    "EXPORT_COLUMNS",
    "GROUP_BY",
    "Period",
    "breaches_list",
    "channel_health",
    "erlang_c",
    "group_by_parse",
    "interval_parse",
    "latency_export",
    "latency_report",
    "latency_series",
    "nearest_rank",
    "percentiles",
    "period_parse",
    "require_evidence_reader",
    "require_supervisor",
    "service_level",
    "staff_needed",
    "staffing_table",
    "wall_snapshot",
]
