"""The generic webhook: the normalized mention shape, for platforms we do not connect.

Signed with HMAC-SHA256 of the raw body under the account's `secret`, sent as
`X-Servicedesk-Signature: sha256=<hex>`. During a rotation `previous_secret` is
accepted too, until `previous_secret_until` if set. The body is one mention object or
`{"mentions": [...]}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

from rest_framework import serializers

from connectors.base import (
    PREVIOUS_SECRET_UNTIL,
    Connector,
    EntryError,
    InboundEvent,
    PermanentError,
    SettingSpec,
)
from tickets.api import MentionIn

SIGNATURE_HEADER = "x-servicedesk-signature"


class _Mention(MentionIn):
    """The API's mention shape; the channel is the account whose secret signed it."""

    channel = None
    deleted = serializers.BooleanField(required=False, default=False)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class GenericConnector(Connector):
    platform = "generic"
    settings_spec = (
        SettingSpec("secret", required=True, secret=True, help="HMAC-SHA256 key"),
        SettingSpec("previous_secret", secret=True, help="still accepted while rotating"),
        PREVIOUS_SECRET_UNTIL,
    )
    kept_headers = ("content-type", SIGNATURE_HEADER)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        given = headers.get(SIGNATURE_HEADER, "")
        secrets = [self.channel.setting("secret"), self.previous_secret("previous_secret")]
        # Every candidate is compared (no early exit), each in constant time.
        results = [hmac.compare_digest(given, sign(secret, body)) for secret in secrets if secret]
        return any(results)

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[InboundEvent]:
        self.entry_errors = []
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PermanentError(f"The body is not JSON: {exc}") from None
        items = data.get("mentions") if isinstance(data, dict) and "mentions" in data else [data]
        if not isinstance(items, list):
            raise PermanentError("'mentions' must be a list.")
        events = []
        for index, item in enumerate(items):
            serializer = _Mention(data=item)
            if not serializer.is_valid():
                self.entry_errors.append(EntryError(f"mention {index}: {serializer.errors}"))
                continue
            value = serializer.validated_data
            events.append(
                InboundEvent(
                    kind="delete" if value["deleted"] else "post",
                    external_id=value["external_id"],
                    author=dict(value["author"]),
                    text=value["text"],
                    url=value["url"],
                    posted_at=value["posted_at"],
                    in_reply_to_external_id=value["in_reply_to_external_id"],
                    raw=item,
                )
            )
        return events

    def publish(self, *, text, target, idempotency_key):
        raise PermanentError(
            "Replies cannot be posted through the generic webhook; answer on the platform "
            "by hand and close the ticket."
        )
