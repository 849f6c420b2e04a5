"""HTML pages for supervisors: latency reports, staffing, the command-center wall, and a
ticket's printable evidence (supervisors and legal).

The figures come from tickets/reports (the same selectors as the API, so a page and
the API never disagree); charts are SVG drawn on the server (tickets/charts.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from servicedesk.errors import InvalidInput
from servicedesk.roles import LEGAL, SUPERVISOR
from tickets.charts import Bar, bar_rows_chart, column_chart
from tickets.clock import db_now, duration_text
from tickets.cycles import STAGE_LABELS, STAGE_NAMES, cycles_refresh_without_beat
from tickets.evidence import evidence_bundle
from tickets.reports import (
    GROUP_BY,
    breaches_list,
    group_by_parse,
    interval_parse,
    latency_report,
    period_parse,
    staffing_table,
    wall_snapshot,
)
from tickets.ui import CHANNEL_ICONS, epoch_ms, html_view

GROUP_LABELS = {
    "stage": "Stage",
    "channel": "Channel",
    "agent": "Agent",
    "reviewer": "Reviewer",
    "regulated": "Regulated or not",
    "template": "Template or free text",
}
SENTIMENT_KEYS = ("negative", "neutral", "positive")
BREACH_ROWS = 50


def _period_from(request: HttpRequest):
    """The period and options from the query string, or the error to show."""
    now = db_now()
    try:
        period = period_parse(
            since=request.GET.get("since"), until=request.GET.get("until"), now=now
        )
        group_by = group_by_parse(request.GET.get("group_by", "stage"))
        interval = interval_parse(request.GET.get("interval"))
    except InvalidInput as exc:
        return None, exc, now
    if interval is None:
        interval = "hour" if period.until - period.since <= timedelta(days=3) else "day"
    return (period, group_by, interval), None, now


def _stage_bars(report: dict[str, Any]) -> list[Bar]:
    """Where the minutes went: the mean of each stage per answered cycle, overall and per
    group, against the mean window (the dashed line)."""

    def bar(label: str, figures: dict[str, Any], window: float | None) -> Bar:
        values = {item["stage"]: item["mean_seconds"] or 0.0 for item in figures["stages"]}
        return Bar(label=label, values=values, marker=window)

    bars = [bar("All answers", report, _mean_window(report["stages"]))]
    if report["group_by"] not in (None, "stage"):
        for group in report["groups"][:12]:
            bars.append(bar(group["label"], group, _mean_window(group["stages"])))
    return bars


def _mean_window(stages: list[dict[str, Any]]) -> float | None:
    """The mean window, from a stage's mean seconds and its share of the window."""
    for item in stages:
        if item["mean_seconds"] and item["share_of_window_pct"]:
            return item["mean_seconds"] * 100 / item["share_of_window_pct"]
    return None


