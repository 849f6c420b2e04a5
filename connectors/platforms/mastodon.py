"""Mastodon: mentions polled from the notifications API, replies posted as statuses.

Uses Mastodon.py (pinned in pyproject.toml), the de-facto Python SDK. It passes what we
need of an SDK: it is pointed at any instance by `api_base_url` (so tests use a local fake
server), it raises a typed error per HTTP status carrying the platform's `error` text and
keeps `ratelimit_reset` (parsed from the ISO 8601 `X-RateLimit-Reset`, corrected for clock
skew with the `Date` header), it downloads nothing at run time (`version_check_mode` is
"none"), and it is light (requests, decorator, python-dateutil). It runs with
`ratelimit_method="throw"`, so it never sleeps in a worker: a 429 becomes a TransientError
with `retry_after`. A response hook on its requests session keeps the last response, so a
poll page is stored as the exact bytes the instance sent.

Inbound: `GET /api/v1/notifications?types[]=mention&types[]=update&min_id=<cursor>`.
`min_id` returns the notifications immediately newer than the cursor (newest first
within the page), so walking forward page by page leaves no gap; each page's cursor is
its newest notification id, and the walk is done when a page is not full. With no
cursor yet, the first poll takes the latest page only (the backlog before the channel
was connected is not fetched) and walks forward from there.
- `mention` notifications → posts. The status `content` is HTML, turned into plain text
  by `connectors.text.html_to_text`; a content warning (`spoiler_text`) is put before it.
- An edit has no signal of its own: a status edited before we fetch its notification
  simply carries `edited_at` and the new content. An `update` notification (sent for
  edited statuses the account reblogged) is passed on too, but only when that status
  mentions us. Both arrive as posts with the status id: the services treat a known id
  with new text as an edit. Deletions are not visible to polling.
- Our own statuses are marked `is_own` (the account id comes from the `account_id`
  setting, or once from `verify_credentials`, and is then saved in the settings).
Outbound: `POST /api/v1/statuses {status, in_reply_to_id, visibility}` with an
`Idempotency-Key` (Mastodon keeps it for an hour and answers a repeat with the first
status). The text starts with `@acct` of the customer (Mastodon does not add it, and
without it a direct reply would reach nobody), and the visibility is the original's:
a direct mention gets a direct answer, a private one a private answer, never more public.
`find_own_reply` looks for our status among the replies to the customer's post
(`/api/v1/statuses/:id/context`).
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import requests
from django.db import transaction
from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonRatelimitError,
    MastodonServerError,
)

from connectors.base import (
    Connector,
    EntryError,
    InboundEvent,
    PermanentError,
    PollPage,
    PublishResult,
    ReplyTarget,
    SettingSpec,
    TransientError,
)
from connectors.models import ChannelAccount
from connectors.platforms import _http
from connectors.text import html_to_text

USER_AGENT = "servicedesk (Mastodon.py)"
NOTIFICATION_TYPES = ("mention", "update")
# Visibility of our reply for each visibility of the customer's post: never more public.
REPLY_VISIBILITY = {
    "public": "public",
    "unlisted": "unlisted",
    "private": "private",
    "direct": "direct",
}
# Unknown visibility: the narrowest one that still reaches the customer.
FALLBACK_VISIBILITY = "direct"

_LEADING_MENTIONS = re.compile(r"^(?:@[\w.-]+(?:@[\w.-]+)?\s+)+")
_WHITESPACE = re.compile(r"\s+")

# How an instance counts a status against its limit (Mastodon's StatusLengthValidator):
# every link as URL_CHARS characters whatever its length, a remote mention by its
# `@user` part only (the domain is free), everything else in grapheme clusters.
URL_CHARS = 23
# Links as Mastodon finds them: with a scheme and a dotted host; punctuation at the end
# belongs to the sentence.
_URL = re.compile(r"https?://(?:[\w-]+\.)+[\w-]+(?::\d+)?(?:[/?#][^\s<>\"]*)?", re.IGNORECASE)
_URL_TRAILING = ".,:;!?'\")]}"
_REMOTE_MENTION = re.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)@[\w.-]+\w", re.IGNORECASE
)
_ZWJ = "\u200d"


def reply_visibility(original: str | None) -> str:
    return REPLY_VISIBILITY.get(original or "", FALLBACK_VISIBILITY)


def reply_text(text: str, acct: str) -> str:
    """`@acct text`, unless the text already starts with that mention."""
    acct = (acct or "").strip().lstrip("@")
    if not acct:
        return text
    mention = f"@{acct}"
    if re.match(rf"{re.escape(mention)}(?:\s|$)", text, re.IGNORECASE):
        return text
    return f"{mention} {text}"


def status_length(text: str) -> int:
    """The length of a status as the instance counts it against its limit."""

    def link(match: re.Match) -> str:
        url = match.group(0)
        kept = url.rstrip(_URL_TRAILING)
        if url.endswith(")") and kept.count("(") > kept.count(")"):
            kept += ")"  # a link ending in a balanced parenthesis keeps it
        return "x" * URL_CHARS + url[len(kept) :]

    counted = _REMOTE_MENTION.sub(r"@\1", _URL.sub(link, text))
    return _graphemes(counted)


def _graphemes(text: str) -> int:
    """User-perceived characters, close to Unicode's grapheme clusters: marks, variation
    selectors, skin tones and emoji tags belong to the character before them, a ZWJ
    joins two, a pair of regional indicators is one flag. Where it errs, it counts more
    than the instance does, never fewer."""
    count = 0
    joined = False
    flags = 0
    for char in text:
        code = ord(char)
        if joined:
            joined = False
            continue
        if char == _ZWJ:
            joined = True
            continue
        if (
            unicodedata.category(char) in ("Mn", "Me", "Mc")
            or 0xFE00 <= code <= 0xFE0F
            or 0x1F3FB <= code <= 0x1F3FF
            or 0xE0020 <= code <= 0xE007F
            or 0xE0100 <= code <= 0xE01EF
        ):
            continue
        if 0x1F1E6 <= code <= 0x1F1FF:
            flags += 1
            if flags % 2 == 0:
                continue
        else:
            flags = 0
        count += 1
    return count


def comparable(text: str) -> str:
    """Text as compared with a status on the platform: Mastodon shows a remote mention as
    `@user` (not `@user@domain`) and re-flows whitespace, so both are set aside."""
    text = unicodedata.normalize("NFC", text).strip()
    text = _LEADING_MENTIONS.sub("", text)
    return _WHITESPACE.sub(" ", text).strip()


def parse_time(value: str | None) -> datetime | None:
    """Mastodon's `2026-11-20T15:02:41.000Z` → aware datetime."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return moment


