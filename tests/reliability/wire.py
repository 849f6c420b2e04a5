"""Signed generic-webhook deliveries (connectors/platforms/generic.py), as a partner
system sends them: one mention, or {"mentions": [...]}, signed over the raw bytes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.utils import timezone

from connectors.platforms.generic import SIGNATURE_HEADER, sign

SECRET = "reliability-generic-secret"
URL = "/connectors/generic/webhook/"


def generic_mention(
    external_id: str,
    *,
    text: str = "@NorthwindBank the app keeps logging me out",
    posted_at: datetime | None = None,
    author: str = "",
) -> dict:
    author = author or f"cust-{external_id}"
    return {
        "external_id": external_id,
        "author": {"external_id": author, "handle": author, "display_name": "C"},
        "text": text,
        "url": f"https://forum.example/p/{external_id}",
        "posted_at": (posted_at or timezone.now() - timedelta(minutes=2)).isoformat(),
    }


def generic_body(*mentions: dict) -> bytes:
    payload = mentions[0] if len(mentions) == 1 else {"mentions": list(mentions)}
    return json.dumps(payload).encode()


def generic_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)}
