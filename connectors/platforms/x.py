"""X (Twitter): Account Activity API webhooks in, API v2 replies out.

Talks to the API with httpx, not an SDK: tweepy hard-codes its host, so it cannot be
pointed at a test server, and the few calls we make are plain JSON over HTTPS.

Inbound (AAA webhook, POSTed JSON signed with the app's consumer secret):
- CRC: `GET ?crc_token=` → `{"response_token": "sha256=<base64 HMAC-SHA256>"}`;
- signature: `x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(raw body)>`
  (and `x-twitter-webhooks-signature-oauth2`, keyed with the OAuth2 client secret);
  while a secret is rotated, the one it replaced (`previous_consumer_secret`,
  `previous_client_secret`) is accepted too, until `previous_secret_until`;
- `tweet_create_events`: v1.1 Tweet objects (mentions of, replies to and posts by the
  brand account; ours are marked `is_own`). Retweets carry no words of their own and
  are skipped. An edit arrives as a new post with a new id whose
  `edit_history.initial_tweet_id` names the original: it is passed on as a post with
  `extra["edit_of"]` set;
- `tweet_delete_events`: deletions (X only sends them for the brand's own posts).
Outbound: `POST /2/tweets {"text", "reply": {"in_reply_to_tweet_id"}}` with the
OAuth2 user-context token. X has no idempotency key and answers a repeat of recent
text with 403 "duplicate content": we then look for our reply in the brand's timeline.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from django.http import HttpRequest, HttpResponse, JsonResponse

from connectors.base import (
    PREVIOUS_SECRET_UNTIL,
    Connector,
    ConnectorError,
    DuplicatePost,
    EntryError,
    InboundEvent,
    PermanentError,
    PublishResult,
    ReplyTarget,
    SettingSpec,
    TransientError,
    signature_matches,
)
from connectors.platforms import _http

DEFAULT_BASE_URL = "https://api.x.com"
SIGNATURE_HEADER = "x-twitter-webhooks-signature"
OAUTH2_SIGNATURE_HEADER = "x-twitter-webhooks-signature-oauth2"
# Pages of the brand's timeline searched for an earlier reply (100 posts each).
FIND_PAGES = 3

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_LEADING_MENTIONS = re.compile(r"^(?:@\w+\s+)+")
_URL = re.compile(r"https?://\S+")


def signature(secret: str, message: bytes) -> str:
    """`sha256=<base64 HMAC-SHA256>`: the CRC answer and the delivery signature."""
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def parse_created_at(value: str) -> datetime:
    """`Fri Nov 20 15:02:41 +0000 2026` → aware datetime (no locale-dependent strptime)."""
    try:
        _weekday, month, day, clock, offset, year = value.split()
        return datetime.strptime(
            f"{year}-{_MONTHS[month]:02d}-{int(day):02d} {clock} {offset}",
            "%Y-%m-%d %H:%M:%S %z",
        )
    except (ValueError, KeyError, AttributeError):
        raise ValueError(f"not an X created_at: {value!r}") from None


def _unescape(text: str) -> str:
    """X escapes only &, < and > in tweet text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _comparable(text: str) -> str:
    """Text as X gives it back, reduced to what survives posting: X may escape & < >,
    prefix reply @mentions and wrap links in t.co."""
    text = unicodedata.normalize("NFC", _unescape(text)).strip()
    text = _LEADING_MENTIONS.sub("", text)
    text = _URL.sub("<link>", text)
    return " ".join(text.split())


class _DuplicateContent(PermanentError):
    pass


