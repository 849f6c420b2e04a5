"""The real-time window: how long we have to answer, from the customer's own post."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from tickets.models import WindowPolicy


def window_minutes(*, platform: str, priority: str) -> int:
    minutes = (
        WindowPolicy.objects.filter(platform=platform, priority=priority)
        .values_list("first_response_minutes", flat=True)
        .first()
    )
    return minutes or settings.DEFAULT_WINDOW_MINUTES


def deadline_for(*, posted_at: datetime, platform: str, priority: str) -> datetime:
    return posted_at + timedelta(minutes=window_minutes(platform=platform, priority=priority))
