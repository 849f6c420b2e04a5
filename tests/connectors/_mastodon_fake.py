"""A fake Mastodon instance on the shared FakePlatform (a real HTTP server on 127.0.0.1).

It speaks Mastodon's wire format as the connector meets it: JSON arrays of notifications
newest first with string ids, `min_id` / `since_id` / `max_id` paging with a `Link`
header, statuses whose `content` is sanitised HTML (`<p>`, `<br />`, h-card mentions,
entities) inside JSON escaped the Rails way (`\\u003c`), `X-RateLimit-*` headers with an
ISO 8601 reset, `{"error": "..."}` bodies, a Bearer token it checks, and `Idempotency-Key`
on POST /api/v1/statuses.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tests.connectors.fakes import FakePlatform, Recorded, Reply

TOKEN = "masto-token-4f1c"
DOMAIN = "bank.social"
RATE_LIMIT_RESET = "2026-11-20T16:15:00.000000Z"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def rails_json(value: Any) -> bytes:
    """JSON as Rails writes it: <, > and & escaped inside strings."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def mention_html(acct: str) -> str:
    username, _, domain = acct.partition("@")
    href = f"https://{domain or DOMAIN}/@{username}"
    return (
        f'<span class="h-card" translate="no"><a href="{href}" class="u-url mention">'
        f"@<span>{html.escape(username)}</span></a></span>"
    )


def render(text: str) -> str:
    """Plain text → Mastodon's HTML: paragraphs, <br />, mentions as h-card links."""
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        escaped = html.escape(paragraph, quote=True).replace("&#x27;", "&#39;")
        escaped = re.sub(
            r"@([\w.-]+(?:@[\w.-]+)?)", lambda m: mention_html(m.group(1)), escaped
        ).replace("\n", "<br />")
        paragraphs.append(f"<p>{escaped}</p>")
    return "".join(paragraphs)


