"""The simulated platform: replies are 'posted' by recording them, once per idempotency key.

It lets the whole lifecycle run with no outside service (the demo, the tests), and
behaves like a platform that honours idempotency keys: the same key twice returns
the first post.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from connectors.base import Connector, PublishResult, ReplyTarget
from connectors.models import SimulatedPost

BASE_URL = "https://simulated.invalid"


class SimulatedConnector(Connector):
    platform = "simulated"

    def _result(self, post: SimulatedPost) -> PublishResult:
        return PublishResult(
            external_id=post.external_id,
            url=f"{BASE_URL}/{self.channel.name}/posts/{post.external_id}",
        )

    def publish(self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID):
        existing = SimulatedPost.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            try:
                with transaction.atomic():
                    existing = SimulatedPost.objects.create(
                        channel=self.channel,
                        idempotency_key=idempotency_key,
                        external_id=f"sim-{uuid.uuid4().hex[:16]}",
                        in_reply_to_external_id=target.external_id,
                        text=text,
                        text_sha256=hashlib.sha256(text.encode()).hexdigest(),
                        posted_at=timezone.now(),
                    )
            except IntegrityError:
                # A concurrent attempt with the same key won: return its post.
                existing = SimulatedPost.objects.get(idempotency_key=idempotency_key)
        return self._result(existing)

    def find_own_reply(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID, since: datetime
    ):
        # Found by this reply's own key: no earlier reply can be taken for it.
        post = SimulatedPost.objects.filter(idempotency_key=idempotency_key).first()
        return self._result(post) if post is not None else None
