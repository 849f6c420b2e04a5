"""Publishers by platform. Platforms without a connector yet fail permanently, plainly."""

from __future__ import annotations

import uuid

from connectors import simulated
from connectors.base import Publisher, PublishError, PublishResult
from connectors.models import ChannelAccount

PUBLISHERS: dict[str, Publisher] = {"simulated": simulated.publish}


def publish_reply(
    channel: ChannelAccount, *, text: str, in_reply_to_external_id: str, idempotency_key: uuid.UUID
) -> PublishResult:
    publisher = PUBLISHERS.get(channel.platform)
    if publisher is None:
        raise PublishError(
            f"No publishing connector for {channel.get_platform_display()} yet; "
            "answer on the platform by hand and close the ticket.",
            permanent=True,
        )
    return publisher(
        channel,
        text=text,
        in_reply_to_external_id=in_reply_to_external_id,
        idempotency_key=idempotency_key,
    )
