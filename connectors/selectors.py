"""Read queries for channel accounts."""

from __future__ import annotations

from connectors.models import ChannelAccount
from servicedesk.ttlcache import TTLValue

# Seconds a process keeps the active accounts; a new or deactivated account applies
# within this time (at once in the process that saved it).
CHANNEL_CACHE_SECONDS = 30


def _load_active() -> dict[str, ChannelAccount]:
    return {channel.name: channel for channel in ChannelAccount.objects.filter(is_active=True)}


_active = TTLValue(_load_active, ttl=CHANNEL_CACHE_SECONDS)


def channel_active_by_name(name: str) -> ChannelAccount | None:
    channel = _active.get().get(name)
    if channel is None:
        # An account added moments ago in another process: look once in the database.
        channel = ChannelAccount.objects.filter(name=name, is_active=True).first()
        if channel is not None:
            channels_changed()
    return channel


def channels_active_on(platforms: tuple[str, ...]) -> list[ChannelAccount]:
    """The active accounts of these platforms, from the per-process cache."""
    return [channel for channel in _active.get().values() if channel.platform in platforms]


def channels_changed() -> None:
    _active.clear()
