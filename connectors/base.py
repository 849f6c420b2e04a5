"""What every connector offers the rest of the product."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from connectors.models import ChannelAccount


@dataclass(frozen=True)
class PublishResult:
    external_id: str
    url: str


class PublishError(Exception):
    """A publish that did not happen. Permanent errors are not retried."""

    def __init__(self, reason: str, *, permanent: bool):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Publisher(Protocol):
    def __call__(
        self,
        channel: ChannelAccount,
        *,
        text: str,
        in_reply_to_external_id: str,
        idempotency_key: uuid.UUID,
    ) -> PublishResult: ...
