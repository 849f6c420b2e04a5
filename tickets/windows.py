"""The real-time window: how long we have to answer, from the customer's own post."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from servicedesk.ttlcache import TTLValue
from tickets.models import PlatformReplyWindow, WindowPolicy

# Seconds a process keeps the window table; an edited policy applies within this time.
WINDOW_CACHE_SECONDS = 30


def _load_windows() -> dict[tuple[str, str], int]:
    return {
        (platform, priority): minutes
        for platform, priority, minutes in WindowPolicy.objects.values_list(
            "platform", "priority", "first_response_minutes"
        )
    }


def _load_caps() -> dict[str, int]:
    return dict(PlatformReplyWindow.objects.values_list("platform", "max_minutes"))


_windows = TTLValue(_load_windows, ttl=WINDOW_CACHE_SECONDS)
_caps = TTLValue(_load_caps, ttl=WINDOW_CACHE_SECONDS)


def window_minutes(*, platform: str, priority: str) -> int:
    """The policy's window, cut to the platform's own reply window where it has one."""
    minutes = _windows.get().get((platform, priority)) or settings.DEFAULT_WINDOW_MINUTES
    cap = _caps.get().get(platform)
    return min(minutes, cap) if cap else minutes


def windows_changed() -> None:
    """Forget the cached tables in this process (after an edit here)."""
    _windows.clear()
    _caps.clear()


def deadline_for(*, posted_at: datetime, platform: str, priority: str) -> datetime:
    return posted_at + timedelta(minutes=window_minutes(platform=platform, priority=priority))
