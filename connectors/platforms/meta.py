"""Meta: Facebook Page `feed` and Instagram `comments` / `mentions`, over the Graph API.

Talks to the Graph API with httpx: Meta has no maintained official Python Graph SDK
for this (facebook-sdk is unmaintained; the official business SDK covers the
Marketing API), and the few calls we make are plain HTTPS.

Inbound (webhooks, shared by both): the verification GET (`hub.mode=subscribe`,
`hub.verify_token`, answered with the bare `hub.challenge`) and POSTs signed
`x-hub-signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>` (while the app
secret is rotated, `previous_app_secret` too, until `previous_secret_until`). A delivery
batches `entry[]` items, each with `changes[]`; one bad change is an entry error and
the others still count. Entries for another Page / IG account are skipped.

- Facebook `feed`: comments and Page-feed posts; `verb` add → post, edited → post
  with the same id (an edit), remove → delete. Reactions and likes are ignored. The
  Page's own comments come back marked `is_own`.
- Instagram `comments` / `live_comments`: no timestamp on the comment, so the entry's
  `time` is used. `mentions` carry only ids: the text is fetched from the Graph API
  (`mentioned_comment`), so parsing them needs the access token and the network.
  Instagram sends no edit or delete webhooks.

Outbound: Facebook `POST /{comment-or-post-id}/comments`; Instagram
`POST /{ig-comment-id}/replies` (or `POST /{ig-user-id}/mentions` for a comment that
mentions us on someone else's media). Parameters go in the form body, with the
token as `access_token`, never in the URL. No idempotency key exists: before a retry
the outbox looks for our reply among the comment's replies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from django.http import HttpRequest, HttpResponse

from connectors.base import (
    PREVIOUS_SECRET_UNTIL,
    Connector,
    ConnectorError,
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

DEFAULT_BASE_URL = "https://graph.facebook.com"
# The Graph API version called unless an account pins another with `api_version`: v26.0
# (released 2026-07-29), the latest in Meta's Graph API changelog when it was chosen.
# Meta retires a version about two years after its successor ships (v21.0, the earlier
# default, is available until 2027-01-21). Before moving the default, read the changelog
# for the edges and fields used here: comments, replies, mentions, mentioned_comment.
DEFAULT_API_VERSION = "v26.0"
SIGNATURE_HEADER = "x-hub-signature-256"
LEGACY_SIGNATURE_HEADER = "x-hub-signature"
# Graph API error codes meaning "slow down": app, user, page, per-call and BUC limits.
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80001, 80002})
# Pages of comments searched for an earlier reply.
FIND_PAGES = 3

# What a mention webhook leaves out: the comment's text, author and time.
MENTION_FIELDS = "mentioned_comment.comment_id({comment_id}){{text,username,timestamp}}"
FB_POST_ITEMS = frozenset({"status", "post", "photo", "video", "share"})


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _seconds(value: Any) -> datetime:
    """Graph timestamps: integer Unix seconds (webhooks) or `2026-11-20T15:02:41+0000`."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value), tz=UTC)
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z")


def _made_since(value: Any, since: datetime) -> bool:
    try:
        return _seconds(value) >= since
    except (ValueError, TypeError):
        return False


def _same_text(ours: str, theirs: str) -> bool:
    def norm(text: str) -> str:
        return " ".join(unicodedata.normalize("NFC", text).split())

    return norm(ours) == norm(theirs)


