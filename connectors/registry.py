"""Connector classes by platform name."""

from __future__ import annotations

from importlib import import_module

from connectors.base import Connector, PermanentError
from connectors.models import ChannelAccount

# platform -> "module:Class" under connectors.platforms, imported on first use.
CONNECTORS: dict[str, str] = {
    "simulated": "connectors.platforms.simulated:SimulatedConnector",
    "generic": "connectors.platforms.generic:GenericConnector",
    "x": "connectors.platforms.x:XConnector",
    "facebook": "connectors.platforms.meta:FacebookConnector",
    "instagram": "connectors.platforms.meta:InstagramConnector",
    "mastodon": "connectors.platforms.mastodon:MastodonConnector",
    "bluesky": "connectors.platforms.bluesky:BlueskyConnector",
    "youtube": "connectors.platforms.youtube:YouTubeConnector",
    "linkedin": "connectors.platforms.linkedin:LinkedInConnector",
}


def connector_class(platform: str) -> type[Connector]:
    dotted = CONNECTORS.get(platform)
    if dotted is None:
        raise PermanentError(f"No connector for platform '{platform}'.")
    module_name, class_name = dotted.split(":")
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise PermanentError(f"The {platform} connector is not available yet.") from None
    return getattr(module, class_name)


def connector_for(channel: ChannelAccount) -> Connector:
    return connector_class(channel.platform)(channel)