@require_GET
@html_view(SUPERVISOR)
def reports(request: HttpRequest) -> HttpResponse:
    parsed, error, now = _period_from(request)
    context: dict[str, Any] = {
        "group_choices": [(value, GROUP_LABELS[value]) for value in GROUP_BY],
        "stage_keys": STAGE_NAMES,
        "stage_labels": STAGE_LABELS,
        "form": {
            "since": request.GET.get("since", ""),
            "until": request.GET.get("until", ""),
            "group_by": request.GET.get("group_by", "stage"),
            "interval": request.GET.get("interval", ""),
        },
        "presets": [
            ("Last 24 hours", urlencode({"since": (now - timedelta(days=1)).isoformat()})),
            ("Last 7 days", urlencode({"since": (now - timedelta(days=7)).isoformat()})),
            ("Last 30 days", urlencode({"since": (now - timedelta(days=30)).isoformat()})),
        ],
    }
    if error is not None:
        context["error"] = error.message
        return render(request, "tickets/reports.html", context, status=400)
    period, group_by, interval = parsed
    cycles_refresh_without_beat()
    # Percentiles per bucket cost a sort each: the page shows the means, the API both.
    report = latency_report(
        period=period, group_by=group_by, interval=interval, series_percentiles=False
    )
    breaches = breaches_list(
        period=period,
        limit=BREACH_ROWS,
        total=report["late_answers"] + report["breached_waiting"],
    )
    query = urlencode({"since": report["since"], "until": report["until"]})
    series = report.get("series", [])
    label_every = max(1, len(series) // 12)
    fmt = "%H:%M" if interval == "hour" else "%b %d"
    series_bars = [
        Bar(
            label=datetime.fromisoformat(item["start"]).strftime(fmt),
            values={name: value or 0.0 for name, value in item["stages"].items()},
            title=(
                f"{item['start']}: {item['count']} answers, mean {item['mean_seconds']} s, "
                f"{item['within_window_pct']}% within window"
            ),
        )
        for item in series
    ]
    context.update(
        report=report,
        breaches=breaches,
        query=query,
        api_query=urlencode(
            {
                "since": report["since"],
                "until": report["until"],
                **({"group_by": group_by} if group_by else {}),
                "interval": interval,
            }
        ),
        stage_chart=bar_rows_chart(
            _stage_bars(report), STAGE_NAMES, label="Where the minutes went, by stage"
        ),
        series_chart=column_chart(
            series_bars,
            STAGE_NAMES,
            label=f"Mean minutes per stage, per {interval}",
            label_every=label_every,
            bar_width=max(4, min(24, 900 // max(len(series_bars), 1))),
        )
        if series_bars
        else None,
    )
    return render(request, "tickets/reports.html", context)


@require_GET
@html_view(SUPERVISOR)
def staffing(request: HttpRequest) -> HttpResponse:
    parsed, error, _ = _period_from(request)
    context: dict[str, Any] = {
        "form": {"since": request.GET.get("since", ""), "until": request.GET.get("until", "")}
    }
    if error is not None:
        context["error"] = error.message
        return render(request, "tickets/reports_staffing.html", context, status=400)
    period = parsed[0]
    cycles_refresh_without_beat()
    table = staffing_table(period=period)
    bars = [
        Bar(
            label=f"{row['hour']:02d}",
            values={"needed": float(row["agents_needed"])},
            title=(
                f"{row['hour']:02d}:00 — {row['agents_needed']} agents needed, "
                f"{row['agents_active']} active"
            ),
            highlight="short" if row["agents_active"] < row["agents_needed"] else "",
        )
        for row in table["hours"]
    ]
    context.update(
        table=table,
        chart=column_chart(
            bars, ("needed",), label="Agents needed per hour", unit="people", bar_width=24
        ),
    )
    return render(request, "tickets/reports_staffing.html", context)


def _wall_context(request: HttpRequest) -> dict[str, Any]:
    cycles_refresh_without_beat()
    snapshot = wall_snapshot()
    minutes = snapshot["mentions"]["minutes"]
    bars = [
        Bar(
            label=item["minute"][11:16],
            values={key: float(item[key]) for key in SENTIMENT_KEYS},
            title=(
                f"{item['minute'][11:16]}: {item['total']} posts "
                f"({item['negative']} negative), usually {item['usual']}"
            ),
            highlight=item["spike"] or "",
        )
        for item in minutes
    ]
    for row in snapshot["tickets"]["at_risk_list"]:
        row["icon"] = CHANNEL_ICONS.get(row["platform"], "?")
        row["start_ms"] = epoch_ms(datetime.fromisoformat(row["posted_at"]))
        row["deadline_ms"] = epoch_ms(datetime.fromisoformat(row["deadline"]))
        left = row["seconds_left"]
        row["left_text"] = (
            f"overdue by {duration_text(-left)}" if left < 0 else f"{duration_text(left)} left"
        )
    now = datetime.fromisoformat(snapshot["now"])
    return {
        "wall": snapshot,
        "server_now_ms": epoch_ms(now),
        "refresh_seconds": settings.WALL_REFRESH_SECONDS,
        "broken": [c for c in snapshot["channels"] if c["status"] in ("broken", "stale")],
        "mentions_chart": column_chart(
            bars,
            SENTIMENT_KEYS,
            label="Posts per minute by sentiment",
            unit="posts",
            height=260,
            bar_width=5,
            gap=1,
            label_every=30,
            css="chart chart-wall",
        ),
    }


@require_GET
@html_view(SUPERVISOR)
def wall(request: HttpRequest) -> HttpResponse:
    return render(request, "tickets/wall.html", _wall_context(request))


@require_GET
@html_view(SUPERVISOR)
def wall_panel(request: HttpRequest) -> HttpResponse:
    """The wall's content alone, which the page swaps in every WALL_REFRESH_SECONDS."""
    return render(request, "tickets/wall_panel.html", _wall_context(request))


@require_GET
@html_view(SUPERVISOR, LEGAL)
def evidence(request: HttpRequest, ticket_id: int) -> HttpResponse:
    cycles_refresh_without_beat()
    bundle = evidence_bundle(user=request.user, ticket_id=ticket_id)
    return render(request, "tickets/evidence.html", {"bundle": bundle})
