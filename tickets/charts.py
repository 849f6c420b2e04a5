"""Charts drawn on the server as SVG: no script, no chart library, nothing to load.

Colours come from classes in static/css/supervision.css (the page's CSP allows no
inline style). Every label is escaped with format_html; each bar carries a <title>
with its exact figures, which browsers show on hover and screen readers read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from tickets.clock import duration_text


@dataclass
class Bar:
    label: str
    values: dict[str, float]
    title: str = ""
    highlight: str = ""
    marker: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _nice_max(value: float) -> float:
    """A round number at or above value, for the axis."""
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400):
        for mult in (1, 2, 5):
            if step * mult >= value:
                return float(step * mult)
    magnitude = 1.0
    while magnitude * 10 < value:
        magnitude *= 10
    return magnitude * 10


def _fmt(value: float, unit: str) -> str:
    if unit == "seconds":
        return duration_text(value)
    return f"{value:g}"


def column_chart(
    bars: Sequence[Bar],
    keys: Sequence[str],
    *,
    label: str,
    unit: str = "seconds",
    height: int = 220,
    bar_width: int = 14,
    gap: int = 3,
    label_every: int = 1,
    css: str = "chart",
) -> SafeString:
    """Vertical stacked columns, one per bar, segments in the order of `keys`."""
    left, bottom, top = 56, 36, 10
    plot_height = height - bottom - top
    # A few bars keep their width: the chart does not stretch them across the page.
    width = left + max(len(bars) * (bar_width + gap), 560) + 10
    peak = _nice_max(max((sum(bar.values.values()) for bar in bars), default=0.0))
    parts: list[SafeString] = []
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_height * (1 - fraction)
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>',
                left,
                width,
                round(y, 1),
                round(y, 1),
                left - 6,
                round(y + 4, 1),
                _fmt(peak * fraction, unit),
            )
        )
    for index, bar in enumerate(bars):
        x = left + index * (bar_width + gap)
        if bar.highlight:
            parts.append(
                format_html(
                    '<rect class="spike spike-{}" x="{}" y="{}" width="{}" height="{}">'
                    "<title>{}</title></rect>",
                    bar.highlight,
                    x - 1,
                    top,
                    bar_width + 2,
                    plot_height,
                    f"spike ({bar.highlight})",
                )
            )
        y = top + plot_height
        for key in keys:
            value = bar.values.get(key) or 0.0
            if value <= 0:
                continue
            h = plot_height * value / peak
            y -= h
            parts.append(
                format_html(
                    '<rect class="seg seg-{}" x="{}" y="{}" width="{}" height="{}" '
                    'data-key="{}" data-value="{}"><title>{}: {} — {}</title></rect>',
                    key,
                    x,
                    round(y, 2),
                    bar_width,
                    round(h, 2),
                    key,
                    value,
                    bar.label,
                    key,
                    _fmt(value, unit),
                )
            )
        if bar.title:
            parts.append(
                format_html(
                    '<rect class="hit" x="{}" y="{}" width="{}" height="{}">'
                    "<title>{}</title></rect>",
                    x,
                    top,
                    bar_width,
                    plot_height,
                    bar.title,
                )
            )
        if label_every and index % label_every == 0:
            parts.append(
                format_html(
                    '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>',
                    x + bar_width / 2,
                    height - bottom + 16,
                    bar.label,
                )
            )
    return format_html(
        '<svg class="{}" role="img" aria-label="{}" viewBox="0 0 {} {}" '
        'preserveAspectRatio="xMinYMin meet" data-bars="{}">{}</svg>',
        css,
        label,
        width,
        height,
        len(bars),
        _join(parts),
    )


def bar_rows_chart(
    bars: Sequence[Bar],
    keys: Sequence[str],
    *,
    label: str,
    row_height: int = 26,
    width: int = 760,
    css: str = "chart chart-rows",
) -> SafeString:
    """Horizontal stacked bars, one row per bar, with a dashed marker per row (the
    window) when the bar has one."""
    left, right, top = 170, 70, 8
    plot = width - left - right
    height = top + len(bars) * (row_height + 8) + 8
    peak = _nice_max(
        max(
            (max(sum(bar.values.values()), bar.marker or 0.0) for bar in bars),
            default=0.0,
        )
    )
    parts: list[SafeString] = []
    for index, bar in enumerate(bars):
        y = top + index * (row_height + 8)
        parts.append(
            format_html(
                '<text class="axis row-label" x="{}" y="{}" text-anchor="end">{}</text>',
                left - 8,
                y + row_height * 0.68,
                bar.label[:28],
            )
        )
        x = left
        for key in keys:
            value = bar.values.get(key) or 0.0
            if value <= 0:
                continue
            w = plot * value / peak
            parts.append(
                format_html(
                    '<rect class="seg seg-{}" x="{}" y="{}" width="{}" height="{}" '
                    'data-key="{}" data-value="{}"><title>{}: {} — {}</title></rect>',
                    key,
                    round(x, 2),
                    y,
                    round(w, 2),
                    row_height,
                    key,
                    value,
                    bar.label,
                    key,
                    duration_text(value),
                )
            )
            x += w
        total = sum(bar.values.values())
        parts.append(
            format_html(
                '<text class="axis" x="{}" y="{}">{}</text>',
                round(x + 6, 2),
                y + row_height * 0.68,
                duration_text(total),
            )
        )
        if bar.marker:
            mx = left + plot * bar.marker / peak
            parts.append(
                format_html(
                    '<line class="marker" x1="{}" x2="{}" y1="{}" y2="{}">'
                    "<title>window: {}</title></line>",
                    round(mx, 2),
                    round(mx, 2),
                    y - 3,
                    y + row_height + 3,
                    duration_text(bar.marker),
                )
            )
    return format_html(
        '<svg class="{}" role="img" aria-label="{}" viewBox="0 0 {} {}" '
        'preserveAspectRatio="xMinYMin meet" data-bars="{}">{}</svg>',
        css,
        label,
        width,
        height,
        len(bars),
        _join(parts),
    )


def _join(parts: list[SafeString]) -> SafeString:
    if not parts:
        return mark_safe("")  # noqa: S308 - an empty string
    return format_html_join("", "{}", ((part,) for part in parts))
