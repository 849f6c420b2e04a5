"""A fake Bluesky PDS on the shared FakePlatform (a real HTTP server on 127.0.0.1).

It speaks XRPC as the connector meets it: createSession / refreshSession with rotating
JWT-shaped tokens it checks (an expired access token answers 400 `ExpiredToken`),
listNotifications newest first with a cursor for older items (the last item's
indexedAt, as the AppView does), records with AT-URIs and CIDs, createRecord with a
client-chosen rkey that fails when the key is taken, getRecord, the
`{"error", "message"}` error body and the `ratelimit-*` headers (reset in epoch seconds).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.connectors.fakes import FakePlatform, Recorded, Reply

HANDLE = "northwind.bsky.social"
DID = "did:plc:n0rthw1ndbank4xq2zj7kd3pa"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def cid_of(value: Any) -> str:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).digest()
    return "bafyrei" + base64.b32encode(digest).decode().lower().rstrip("=")[:52]


def tid(number: int) -> str:
    """A TID for the number-th post: microseconds in November 2026, base32-sortable."""
    value = ((1_795_000_000_000_000 + number * 1_000) << 10) | 7
    chars = "234567abcdefghijklmnopqrstuvwxyz"
    return "".join(chars[(value >> shift) & 31] for shift in range(60, -1, -5))


def jwt(kind: str, number: int) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {"scope": kind, "sub": DID, "iat": 1790000000 + number, "exp": 1790007200 + number}
    return f"{part({'typ': 'at+jwt', 'alg': 'ES256K'})}.{part(claims)}.sig{number}"


class FakeBluesky:
    def __init__(self, platform: FakePlatform):
        self.platform = platform
        self.url = platform.url
        self.notifications: list[dict] = []
        self.records: dict[str, dict] = {}  # AT-URI → {"uri", "cid", "value"}
        self.access: dict[str, bool] = {}  # token → still good
        self.refresh: dict[str, bool] = {}
        self.faults: dict[tuple[str, str], list[Reply]] = {}
        self.honour_reasons = True
        self._tokens = itertools.count(1)
        self._rkeys = itertools.count(1)
        self.clock = datetime(2026, 11, 20, 15, 0, 0, tzinfo=UTC)
        self.profiles: dict[str, dict] = {}
        self.brand = self.profile(DID, HANDLE, "Northwind Bank")
        for method, nsid, handler in (
            ("POST", "com.atproto.server.createSession", self._create_session),
            ("POST", "com.atproto.server.refreshSession", self._refresh_session),
            ("GET", "app.bsky.notification.listNotifications", self._list_notifications),
            ("POST", "com.atproto.repo.createRecord", self._create_record),
            ("GET", "com.atproto.repo.getRecord", self._get_record),
        ):
            platform.route(method, f"/xrpc/{nsid}", handler)

    # ---- test set-up --------------------------------------------------------------------
    def profile(self, did: str, handle: str, display_name: str | None = None) -> dict:
        profile = {
            "did": did,
            "handle": handle,
            "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did}/bafkrei@jpeg",
            "associated": {"chat": {"allowIncoming": "following"}},
            "viewer": {"muted": False, "blockedBy": False},
            "labels": [],
            "createdAt": "2024-05-02T09:00:00.000Z",
            "indexedAt": "2024-05-02T09:00:00.000Z",
        }
        if display_name is not None:
            profile["displayName"] = display_name
        self.profiles[did] = profile
        return profile

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=37, milliseconds=211)
        return self.clock

    def add_post(self, author: dict, text: str, *, reply_to: dict | None = None, **extra) -> dict:
        """A post in the author's repository: {"uri", "cid", "value"}."""
        rkey = tid(next(self._rkeys))
        value: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": rfc3339(self.clock - timedelta(seconds=2)),
            "langs": ["en"],
            **extra,
        }
        if reply_to is not None:
            root = reply_to["value"].get("reply", {}).get("root") or {
                "uri": reply_to["uri"],
                "cid": reply_to["cid"],
            }
            value["reply"] = {
                "root": root,
                "parent": {"uri": reply_to["uri"], "cid": reply_to["cid"]},
            }
        uri = f"at://{author['did']}/app.bsky.feed.post/{rkey}"
        record = {"uri": uri, "cid": cid_of(value), "value": value}
        self.records[uri] = record
        return record

    def notify(self, author: dict, record: dict, reason: str, *, indexed_at: str = "") -> dict:
        notification = {
            "uri": record["uri"],
            "cid": record["cid"],
            "author": author,
            "reason": reason,
            "record": record["value"],
            "isRead": False,
            "indexedAt": indexed_at or rfc3339(self.tick()),
            "labels": [],
        }
        if reason in ("reply", "quote", "like"):
            notification["reasonSubject"] = f"at://{DID}/app.bsky.feed.post/3kbrandpost22"
        self.notifications.append(notification)
        return notification

    def mention(self, author: dict, text: str, reason: str = "mention", **kwargs) -> dict:
        record = self.add_post(author, text, **kwargs)
        return self.notify(author, record, reason)

    def expire_access_tokens(self) -> None:
        self.access = dict.fromkeys(self.access, False)

    def expire_refresh_tokens(self) -> None:
        self.refresh = dict.fromkeys(self.refresh, False)

    def fail_next(self, method: str, nsid: str, reply: Reply) -> None:
        self.faults.setdefault((method, f"/xrpc/{nsid}"), []).append(reply)

    def calls(self, method: str, nsid: str) -> list[Recorded]:
        return self.platform.requests_to(method, f"/xrpc/{nsid}")

    # ---- plumbing ---------------------------------------------------------------------
    def reply(self, status: int, value: Any) -> Reply:
        return Reply(
            status,
            value,
            headers={
                "ratelimit-limit": "3000",
                "ratelimit-remaining": "2987",
                "ratelimit-reset": str(int(time.time()) + 300),
                "ratelimit-policy": "3000;w=300",
            },
        )

    def error(self, status: int, error: str, message: str) -> Reply:
        return self.reply(status, {"error": error, "message": message})

    def _guard(self, request: Recorded, tokens: dict[str, bool] | None) -> Reply | None:
        faults = self.faults.get((request.method, request.path))
        if faults:
            return faults.pop(0)
        if tokens is None:
            return None
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in tokens:
            return self.error(401, "InvalidToken", "Token could not be verified")
        if not tokens[token]:
            return self.error(400, "ExpiredToken", "Token has expired")
        return None

    def _new_session(self) -> dict:
        number = next(self._tokens)
        access, refresh = jwt("com.atproto.access", number), jwt("com.atproto.refresh", number)
        self.access[access] = True
        self.refresh[refresh] = True
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": HANDLE,
            "did": DID,
            "email": "social@northwind.example",
            "emailConfirmed": True,
            "active": True,
        }

    # ---- endpoints --------------------------------------------------------------------
    def _create_session(self, request: Recorded) -> Reply:
        refusal = self._guard(request, None)
        if refusal is not None:
            return refusal
        body = request.json()
        if body.get("identifier") not in (HANDLE, DID) or body.get("password") != APP_PASSWORD:
            return self.error(401, "AuthenticationRequired", "Invalid identifier or password")
        return self.reply(200, self._new_session())

    def _refresh_session(self, request: Recorded) -> Reply:
        refusal = self._guard(request, self.refresh)
        if refusal is not None:
            return refusal
        token = request.headers["authorization"].removeprefix("Bearer ")
        del self.refresh[token]  # rotated: a refresh token is good once
        session = self._new_session()
        session.pop("email")
        session.pop("emailConfirmed")
        return self.reply(200, session)

    def _list_notifications(self, request: Recorded) -> Reply:
        refusal = self._guard(request, self.access)
        if refusal is not None:
            return refusal
        limit = min(int(request.arg("limit") or 50), 100)
        reasons = request.query.get("reasons") or []
        items = sorted(self.notifications, key=lambda n: (n["indexedAt"], n["uri"]), reverse=True)
        if reasons and self.honour_reasons:
            items = [n for n in items if n["reason"] in reasons]
        cursor = request.arg("cursor")
        if cursor:
            items = [n for n in items if n["indexedAt"] < cursor]
        page = items[:limit]
        body: dict[str, Any] = {"notifications": page, "priority": False}
        if page:
            body["cursor"] = page[-1]["indexedAt"]
        body["seenAt"] = "2026-11-20T14:00:00.000Z"
        return self.reply(200, body)

    def _create_record(self, request: Recorded) -> Reply:
        refusal = self._guard(request, self.access)
        if refusal is not None:
            return refusal
        body = request.json()
        if body.get("repo") not in (DID, HANDLE):
            return self.error(400, "InvalidRequest", "Invalid repo")
        rkey = body.get("rkey") or tid(next(self._rkeys))
        if not TID.match(rkey):
            return self.error(400, "InvalidRequest", "Invalid record key")
        record = body.get("record") or {}
        if len(record.get("text", "")) > 300:
            return self.error(
                400,
                "InvalidRequest",
                "Invalid app.bsky.feed.post record: Record/text must not be longer than "
                "300 graphemes",
            )
        uri = f"at://{DID}/{body.get('collection')}/{rkey}"
        if uri in self.records:
            return self.error(400, "InvalidRequest", f"Record already exists: {uri}")
        cid = cid_of(record)
        self.records[uri] = {"uri": uri, "cid": cid, "value": record}
        return self.reply(
            200,
            {
                "uri": uri,
                "cid": cid,
                "commit": {"cid": cid_of({"commit": uri}), "rev": "3lcxyzrev2222"},
                "validationStatus": "valid",
            },
        )

    def _get_record(self, request: Recorded) -> Reply:
        refusal = self._guard(request, self.access)
        if refusal is not None:
            return refusal
        uri = f"at://{request.arg('repo')}/{request.arg('collection')}/{request.arg('rkey')}"
        if uri not in self.records:
            return self.error(400, "RecordNotFound", f"Could not locate record: {uri}")
        return self.reply(200, self.records[uri])