class FakeMastodon:
    def __init__(self, platform: FakePlatform):
        self.platform = platform
        self.url = platform.url
        self.accounts: dict[str, dict] = {}
        self.statuses: dict[str, dict] = {}
        self.notifications: list[dict] = []
        self.idempotency: dict[str, str] = {}
        self.faults: dict[tuple[str, str], list[Reply]] = {}
        self._status_ids = itertools.count(113_500_000_000_000_001)
        self._notification_ids = itertools.count(1001)
        self.clock = datetime(2026, 11, 20, 15, 0, 0, tzinfo=UTC)
        self.brand = self.add_account("109000000000000001", "northwind", "Northwind Bank")
        platform.route("GET", "/api/v1/notifications", self._notifications)
        platform.route("POST", "/api/v1/statuses", self._post_status)
        platform.route("GET", "/api/v1/accounts/verify_credentials", self._verify_credentials)

    # ---- test set-up --------------------------------------------------------------------
    def add_account(self, account_id: str, acct: str, display_name: str) -> dict:
        username, _, domain = acct.partition("@")
        account = {
            "id": account_id,
            "username": username,
            "acct": acct,
            "display_name": display_name,
            "locked": False,
            "bot": False,
            "created_at": "2025-03-01T00:00:00.000Z",
            "note": "",
            "url": f"https://{domain or DOMAIN}/@{username}",
            "uri": f"https://{domain or DOMAIN}/users/{username}",
            "avatar": f"https://{DOMAIN}/avatars/original/missing.png",
            "followers_count": 3,
            "following_count": 5,
            "statuses_count": 12,
            "last_status_at": "2026-11-20",
            "emojis": [],
            "fields": [],
        }
        self.accounts[account_id] = account
        return account

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=41, milliseconds=7)
        return self.clock

    def add_status(
        self,
        account: dict,
        content: str,
        *,
        visibility: str = "public",
        in_reply_to_id: str | None = None,
        mentions: list[dict] | None = None,
        spoiler_text: str = "",
    ) -> dict:
        status_id = str(next(self._status_ids))
        username = account["username"]
        status = {
            "id": status_id,
            "created_at": iso(self.tick()),
            "in_reply_to_id": in_reply_to_id,
            "in_reply_to_account_id": (
                self.statuses[in_reply_to_id]["account_id"] if in_reply_to_id else None
            ),
            "sensitive": bool(spoiler_text),
            "spoiler_text": spoiler_text,
            "visibility": visibility,
            "language": "en",
            "uri": f"https://{DOMAIN}/users/{username}/statuses/{status_id}",
            "url": f"https://{DOMAIN}/@{account['acct']}/{status_id}",
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "edited_at": None,
            "content": content,
            "reblog": None,
            "account_id": account["id"],
            "media_attachments": [],
            "mention_ids": [m["id"] for m in (self._default(mentions))],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }
        self.statuses[status_id] = status
        self.platform.route("GET", f"/api/v1/statuses/{status_id}/context", self._context)
        return status

    def _default(self, mentions: list[dict] | None) -> list[dict]:
        return [self.brand] if mentions is None else mentions

    def notify(self, notification_type: str, status: dict | None, account: dict) -> str:
        notification_id = str(next(self._notification_ids))
        self.notifications.append(
            {
                "id": notification_id,
                "type": notification_type,
                "created_at": iso(self.tick()),
                "account_id": account["id"],
                "status_id": status["id"] if status else None,
            }
        )
        return notification_id

    def mention(self, account: dict, content: str, **kwargs: Any) -> tuple[str, dict]:
        """A customer's status mentioning the brand, and its notification: (notif id, status)."""
        status = self.add_status(account, content, **kwargs)
        return self.notify("mention", status, account), status

    def edit(self, status: dict, content: str) -> None:
        status["content"] = content
        status["edited_at"] = iso(self.tick())

    def fail_next(self, method: str, path: str, reply: Reply) -> None:
        """The next request to (method, path) gets `reply` instead of the normal answer."""
        self.faults.setdefault((method, path), []).append(reply)

    # ---- rendering --------------------------------------------------------------------
    def status_json(self, status: dict) -> dict:
        data = {k: v for k, v in status.items() if k not in ("account_id", "mention_ids")}
        data["account"] = self.accounts[status["account_id"]]
        data["mentions"] = [
            {
                "id": self.accounts[m]["id"],
                "username": self.accounts[m]["username"],
                "url": self.accounts[m]["url"],
                "acct": self.accounts[m]["acct"],
            }
            for m in status["mention_ids"]
        ]
        return data

    def notification_json(self, notification: dict) -> dict:
        status = self.statuses.get(notification["status_id"] or "")
        return {
            "id": notification["id"],
            "type": notification["type"],
            "created_at": notification["created_at"],
            "group_key": f"ungrouped-{notification['id']}",
            "account": self.accounts[notification["account_id"]],
            "status": self.status_json(status) if status else None,
        }

    def _reply(self, status: int, value: Any, headers: dict[str, str] | None = None) -> Reply:
        return Reply(
            status,
            body=rails_json(value),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "297",
                "X-RateLimit-Reset": RATE_LIMIT_RESET,
                **(headers or {}),
            },
        )

    def _guard(self, request: Recorded) -> Reply | None:
        faults = self.faults.get((request.method, request.path))
        if faults:
            return faults.pop(0)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return self._reply(401, {"error": "The access token is invalid"})
        return None

    # ---- endpoints --------------------------------------------------------------------
    def _notifications(self, request: Recorded) -> Reply:
        refusal = self._guard(request)
        if refusal is not None:
            return refusal
        types = request.query.get("types[]") or []
        limit = min(int(request.arg("limit") or 40), 80)
        key = int
        items = [n for n in self.notifications if not types or n["type"] in types]
        items.sort(key=lambda n: key(n["id"]))
        min_id, since_id, max_id = (request.arg(n) for n in ("min_id", "since_id", "max_id"))
        if max_id:
            items = [n for n in items if key(n["id"]) < key(max_id)]
        if min_id:
            # The `limit` notifications immediately newer than min_id (returned newest first).
            page = [n for n in items if key(n["id"]) > key(min_id)][:limit]
        else:
            if since_id:
                items = [n for n in items if key(n["id"]) > key(since_id)]
            page = items[-limit:]
        page = list(reversed(page))
        headers = {}
        if page:
            keep = [("types[]", t) for t in types] + [("limit", str(limit))]
            newest, oldest = page[0]["id"], page[-1]["id"]
            base = f"https://{DOMAIN}/api/v1/notifications?"
            headers["Link"] = (
                f'<{base}{urlencode([*keep, ("max_id", oldest)])}>; rel="next", '
                f'<{base}{urlencode([*keep, ("min_id", newest)])}>; rel="prev"'
            )
        return self._reply(200, [self.notification_json(n) for n in page], headers)

    def _post_status(self, request: Recorded) -> Reply:
        refusal = self._guard(request)
        if refusal is not None:
            return refusal
        if request.headers.get("content-type", "").startswith("application/json"):
            fields = {k: str(v) for k, v in request.json().items() if v is not None}
        else:
            fields = request.form()
        key = request.headers.get("idempotency-key")
        if key and key in self.idempotency:
            return self._reply(200, self.status_json(self.statuses[self.idempotency[key]]))
        text = fields.get("status", "")
        # Mastodon counts every link as 23 characters and a remote mention as its local
        # part only.
        counted = re.sub(r"https?://\S+?(?=[.,!?]?(?:\s|$))", "x" * 23, text)
        counted = re.sub(r"(@[\w.-]+)@[\w.-]+", r"\1", counted)
        if not text.strip():
            return self._reply(422, {"error": "Validation failed: Text can't be blank"})
        if len(counted) > 500:
            return self._reply(
                422, {"error": "Validation failed: Text character limit of 500 exceeded"}
            )
        parent = fields.get("in_reply_to_id")
        if parent and parent not in self.statuses:
            return self._reply(404, {"error": "Record not found"})
        mentioned = [
            a for a in self.accounts.values() if re.search(rf"@{re.escape(a['acct'])}\b", text)
        ]
        status = self.add_status(
            self.brand,
            render(text),
            visibility=fields.get("visibility", "public"),
            in_reply_to_id=parent,
            mentions=mentioned,
        )
        if key:
            self.idempotency[key] = status["id"]
        return self._reply(200, self.status_json(status))

    def _context(self, request: Recorded) -> Reply:
        refusal = self._guard(request)
        if refusal is not None:
            return refusal
        status_id = request.path.split("/")[4]
        if status_id not in self.statuses:
            return self._reply(404, {"error": "Record not found"})
        descendants, frontier = [], {status_id}
        for candidate in sorted(self.statuses.values(), key=lambda s: int(s["id"])):
            if candidate["in_reply_to_id"] in frontier:
                descendants.append(candidate)
                frontier.add(candidate["id"])
        ancestors = []
        parent = self.statuses[status_id]["in_reply_to_id"]
        while parent:
            ancestors.insert(0, self.statuses[parent])
            parent = self.statuses[parent]["in_reply_to_id"]
        return self._reply(
            200,
            {
                "ancestors": [self.status_json(s) for s in ancestors],
                "descendants": [self.status_json(s) for s in descendants],
            },
        )

    def _verify_credentials(self, request: Recorded) -> Reply:
        refusal = self._guard(request)
        if refusal is not None:
            return refusal
        return self._reply(
            200, {**self.brand, "source": {"privacy": "public", "note": "", "fields": []}}
        )

    def delete(self, status: dict) -> None:
        del self.statuses[status["id"]]
