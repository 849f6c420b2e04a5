"""The simulated platform: replies are 'posted' by recording them, once per idempotency key.

It lets the whole lifecycle run with no outside service (the demo, the tests), and
behaves like a platform that honours idempotency keys: the same key twice returns
the first post.
"""

from __future__ import annotations

import hashlib
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from connectors.base import PublishResult
from connectors.models import ChannelAccount, SimulatedPost

BASE_URL = "https://simulated.invalid"


def publish(
    channel: ChannelAccount,
    *,
    text: str,
    in_reply_to_external_id: str,
    idempotency_key: uuid.UUID,
) -> PublishResult:
    existing = SimulatedPost.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        try:
            with transaction.atomic():
                existing = SimulatedPost.objects.create(
                    channel=channel,
                    idempotency_key=idempotency_key,
                    external_id=f"sim-{uuid.uuid4().hex[:16]}",
                    in_reply_to_external_id=in_reply_to_external_id,
                    text=text,
                    text_sha256=hashlib.sha256(text.encode()).hexdigest(),
                    posted_at=timezone.now(),
                )
        except IntegrityError:
            # A concurrent attempt with the same key won: return its post.
            existing = SimulatedPost.objects.get(idempotency_key=idempotency_key)
    return PublishResult(
        external_id=existing.external_id,
        url=f"{BASE_URL}/{channel.name}/posts/{existing.external_id}",
    )
