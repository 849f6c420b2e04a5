"""Template filters for the supervision pages: durations and timestamps for people."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

from tickets.clock import duration_text

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """Seconds as 45s, 12m 05s, 3h 07m; an em dash when there is no figure."""
    if seconds is None or seconds == "":
        return "—"
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return "—"
    return ("−" if value < 0 else "") + duration_text(value)


@register.filter
def when(value) -> str:
    """An ISO 8601 timestamp (or a datetime) in the desk's time zone, to the second."""
    if not value:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")


@register.filter
def percent(value) -> str:
    return "—" if value is None else f"{value:g}%"