class XConnector(Connector):
    platform = "x"
    max_reply_chars = 280
    settings_spec = (
        SettingSpec(
            "consumer_secret",
            required=True,
            secret=True,
            help="OAuth 1.0a consumer (API) secret: keys the CRC and webhook signatures",
        ),
        SettingSpec(
            "client_secret",
            secret=True,
            help="OAuth 2.0 client secret: checks x-twitter-webhooks-signature-oauth2 if set",
        ),
        SettingSpec(
            "previous_consumer_secret",
            secret=True,
            help="the consumer secret a rotation replaced: still accepted on deliveries",
        ),
        SettingSpec(
            "previous_client_secret",
            secret=True,
            help="the client secret a rotation replaced: still accepted on deliveries",
        ),
        PREVIOUS_SECRET_UNTIL,
        SettingSpec(
            "user_id", required=True, help="the brand account's numeric id (id_str), as a string"
        ),
        SettingSpec("handle", help="the brand account's @handle, without the @ (reply links)"),
        SettingSpec(
            "access_token",
            secret=True,
            help="OAuth 2.0 user-context token with tweet.write (posting replies)",
        ),
        SettingSpec(
            "bearer_token",
            secret=True,
            help="app-only bearer token (reading the timeline); access_token if unset",
        ),
        SettingSpec("base_url", help=f"API host, default {DEFAULT_BASE_URL}"),
        SettingSpec("timeout", help="seconds to wait for X, default 10"),
    )
    kept_headers = ("content-type", SIGNATURE_HEADER, OAUTH2_SIGNATURE_HEADER)

    # ---- helpers ----------------------------------------------------------------------
    @property
    def user_id(self) -> str:
        return str(self.channel.setting("user_id") or "")

    def _url(self, path: str) -> str:
        return self.base_url(DEFAULT_BASE_URL) + path

    def _post_url(self, tweet_id: str, screen_name: str = "") -> str:
        screen_name = screen_name or self.channel.setting("handle").lstrip("@")
        if screen_name:
            return f"https://x.com/{screen_name}/status/{tweet_id}"
        return f"https://x.com/i/web/status/{tweet_id}"

    # ---- webhooks ---------------------------------------------------------------------
    def handshake(self, request: HttpRequest) -> HttpResponse | None:
        crc_token = request.GET.get("crc_token")
        if request.method != "GET" or not crc_token:
            return None
        secret = self.channel.setting("consumer_secret")
        if not secret:
            raise PermanentError("The X consumer_secret is not set: the CRC cannot be answered.")
        return JsonResponse({"response_token": signature(secret, crc_token.encode())})

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Either header, under its current secret or — during a rotation, until
        `previous_secret_until` — the one it replaced. (The CRC answers with the current
        consumer secret only: X checks it against the secret it now holds.)"""
        given = headers.get(SIGNATURE_HEADER, "")
        given_oauth2 = headers.get(OAUTH2_SIGNATURE_HEADER, "")
        checks = [
            (given, self.channel.setting("consumer_secret")),
            (given, self.previous_secret("previous_consumer_secret")),
            (given_oauth2, self.channel.setting("client_secret")),
            (given_oauth2, self.previous_secret("previous_client_secret")),
        ]
        return signature_matches(
            (value.encode("utf-8", "replace"), signature(key, body).encode())
            for value, key in checks
            if value and key
        )

    def accepts(self, body: bytes) -> bool:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return True  # let parse report it
        for_user_id = data.get("for_user_id") if isinstance(data, dict) else None
        return for_user_id is None or str(for_user_id) == self.user_id

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[InboundEvent]:
        self.entry_errors = []
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PermanentError(f"The X delivery is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PermanentError("The X delivery is not a JSON object.")
        for_user_id = data.get("for_user_id")
        if for_user_id is not None and str(for_user_id) != self.user_id:
            return []  # for another account subscribed to the same webhook
        events: list[InboundEvent] = []
        for key, reader in (
            ("tweet_create_events", self._tweet_event),
            ("tweet_delete_events", self._delete_event),
        ):
            items = data.get(key)
            if items is None:
                continue
            if not isinstance(items, list):
                raise PermanentError(f"'{key}' is not a list.")
            for index, item in enumerate(items):
                try:
                    event = reader(item)
                except (EntryError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    self.entry_errors.append(
                        exc
                        if isinstance(exc, EntryError)
                        else EntryError(f"{key}[{index}]: {exc!r}")
                    )
                    continue
                if event is not None:
                    events.append(event)
        return events

    def _tweet_event(self, tweet: dict[str, Any]) -> InboundEvent | None:
        if not isinstance(tweet, dict):
            raise EntryError(f"a tweet is not an object: {tweet!r}"[:300])
        tweet_id = tweet.get("id_str")
        user = tweet.get("user")
        if not tweet_id or not isinstance(user, dict) or not user.get("id_str"):
            raise EntryError(f"tweet {tweet_id or tweet.get('id')!r}: no id_str or user.id_str")
        if tweet.get("retweeted_status") is not None:
            return None  # a retweet: nobody wrote anything to answer
        try:
            posted_at = parse_created_at(tweet["created_at"])
        except (KeyError, ValueError) as exc:
            raise EntryError(f"tweet {tweet_id}: bad created_at ({exc})") from None
        extended = tweet.get("extended_tweet")
        if isinstance(extended, dict) and extended.get("full_text"):
            text = extended["full_text"]
        else:
            text = tweet.get("full_text") or tweet.get("text") or ""
        screen_name = user.get("screen_name") or ""
        extra: dict[str, Any] = {}
        history = tweet.get("edit_history")
        if isinstance(history, dict):
            original = str(history.get("initial_tweet_id") or "")
            if original and original != tweet_id:
                extra["edit_of"] = original
        return InboundEvent(
            kind="post",
            external_id=tweet_id,
            author={
                "external_id": user["id_str"],
                "handle": screen_name,
                "display_name": user.get("name") or "",
            },
            text=_unescape(text),
            url=self._post_url(tweet_id, screen_name),
            posted_at=posted_at,
            in_reply_to_external_id=tweet.get("in_reply_to_status_id_str") or "",
            raw=tweet,
            is_own=user["id_str"] == self.user_id,
            extra=extra,
        )

    def _delete_event(self, item: dict[str, Any]) -> InboundEvent:
        status = item["status"]
        tweet_id = str(status["id"])
        user_id = str(status.get("user_id") or "")
        extra: dict[str, Any] = {}
        if item.get("timestamp_ms"):
            extra["deleted_at"] = datetime.fromtimestamp(
                int(item["timestamp_ms"]) / 1000, tz=UTC
            ).isoformat()
        return InboundEvent(
            kind="delete",
            external_id=tweet_id,
            author={"external_id": user_id} if user_id else {},
            raw=item,
            is_own=user_id == self.user_id,
            extra=extra,
        )

    # ---- publishing -------------------------------------------------------------------
    def publish(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID
    ) -> PublishResult:
        token = self.channel.setting("access_token")
        if not token:
            raise PermanentError("The X access_token (OAuth 2.0 user context) is not set.")
        try:
            response = _http.send(
                "POST",
                self._url("/2/tweets"),
                platform="X",
                timeout=self._timeout(),
                headers={"Authorization": f"Bearer {token}"},
                json_body={"text": text, "reply": {"in_reply_to_tweet_id": target.external_id}},
                classify=self._classify,
            )
        except _DuplicateContent as duplicate:
            # Ours from an attempt we never heard back from, or another post's words:
            # the outbox tells them apart with find_own_reply (since the first attempt).
            raise DuplicatePost(duplicate.reason) from None
        body = _http.json_of(response, platform="X", ambiguous=True)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not data.get("id"):
            errors = _http.error_message(response)
            raise PermanentError(f"X did not post the reply: {errors}")
        return PublishResult(external_id=str(data["id"]), url=self._post_url(str(data["id"])))

    def find_own_reply(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID, since: datetime
    ) -> PublishResult | None:
        """Our reply to `target` with this text, posted at or after `since`, from the
        brand's recent posts.

        Only posts newer than the target can answer it (`since_id`); a few pages of
        the timeline are searched, for a post that replies to the target with our text
        (compared as X gives text back: unescaped, without reply @mentions, with links
        reduced, as X shortens them) and whose `created_at` is not before `since`.
        """
        token = self.channel.setting("bearer_token") or self.channel.setting("access_token")
        if not token:
            raise PermanentError("Neither the X bearer_token nor the access_token is set.")
        wanted = _comparable(text)
        params: dict[str, str] = {
            "since_id": target.external_id,
            "max_results": "100",
            "exclude": "retweets",
            "tweet.fields": "referenced_tweets,in_reply_to_user_id,conversation_id,created_at",
        }
        for _page in range(FIND_PAGES):
            response = _http.send(
                "GET",
                self._url(f"/2/users/{self.user_id}/tweets"),
                platform="X",
                timeout=self._timeout(),
                headers={"Authorization": f"Bearer {token}"},
                params=params,
                classify=self._classify,
            )
            body = _http.json_of(response, platform="X")
            for post in body.get("data") or []:
                replied_to = {
                    str(ref.get("id"))
                    for ref in post.get("referenced_tweets") or []
                    if ref.get("type") == "replied_to"
                }
                if (
                    target.external_id in replied_to
                    and _comparable(post.get("text", "")) == wanted
                    and _posted_since(post.get("created_at"), since)
                ):
                    return PublishResult(
                        external_id=str(post["id"]), url=self._post_url(str(post["id"]))
                    )
            next_token = (body.get("meta") or {}).get("next_token")
            if not next_token:
                return None
            params["pagination_token"] = next_token
        return None

    # ---- errors -----------------------------------------------------------------------
    def _classify(self, response: httpx.Response, ambiguous: bool) -> ConnectorError | None:
        status = response.status_code
        message = _http.error_message(response)
        if status == 429:
            return TransientError(
                f"X rate limit (429): {message}", retry_after=self._retry_after(response)
            )
        if status == 403 and _is_duplicate(response):
            return _DuplicateContent(f"X refused the reply as duplicate content: {message}")
        if status == 401:
            return PermanentError(f"X rejected the credentials (401): {message}")
        return None

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        """The latest reset among the exhausted windows (15-minute, 24-hour user and app
        caps); the 15-minute reset if none says it is exhausted."""
        waits = []
        for prefix in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"):
            if response.headers.get(f"{prefix}-remaining") == "0":
                wait = _http.retry_after_seconds(response, (f"{prefix}-reset",))
                if wait is not None:
                    waits.append(wait)
        if waits:
            return max(waits)
        return _http.retry_after_seconds(response, ("x-rate-limit-reset",))


def _posted_since(created_at: Any, since: datetime) -> bool:
    """Is an API v2 `created_at` (`2026-11-20T15:02:41.000Z`) at or after `since`? A post
    without a readable time cannot be shown to be this attempt's: no."""
    try:
        return datetime.fromisoformat(str(created_at).replace("Z", "+00:00")) >= since
    except (ValueError, TypeError):  # unreadable, or without a time zone
        return False


def _is_duplicate(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(body, dict):
        return False
    if "duplicate" in str(body.get("detail", "")).lower():
        return True
    return any(
        isinstance(error, dict)
        and (error.get("code") == 187 or "duplicate" in str(error.get("message", "")).lower())
        for error in body.get("errors") or []
    )