def _id_order(value: str) -> tuple[int, str]:
    """Mastodon ids are decimal strings of growing length: order by length, then text."""
    return (len(value), value)


class MastodonConnector(Connector):
    platform = "mastodon"
    polls = True
    max_reply_chars = 500
    kept_headers = (
        "content-type",
        "link",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    )
    settings_spec = (
        SettingSpec("base_url", required=True, help="the instance, e.g. https://mastodon.social"),
        SettingSpec(
            "access_token",
            required=True,
            secret=True,
            help="user token with read:notifications, read:statuses, write:statuses",
        ),
        SettingSpec("account_id", help="the brand account's id (looked up when absent)"),
        SettingSpec("handle", help="the brand account's acct, e.g. northwind"),
        SettingSpec("poll_interval", help="seconds between polls, default 60"),
        SettingSpec(
            "max_characters",
            help="the instance's status limit (configuration.statuses.max_characters "
            "in /api/v2/instance), default 500",
        ),
        SettingSpec("timeout", help="seconds to wait for the instance, default 10"),
    )
    # Notifications per page (Mastodon allows up to 80 since 4.1; 40 is its default).
    page_size = 40

    def __init__(self, channel: ChannelAccount):
        super().__init__(channel)
        self._client: Mastodon | None = None
        self._last_response: requests.Response | None = None
        self._own_id: str | None = None

    # ---- the SDK ------------------------------------------------------------------------
    def _api(self) -> Mastodon:
        if self._client is None:
            base_url = self.base_url("")
            token = self.channel.setting("access_token")
            if not base_url or not token:
                raise PermanentError("The Mastodon account needs base_url and access_token.")
            session = requests.Session()
            session.hooks["response"].append(self._keep_response)
            self._client = Mastodon(
                access_token=token,
                api_base_url=base_url,
                ratelimit_method="throw",
                request_timeout=self._timeout(),
                session=session,
                version_check_mode="none",
                user_agent=USER_AGENT,
            )
        return self._client

    def _keep_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_response = response

    def _call(self, action: str, call: Callable[[Mastodon], Any], *, write: bool = False) -> Any:
        """Run one SDK call; its failure as the connector error the callers understand.
        `write`: the call changes something, so a lost answer leaves it ambiguous."""
        api = self._api()
        self._last_response = None
        try:
            return call(api)
        except MastodonRatelimitError as exc:
            _, message = self._failure(exc)
            raise TransientError(
                f"Mastodon rate limit reached ({action}): {message}",
                retry_after=self._retry_after(),
            ) from None
        except MastodonNetworkError as exc:
            raise TransientError(
                f"Mastodon did not answer ({action}): {_cause(exc)}",
                ambiguous=write and not _never_sent(exc),
            ) from None
        except MastodonServerError as exc:
            status, message = self._failure(exc)
            raise TransientError(
                f"Mastodon server error ({action}, HTTP {status}): {message}",
                retry_after=self._retry_after_header(),
                ambiguous=write,
            ) from None
        except MastodonAPIError as exc:
            status, message = self._failure(exc)
            if status == 408:
                raise TransientError(
                    f"Mastodon timed out ({action}): {message}", ambiguous=write
                ) from None
            raise PermanentError(f"Mastodon refused {action} (HTTP {status}): {message}") from None
        except MastodonError as exc:
            raise PermanentError(f"Mastodon {action} failed: {exc}") from None

    def _failure(self, exc: MastodonError) -> tuple[int | str, str]:
        """(HTTP status, the instance's own words) for a failed call: read from the
        response itself (`{"error": ..., "error_description": ...}`), else from the SDK."""
        response = self._last_response
        if response is not None and not response.ok:
            message = ""
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                message = body["error"]
                if body.get("error_description"):
                    message = f"{message}: {body['error_description']}"
            return response.status_code, (message or response.reason or "no details")[:500]
        args = exc.args
        if len(args) >= 4:
            return args[1], str(args[3] or args[2] or args[0])
        return "?", " ".join(str(arg) for arg in args)

    def _retry_after(self) -> float | None:
        """After a 429: until the rate-limit window resets (Mastodon.py reads the ISO 8601
        `X-RateLimit-Reset` and corrects it for clock skew), else Retry-After."""
        reset = self._client.ratelimit_reset if self._client is not None else None
        if reset:
            return max(reset - time.time(), 0.0)
        return self._retry_after_header()

    def _retry_after_header(self) -> float | None:
        """A `Retry-After` the instance (or its proxy) sent, if any."""
        if self._last_response is None:
            return None
        # requests and httpx responses both offer a case-insensitive `.headers.get`.
        return _http.retry_after_seconds(self._last_response, reset_headers=())

    def _last_json(self) -> Any:
        response = self._last_response
        if response is None:
            raise TransientError("Mastodon gave no answer to read.")
        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise TransientError(
                f"Mastodon's answer ({response.status_code}) is not JSON."
            ) from None

    def _kept(self, response: requests.Response | None) -> dict[str, str]:
        if response is None:
            return {}
        return {
            name: response.headers[name] for name in self.kept_headers if name in response.headers
        }

    # ---- who we are -------------------------------------------------------------------
    def own_account_id(self) -> str:
        """The brand account's id: the setting, else asked once and saved."""
        if self._own_id is None:
            own = str(self.channel.setting("account_id") or "")
            if not own:
                self._call("verify_credentials", lambda api: api.account_verify_credentials())
                account = self._last_json()
                own = str(account["id"])
                self._save_own(own, str(account.get("acct") or ""))
            self._own_id = own
        return self._own_id

    def _save_own(self, account_id: str, acct: str) -> None:
        def merged(settings: dict) -> dict:
            return {
                **settings,
                "account_id": account_id,
                "handle": settings.get("handle") or acct,
            }

        self.channel.settings = merged(self.channel.settings)
        if self.channel.pk is None:
            return
        with transaction.atomic():
            row = ChannelAccount.objects.select_for_update().filter(pk=self.channel.pk).first()
            if row is not None:
                row.settings = merged(row.settings)
                row.save(update_fields=["settings"])

    # ---- polling ----------------------------------------------------------------------
    def poll(self, cursor: str) -> PollPage:
        params: dict[str, Any] = {"types": list(NOTIFICATION_TYPES), "limit": self.page_size}
        if cursor:
            params["min_id"] = cursor
        self._call("poll", lambda api: api.notifications(**params))
        response = self._last_response
        if response is None:
            raise TransientError("Mastodon gave no answer to read.")
        body = response.content
        headers = self._kept(response)
        events = self.parse(body, headers)
        items = json.loads(body) if body.strip() else []
        ids = [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]
        newest = max(ids, key=_id_order, default=None)
        if newest is not None and cursor and _id_order(newest) <= _id_order(cursor):
            newest = None  # never move the cursor back
        return PollPage(
            events=events,
            next_cursor=newest,
            # Without a cursor the latest page was fetched: nothing newer exists.
            done=not cursor or len(items) < self.page_size,
            raw_body=body,
            headers=headers,
        )

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[InboundEvent]:
        """A notifications page (a JSON array) → posts, oldest first."""
        self.entry_errors = []
        if not body.strip():
            return []
        try:
            items = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PermanentError(f"The notifications page is not JSON: {exc}") from None
        if not isinstance(items, list):
            raise PermanentError("The notifications page is not a JSON array.")
        ordered = sorted(
            (item for item in items if isinstance(item, dict)),
            key=lambda item: _id_order(str(item.get("id", ""))),
        )
        events = []
        for item in ordered:
            try:
                event = self._event(item)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self.entry_errors.append(
                    EntryError(f"notification {item.get('id', '?')}: {type(exc).__name__}: {exc}")
                )
                continue
            if event is not None:
                events.append(event)
        return events

    def _event(self, notification: dict) -> InboundEvent | None:
        kind = notification.get("type")
        status = notification.get("status")
        if kind not in NOTIFICATION_TYPES or not isinstance(status, dict):
            return None
        own = self.own_account_id()
        if kind == "update" and not any(
            str(mention.get("id")) == own for mention in status.get("mentions") or ()
        ):
            return None  # an edit of a post we reblogged that does not mention us
        account = status["account"]
        text = html_to_text(status.get("content") or "")
        spoiler = (status.get("spoiler_text") or "").strip()
        if spoiler:
            text = f"{unicodedata.normalize('NFC', spoiler)}\n\n{text}".strip()
        extra: dict[str, Any] = {
            "visibility": status.get("visibility") or "",
            "acct": account["acct"],
        }
        if status.get("edited_at"):
            extra["edited_at"] = status["edited_at"]
        return InboundEvent(
            kind="post",
            external_id=str(status["id"]),
            author={
                "external_id": str(account["id"]),
                "handle": account["acct"],
                "display_name": account.get("display_name") or account.get("username") or "",
            },
            text=text,
            url=status.get("url") or status.get("uri") or "",
            posted_at=parse_time(status.get("created_at")),
            in_reply_to_external_id=str(status.get("in_reply_to_id") or ""),
            raw=notification,
            is_own=str(account["id"]) == own,
            extra=extra,
        )

    # ---- publishing -------------------------------------------------------------------
    def _text_for(self, text: str, target: ReplyTarget) -> str:
        return reply_text(text, target.extra.get("acct") or target.author_handle)

    def _result(self, status: dict) -> PublishResult:
        return PublishResult(
            external_id=str(status["id"]), url=status.get("url") or status.get("uri") or ""
        )

    def max_characters(self) -> int:
        try:
            return int(self.channel.setting("max_characters") or self.max_reply_chars)
        except ValueError:
            raise PermanentError("The Mastodon max_characters setting is not a number.") from None

    def publish(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID
    ) -> PublishResult:
        body = self._text_for(text, target)
        # Checked here, with the @mention we add, rather than left to the instance: its
        # 422 would come after a network round trip, and say less.
        length, limit = status_length(body), self.max_characters()
        if length > limit:
            added = status_length(body) - status_length(text)
            raise PermanentError(
                f"The reply is {length} characters as Mastodon counts them (links count "
                f"{URL_CHARS}), {added} of them for the mention it must start with; the "
                f"instance takes at most {limit}. Shorten it by {length - limit}.",
                code="text_too_long",
            )
        visibility = reply_visibility(target.extra.get("visibility"))
        self._call(
            "publish",
            lambda api: api.status_post(
                body,
                in_reply_to_id=target.external_id,
                visibility=visibility,
                idempotency_key=str(idempotency_key),
            ),
            write=True,
        )
        return self._result(self._last_json())

    def find_own_reply(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID, since: datetime
    ) -> PublishResult | None:
        """Our status answering the target with this text, created since `since` (the
        Idempotency-Key is only kept an hour, so a retry after that relies on this)."""
        own = self.own_account_id()
        wanted = comparable(self._text_for(text, target))
        self._call("find_own_reply", lambda api: api.status_context(target.external_id))
        context = self._last_json()
        for status in context.get("descendants") or ():
            if (
                str(status.get("account", {}).get("id")) == own
                and str(status.get("in_reply_to_id")) == target.external_id
                and comparable(html_to_text(status.get("content") or "")) == wanted
                and _created_since(status.get("created_at"), since)
            ):
                return self._result(status)
        return None


def _created_since(value: Any, since: datetime) -> bool:
    try:
        created = parse_time(value)
    except (ValueError, TypeError):
        return False
    return created is not None and created >= since


def _cause(exc: Exception) -> str:
    cause = exc.__context__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)


def _never_sent(exc: MastodonNetworkError) -> bool:
    """The request failed before it reached the instance (no connection was made)."""
    cause = exc.__context__
    return isinstance(cause, requests.exceptions.ConnectTimeout) or (
        isinstance(cause, requests.exceptions.ConnectionError)
        and "NewConnectionError" in repr(cause)
    )