class _MetaConnector(Connector):
    """What Facebook and Instagram share: webhooks, Graph errors, settings."""

    object_name: ClassVar[str]  # the webhook envelope's "object"
    platform_label: ClassVar[str]
    common_settings: ClassVar[tuple[SettingSpec, ...]] = (
        SettingSpec(
            "app_secret", required=True, secret=True, help="the Meta app secret (signatures)"
        ),
        SettingSpec(
            "verify_token",
            required=True,
            secret=True,
            help="the token typed into the app's webhook set-up (verification GET)",
        ),
        SettingSpec(
            "previous_app_secret",
            secret=True,
            help="the app secret a rotation replaced: still accepted on deliveries",
        ),
        PREVIOUS_SECRET_UNTIL,
        SettingSpec("base_url", help=f"Graph API host, default {DEFAULT_BASE_URL}"),
        SettingSpec("api_version", help=f"Graph API version, default {DEFAULT_API_VERSION}"),
        SettingSpec("timeout", help="seconds to wait for the Graph API, default 10"),
    )
    kept_headers = ("content-type", SIGNATURE_HEADER, LEGACY_SIGNATURE_HEADER)

    # ---- helpers ----------------------------------------------------------------------
    @property
    def account_id(self) -> str:
        raise NotImplementedError

    def _token(self) -> str:
        raise NotImplementedError

    def _url(self, path: str) -> str:
        version = self.channel.setting("api_version") or DEFAULT_API_VERSION
        return f"{self.base_url(DEFAULT_BASE_URL)}/{version}/{path}"

    def _graph(
        self, method: str, path: str, *, params: dict[str, str] | None = None, data=None
    ) -> Any:
        token = self._token()
        if not token:
            raise PermanentError(f"The {self.platform_label} access token is not set.")
        if method == "GET":
            params = {**(params or {}), "access_token": token}
        else:
            data = {**(data or {}), "access_token": token}
        response = _http.send(
            method,
            self._url(path),
            platform=self.platform_label,
            timeout=self._timeout(),
            params=params,
            data=data,
            classify=self._classify,
        )
        return _http.json_of(response, platform=self.platform_label, ambiguous=method != "GET")

    # ---- webhooks ---------------------------------------------------------------------
    def handshake(self, request: HttpRequest) -> HttpResponse | None:
        mode = request.GET.get("hub.mode")
        if request.method != "GET" or mode is None:
            return None
        expected = self.channel.setting("verify_token")
        given = request.GET.get("hub.verify_token", "")
        token_ok = bool(expected) and hmac.compare_digest(
            given.encode("utf-8", "replace"), expected.encode()
        )
        if mode != "subscribe" or not token_ok:
            return HttpResponse("Verification failed.", status=403, content_type="text/plain")
        return HttpResponse(
            request.GET.get("hub.challenge", ""), status=200, content_type="text/plain"
        )

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Signed with the app secret or — while it is rotated, until
        `previous_secret_until` — the one it replaced."""
        given = headers.get(SIGNATURE_HEADER, "").strip().lower().encode("utf-8", "replace")
        secrets = [
            self.channel.setting("app_secret"),
            self.previous_secret("previous_app_secret"),
        ]
        if not given:
            return False
        return signature_matches(
            (given, signature(secret, body).encode()) for secret in secrets if secret
        )

    def accepts(self, body: bytes) -> bool:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return True  # let parse report it
        if not isinstance(data, dict) or data.get("object") != self.object_name:
            return False
        entries = data.get("entry") if isinstance(data.get("entry"), list) else []
        return any(
            isinstance(entry, dict) and str(entry.get("id")) == self.account_id for entry in entries
        )

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[InboundEvent]:
        self.entry_errors = []
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PermanentError(f"The {self.platform_label} delivery is not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("entry"), list):
            raise PermanentError(f"The {self.platform_label} delivery has no 'entry' list.")
        if data.get("object") != self.object_name:
            raise PermanentError(
                f"The delivery is for object {data.get('object')!r}, "
                f"not {self.object_name!r}: wrong channel."
            )
        events: list[InboundEvent] = []
        for index, entry in enumerate(data["entry"]):
            if not isinstance(entry, dict) or "id" not in entry:
                self.entry_errors.append(EntryError(f"entry[{index}] is not an entry object"))
                continue
            if str(entry["id"]) != self.account_id:
                continue  # another Page / account subscribed to the same app
            changes = entry.get("changes")
            if changes is None and "field" in entry:
                # The "Business Login for Instagram" docs show field/value right on entry.
                changes = [{"field": entry["field"], "value": entry.get("value")}]
            if not isinstance(changes, list):
                self.entry_errors.append(EntryError(f"entry[{index}] has no 'changes' list"))
                continue
            for position, change in enumerate(changes):
                where = f"entry[{index}].changes[{position}]"
                try:
                    if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                        raise EntryError("not a {field, value} object")
                    event = self._change_event(entry, change["field"], change["value"])
                except (EntryError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    reason = exc.reason if isinstance(exc, EntryError) else repr(exc)
                    self.entry_errors.append(EntryError(f"{where}: {reason}"))
                    continue
                if event is not None:
                    events.append(event)
        return events

    def _change_event(
        self, entry: dict[str, Any], field: str, value: dict[str, Any]
    ) -> InboundEvent | None:
        raise NotImplementedError

    @staticmethod
    def _raw(entry: dict[str, Any], field: str, value: dict[str, Any]) -> dict[str, Any]:
        """The entry, narrowed to this one change."""
        return {
            "id": entry.get("id"),
            "time": entry.get("time"),
            "changes": [{"field": field, "value": value}],
        }

    # ---- replies ----------------------------------------------------------------------
    def _find_in_comments(
        self, object_id: str, *, text: str, params: dict[str, str], mine, since: datetime
    ) -> dict[str, Any] | None:
        """A comment under `object_id` that `mine(comment)`, with our text, made at or
        after `since` (Facebook's `created_time`, Instagram's `timestamp`: a comment
        without one cannot be shown to be this attempt's)."""
        params = dict(params)
        edge = "replies" if self.platform == "instagram" else "comments"
        for _page in range(FIND_PAGES):
            body = self._graph("GET", f"{object_id}/{edge}", params=params)
            for comment in body.get("data") or []:
                text_field = comment.get("message", comment.get("text", ""))
                if (
                    mine(comment)
                    and _same_text(text, text_field or "")
                    and _made_since(comment.get("created_time", comment.get("timestamp")), since)
                ):
                    return comment
            paging = body.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not after or not paging.get("next"):
                return None
            params["after"] = after
        return None

    # ---- errors -----------------------------------------------------------------------
    def _classify(self, response: httpx.Response, ambiguous: bool) -> ConnectorError | None:
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return None  # not a Graph error body: the generic mapping
        code = error.get("code")
        subcode = error.get("error_subcode")
        label = f"{self.platform_label} error {code}" + (f"/{subcode}" if subcode else "")
        reason = f"{label}: {error.get('message') or 'no message'}"
        if error.get("fbtrace_id"):
            reason += f" (fbtrace_id {error['fbtrace_id']})"
        if code in RATE_LIMIT_CODES or response.status_code == 429:
            return TransientError(f"Rate limited: {reason}", retry_after=_graph_wait(response))
        if code == 190:
            return PermanentError(f"The access token is invalid or expired: {reason}")
        if code == 10 or (isinstance(code, int) and 200 <= code <= 299):
            return PermanentError(f"Missing permission: {reason}")
        if code == 100 and subcode == 33:
            return PermanentError(f"The post no longer exists or cannot be seen: {reason}")
        if code in (1, 2) or error.get("is_transient") is True or response.status_code >= 500:
            return TransientError(reason, ambiguous=ambiguous)
        return PermanentError(reason)


def _graph_wait(response: httpx.Response) -> float | None:
    """Seconds until access returns: Retry-After, else the largest
    `estimated_time_to_regain_access` (minutes) in X-Business-Use-Case-Usage."""
    wait = _http.retry_after_seconds(response, ())
    if wait is not None:
        return wait
    try:
        usage = json.loads(response.headers.get("x-business-use-case-usage", ""))
    except ValueError:
        return None
    minutes = [
        float(item.get("estimated_time_to_regain_access") or 0)
        for items in (usage.values() if isinstance(usage, dict) else [])
        if isinstance(items, list)
        for item in items
        if isinstance(item, dict)
    ]
    longest = max(minutes, default=0.0)
    return longest * 60 if longest > 0 else None


class FacebookConnector(_MetaConnector):
    platform = "facebook"
    platform_label = "Facebook"
    object_name = "page"
    max_reply_chars = 8000
    settings_spec = (
        *_MetaConnector.common_settings[:2],
        SettingSpec("page_id", required=True, help="the Page's id (its own comments are ours)"),
        SettingSpec(
            "page_access_token",
            secret=True,
            help="Page access token with pages_manage_engagement (replies)",
        ),
        *_MetaConnector.common_settings[2:],
    )

    @property
    def account_id(self) -> str:
        return str(self.channel.setting("page_id") or "")

    def _token(self) -> str:
        return self.channel.setting("page_access_token")

    def _change_event(self, entry, field, value):
        if field != "feed":
            return None
        item, verb = value.get("item"), value.get("verb")
        if verb in ("add", "edited", "edit"):
            kind = "post"
        elif verb == "remove":
            kind = "delete"
        else:
            return None  # hide, unhide, block...
        post_id = str(value.get("post_id") or "")
        if item == "comment":
            external_id = str(value.get("comment_id") or "")
            in_reply_to = str(value.get("parent_id") or post_id)
            object_type = "comment"
        elif item in FB_POST_ITEMS:
            external_id, in_reply_to, object_type = post_id, "", "post"
        else:
            return None  # reactions, likes: nothing to answer
        if not external_id:
            raise EntryError(f"a {item} {verb} without its id")
        sender = value.get("from") if isinstance(value.get("from"), dict) else {}
        author_id = str(sender.get("id") or "")
        if kind == "post" and not author_id:
            raise EntryError(f"{item} {external_id}: no from.id, so no author")
        when = value.get("created_time", entry.get("time"))
        post_url = (value.get("post") or {}).get("permalink_url") or (
            f"https://www.facebook.com/{post_id}" if post_id else ""
        )
        url = post_url
        if object_type == "comment" and post_url:
            separator = "&" if "?" in post_url else "?"
            url = f"{post_url}{separator}comment_id={external_id.rsplit('_', 1)[-1]}"
        return InboundEvent(
            kind=kind,
            external_id=external_id,
            author={
                "external_id": author_id,
                "handle": "",
                "display_name": str(sender.get("name") or ""),
            }
            if author_id
            else {},
            text=str(value.get("message") or ""),
            url=url,
            posted_at=_seconds(when) if when is not None else None,
            in_reply_to_external_id=in_reply_to,
            raw=self._raw(entry, field, value),
            is_own=bool(author_id) and author_id == self.account_id,
            extra={"object": object_type, "post_id": post_id, "post_url": post_url},
        )

    def _result(self, comment_id: str, target: ReplyTarget) -> PublishResult:
        post_url = target.extra.get("post_url") or ""
        if post_url:
            separator = "&" if "?" in post_url else "?"
            url = f"{post_url}{separator}comment_id={comment_id.rsplit('_', 1)[-1]}"
        else:
            url = f"https://www.facebook.com/{comment_id}"
        return PublishResult(external_id=comment_id, url=url)

    def publish(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID
    ) -> PublishResult:
        body = self._graph("POST", f"{target.external_id}/comments", data={"message": text})
        if not isinstance(body, dict) or not body.get("id"):
            raise TransientError("Facebook answered without a comment id.", ambiguous=True)
        return self._result(str(body["id"]), target)

    def find_own_reply(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID, since: datetime
    ) -> PublishResult | None:
        """Our comment with this text under the target, made since `since`, newest first
        (a reply to a reply lands under the top-level comment, so the whole post is
        searched as well)."""
        params = {
            "fields": "from,message,id,created_time",
            "filter": "stream",
            "order": "reverse_chronological",
            "limit": "100",
        }

        def mine(comment: dict[str, Any]) -> bool:
            return str((comment.get("from") or {}).get("id") or "") == self.account_id

        places = [target.external_id]
        post_id = target.extra.get("post_id")
        if post_id and post_id != target.external_id:
            places.append(post_id)
        for place in places:
            found = self._find_in_comments(place, text=text, params=params, mine=mine, since=since)
            if found is not None:
                return self._result(str(found["id"]), target)
        return None


class InstagramConnector(_MetaConnector):
    platform = "instagram"
    platform_label = "Instagram"
    object_name = "instagram"
    max_reply_chars = 2200
    settings_spec = (
        *_MetaConnector.common_settings[:2],
        SettingSpec("ig_user_id", required=True, help="the Instagram professional account's id"),
        SettingSpec("username", help="the account's username (recognises our own posts)"),
        SettingSpec(
            "access_token",
            secret=True,
            help="token with instagram_manage_comments (or instagram_business_manage_comments)",
        ),
        *_MetaConnector.common_settings[2:],
    )

    @property
    def account_id(self) -> str:
        return str(self.channel.setting("ig_user_id") or "")

    def _token(self) -> str:
        return self.channel.setting("access_token")

    def _is_own(self, user_id: str, username: str) -> bool:
        own_username = self.channel.setting("username").lstrip("@")
        return (bool(user_id) and user_id == self.account_id) or (
            bool(own_username) and username == own_username
        )

    def _change_event(self, entry, field, value):
        if field in ("comments", "live_comments"):
            return self._comment_event(entry, field, value)
        if field == "mentions":
            return self._mention_event(entry, field, value)
        return None

    def _comment_event(self, entry, field, value) -> InboundEvent:
        comment_id = str(value.get("id") or "")
        sender = value.get("from") if isinstance(value.get("from"), dict) else {}
        author_id = str(sender.get("id") or "")
        if not comment_id or not author_id:
            raise EntryError(f"comment {comment_id or '?'}: no id or from.id")
        username = str(sender.get("username") or "")
        media = value.get("media") if isinstance(value.get("media"), dict) else {}
        return InboundEvent(
            kind="post",
            external_id=comment_id,
            author={"external_id": author_id, "handle": username, "display_name": username},
            text=str(value.get("text") or ""),
            url="",
            # No timestamp on the comment: the entry's time is the best there is.
            posted_at=_seconds(entry["time"]),
            in_reply_to_external_id=str(value.get("parent_id") or ""),
            raw=self._raw(entry, field, value),
            is_own=self._is_own(author_id, username),
            extra={
                "kind": "live_comment" if field == "live_comments" else "comment",
                "media_id": str(media.get("id") or ""),
                "media_product_type": str(media.get("media_product_type") or ""),
                "parent_id": str(value.get("parent_id") or ""),
            },
        )

    def _mention_event(self, entry, field, value) -> InboundEvent:
        comment_id = str(value.get("comment_id") or "")
        media_id = str(value.get("media_id") or "")
        if not comment_id:
            raise EntryError("a mention without comment_id (a caption mention?)")
        try:
            body = self._graph(
                "GET",
                self.account_id,
                params={"fields": MENTION_FIELDS.format(comment_id=comment_id)},
            )
        except PermanentError as exc:
            raise EntryError(f"mention {comment_id}: cannot read it: {exc.reason}") from None
        comment = body.get("mentioned_comment") if isinstance(body, dict) else None
        if not isinstance(comment, dict):
            raise EntryError(f"mention {comment_id}: no mentioned_comment in the answer")
        username = str(comment.get("username") or "")
        if not username:
            raise EntryError(f"mention {comment_id}: no username")
        when = comment.get("timestamp") or entry["time"]
        return InboundEvent(
            kind="post",
            external_id=comment_id,
            # Only the username is given for a mention: it stands in for the author id.
            author={"external_id": username, "handle": username, "display_name": username},
            text=str(comment.get("text") or ""),
            url="",
            posted_at=_seconds(when),
            raw={**self._raw(entry, field, value), "mentioned_comment": comment},
            is_own=self._is_own("", username),
            extra={"kind": "mention", "media_id": media_id, "comment_id": comment_id},
        )

    @staticmethod
    def _reply_to(target: ReplyTarget) -> str:
        """Only top-level comments take replies: answer a reply under its parent."""
        return target.extra.get("parent_id") or target.external_id

    def publish(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID
    ) -> PublishResult:
        if target.extra.get("kind") == "mention":
            media_id = target.extra.get("media_id")
            if not media_id:
                raise PermanentError("This Instagram mention has no media id to answer on.")
            body = self._graph(
                "POST",
                f"{self.account_id}/mentions",
                data={"media_id": media_id, "comment_id": target.external_id, "message": text},
            )
        else:
            body = self._graph("POST", f"{self._reply_to(target)}/replies", data={"message": text})
        if not isinstance(body, dict) or not body.get("id"):
            raise TransientError("Instagram answered without a comment id.", ambiguous=True)
        return PublishResult(external_id=str(body["id"]), url="")

    def find_own_reply(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID, since: datetime
    ) -> PublishResult | None:
        """Our reply with this text among the comment's replies, made since `since`.

        Replies to a mention on someone else's media cannot be listed this way: for those
        None is returned, so a retry after a timeout may post twice.
        """
        if target.extra.get("kind") == "mention":
            return None

        def mine(comment: dict[str, Any]) -> bool:
            sender = comment.get("from") if isinstance(comment.get("from"), dict) else {}
            return self._is_own(str(sender.get("id") or ""), str(comment.get("username") or ""))

        found = self._find_in_comments(
            self._reply_to(target),
            text=text,
            params={"fields": "id,text,username,from,timestamp", "limit": "50"},
            mine=mine,
            since=since,
        )
        return PublishResult(external_id=str(found["id"]), url="") if found else None
