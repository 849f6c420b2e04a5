"""LinkedIn: comments on the organisation's posts, polled; replies posted as the organisation.

LinkedIn has no official Python SDK for the Community Management API, so this module
calls the REST API with httpx (`connectors.platforms._http`), with the Rest.li headers
every call needs: `LinkedIn-Version: <api_version>` (YYYYMM) and
`X-Restli-Protocol-Version: 2.0.0`. URNs in paths and query strings are URL-encoded.

What it does:
- reads the comments on the organisation's posts: those listed in `post_urns`, or else
  the `recent_posts` (default 10) latest posts of the organisation (`GET /rest/posts?
  q=author`), each with `GET /rest/socialActions/{postUrn}/comments` (paged with
  start/count). Replies to a comment are read with
  `GET /rest/socialActions/{commentUrn}/comments` when the comment is new, or when its
  reply count (`commentsSummary`) changed since we last looked (remembered in Django's
  cache; without it, such comments are read again once);
- every comment newer than the cursor becomes a post; the organisation's own comments
  come through marked `is_own`; a comment seen before whose `lastModified.time` is newer
  than the last poll comes again with the same id and its new text (an edit). Deletions
  cannot be seen: a deleted comment simply disappears;
- replies: `POST /rest/socialActions/{commentUrn}/comments` with
  `{"actor": "urn:li:organization:<id>", "object": <post>, "message": {"text"},
  "parentComment": <commentUrn>}` (LinkedIn nests one level only, so an answer to a
  reply goes under its top-level comment); `find_own_reply` looks for the
  organisation's comment with the same text in that thread.

The cursor is JSON `{"t": newest created.time seen (epoch ms), "ids": comment URNs created
at that millisecond, "e": newest lastModified.time seen}`; an empty cursor starts
`backfill_hours` (default 24) ago.

What the public API does not allow, or this connector does not do:
- Access: the Community Management API is not self-serve. The app needs the product
  approved (Development tier, then a Standard tier review of the use case), and the
  member who authorises it must be an ADMINISTRATOR of the page; scopes
  `r_organization_social` and `w_organization_social`. Without it every call is a 403,
  reported as a PermanentError saying so.
- Tokens: member access tokens last 60 days. Refresh tokens are only issued to approved
  partner apps, so this connector does not refresh: a 401 is a PermanentError asking
  to reconnect the channel.
- Webhooks: LinkedIn's organisation social-action notifications can be pushed to a
  webhook only for apps approved for it, with a public HTTPS endpoint that passes a
  challenge every 2 hours. This connector polls instead; there is no webhook handler.
- Mentions of the organisation in other members' posts (`SHARE_MENTION`,
  `COMMENT_MENTION`) are only available through organisation social-action
  notifications (`organizationalEntityNotifications`, scope `rw_organization_admin`),
  whose JSON our fact sheet could not confirm. They are not read: only comments on the
  organisation's own posts are.
- Direct messages to the page are not available through the public API at all.
- Names: a comment names its author by URN only (`urn:li:person:…`); resolving names
  needs lookups this connector does not make, so the handle is the URN.
- Rate limits are daily and reset at midnight UTC; a 429 without Retry-After waits
  until then.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from django.core.cache import cache

from connectors.base import (
    Connector,
    ConnectorError,
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

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.linkedin.com"
DEFAULT_RECENT_POSTS = 10
DEFAULT_BACKFILL_HOURS = 24.0
RESTLI_PROTOCOL = "2.0.0"
FEED_URL = "https://www.linkedin.com/feed/update/"
PLATFORM = "LinkedIn"
CURSOR_MAX_CHARS = ChannelAccount._meta.get_field("poll_cursor").max_length
REPLY_COUNT_TTL = 30 * 24 * 3600


def _enc(urn: str) -> str:
    """A URN as Rest.li 2.0 wants it in a path or query value: fully percent-encoded."""
    return quote(urn, safe="")


def _ms(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def post_of_comment(comment_urn: str) -> str:
    """`urn:li:comment:(urn:li:activity:1,2)` → `urn:li:activity:1` (the short form
    `urn:li:comment:(activity:1,2)` that notifications use gives the same)."""
    prefix = "urn:li:comment:("
    if not comment_urn.startswith(prefix) or not comment_urn.endswith(")"):
        return ""
    inner = comment_urn[len(prefix) : -1]
    post, _, _ = inner.rpartition(",")
    if post and not post.startswith("urn:"):
        post = f"urn:li:{post}"
    return post


def seconds_until_utc_midnight(now: datetime | None = None) -> float:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)
    return max((midnight - now).total_seconds(), 1.0)


def _comparable(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()


@dataclass
class _Mark:
    """How far we have read (epoch milliseconds): the newest creation time seen, the
    comments created at that very millisecond, the newest modification time seen."""

    t: int
    ids: set[str] = field(default_factory=set)
    e: int = 0

    def copy(self) -> _Mark:
        return _Mark(self.t, set(self.ids), self.e)

    def knows(self, urn: str, created: int) -> bool:
        return created < self.t or (created == self.t and urn in self.ids)

    def add(self, urn: str, created: int, modified: int) -> None:
        if created > self.t:
            self.t, self.ids = created, {urn}
        elif created == self.t:
            self.ids.add(urn)
        self.e = max(self.e, modified)

    @classmethod
    def load(cls, text: str, *, backfill_hours: float) -> _Mark:
        text = (text or "").strip()
        if not text:
            start = int((datetime.now(UTC) - timedelta(hours=backfill_hours)).timestamp() * 1000)
            return cls(start, set(), start)
        try:
            data = json.loads(text)
            t = int(data["t"])
            return cls(t, {str(i) for i in data.get("ids") or []}, int(data.get("e") or t))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise PermanentError(f"The LinkedIn poll cursor is unreadable: {text[:80]!r}") from None

    def dump(self) -> str:
        data = {"t": self.t, "ids": sorted(self.ids), "e": self.e}
        text = json.dumps(data, separators=(",", ":"), sort_keys=True)
        while len(text) > CURSOR_MAX_CHARS and data["ids"]:
            # At worst a comment at the boundary is passed on twice (mentions are
            # deduplicated on its URN).
            data["ids"].pop()
            text = json.dumps(data, separators=(",", ":"), sort_keys=True)
        return text


@dataclass
class _Scan:
    base: _Mark
    top: _Mark
    events: dict[str, InboundEvent] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)


class LinkedInConnector(Connector):
    platform = "linkedin"
    polls = True
    # LinkedIn's limit for a comment.
    max_reply_chars = 1250
    # Comments per page (start/count paging), and pages read per post or comment.
    page_size = 100
    max_pages = 10
    settings_spec = (
        SettingSpec("base_url", help=f"API root, default {DEFAULT_BASE_URL}"),
        SettingSpec(
            "organization_id",
            required=True,
            help="the page's organisation id (the number in urn:li:organization:<id>)",
        ),
        SettingSpec(
            "access_token",
            required=True,
            secret=True,
            help="member token of a page ADMINISTRATOR, scopes r_organization_social and "
            "w_organization_social (Community Management API); lasts 60 days",
        ),
        SettingSpec(
            "api_version",
            required=True,
            help="LinkedIn-Version header, YYYYMM (e.g. 202411); versions are retired "
            "after about a year",
        ),
        SettingSpec(
            "post_urns",
            help="comma-separated post URNs to watch (urn:li:share:… / urn:li:ugcPost:…); "
            "empty: the organisation's latest posts",
        ),
        SettingSpec(
            "recent_posts",
            help=f"how many latest posts to watch when post_urns is empty, "
            f"default {DEFAULT_RECENT_POSTS}",
        ),
        SettingSpec(
            "poll_interval",
            help="seconds between polls; each poll makes one call per watched post (more for "
            "comments with replies) against daily limits",
        ),
        SettingSpec(
            "backfill_hours",
            help=f"how far back the first poll looks, default {DEFAULT_BACKFILL_HOURS:g}",
        ),
        SettingSpec("timeout", help="seconds to wait for LinkedIn, default 10"),
    )

    # ---- settings -------------------------------------------------------------------------
    @property
    def organization_urn(self) -> str:
        org = str(self.channel.setting("organization_id") or "").strip()
        if not org:
            raise PermanentError("The LinkedIn organization_id is not set.")
        return org if org.startswith("urn:li:organization:") else f"urn:li:organization:{org}"

    def _headers(self) -> dict[str, str]:
        token = self.channel.setting("access_token")
        if not token:
            raise PermanentError("The LinkedIn access_token is not set.")
        version = str(self.channel.setting("api_version") or "").strip()
        if not version:
            raise PermanentError(
                "The LinkedIn api_version (LinkedIn-Version header, YYYYMM) is not set."
            )
        return {
            "Authorization": f"Bearer {token}",
            "LinkedIn-Version": version,
            "X-Restli-Protocol-Version": RESTLI_PROTOCOL,
            "Accept": "application/json",
        }

    def _url(self, path: str) -> str:
        return self.base_url(DEFAULT_BASE_URL) + path

    # ---- reading ----------------------------------------------------------------------------
    def poll(self, cursor: str) -> PollPage:
        backfill = float(self.channel.setting("backfill_hours") or DEFAULT_BACKFILL_HOURS)
        base = _Mark.load(cursor, backfill_hours=backfill)
        scan = _Scan(base=base, top=base.copy())
        for post_urn in self._watched_posts(scan):
            try:
                comments = self._comments_of(post_urn, scan)
            except _NotFound:
                logger.warning("linkedin %s: post %s is gone, skipped", self.channel, post_urn)
                continue
            for comment in comments:
                urn = self._take(comment, post_urn, "", scan)
                if urn and self._replies_changed(comment, urn, scan):
                    try:
                        replies = self._comments_of(urn, scan)
                    except _NotFound:
                        continue
                    for reply in replies:
                        self._take(reply, post_urn, urn, scan)
        next_cursor = scan.top.dump()
        events = sorted(scan.events.values(), key=lambda e: (e.posted_at, e.external_id))
        bodies = scan.bodies
        raw_body = bodies[0] if len(bodies) == 1 else b"[" + b",".join(bodies) + b"]"
        return PollPage(
            events=events,
            next_cursor=None if next_cursor == (cursor or "").strip() else next_cursor,
            done=True,
            raw_body=raw_body,
            headers={"content-type": "application/json"},
        )

    def _watched_posts(self, scan: _Scan) -> list[str]:
        configured = [
            urn.strip()
            for urn in str(self.channel.setting("post_urns") or "").split(",")
            if urn.strip()
        ]
        if configured:
            return configured
        count = int(self.channel.setting("recent_posts") or DEFAULT_RECENT_POSTS)
        query = f"author={_enc(self.organization_urn)}&q=author&count={count}&sortBy=LAST_MODIFIED"
        data = self._get(f"/rest/posts?{query}", scan, finder=True)
        return [str(post["id"]) for post in data.get("elements") or [] if post.get("id")]

    def _comments_of(self, urn: str, scan: _Scan) -> list[dict[str, Any]]:
        """All comments on a post (or replies to a comment), page after page."""
        found: list[dict[str, Any]] = []
        start = 0
        for _page in range(self.max_pages):
            data = self._get(
                f"/rest/socialActions/{_enc(urn)}/comments?start={start}&count={self.page_size}",
                scan,
            )
            elements = [e for e in data.get("elements") or [] if isinstance(e, dict)]
            found.extend(elements)
            start += len(elements)
            paging = data.get("paging") or {}
            total = _ms(paging.get("total"))
            has_next = any(
                isinstance(link, dict) and link.get("rel") == "next"
                for link in paging.get("links") or []
            )
            if not elements or (total is not None and start >= total):
                return found
            if total is None and not has_next and len(elements) < self.page_size:
                return found
        logger.warning("linkedin %s: more than %d comments on %s", self.channel, start, urn)
        return found

    def _replies_changed(self, comment: dict[str, Any], urn: str, scan: _Scan) -> bool:
        summary = comment.get("commentsSummary") or {}
        count = _ms(summary.get("totalFirstLevelComments"))
        if count is None:
            count = _ms(summary.get("aggregatedTotalComments")) or 0
        if count <= 0:
            return False
        key = f"connectors:linkedin:{self.channel.pk}:replies:{urn}"
        changed = urn in scan.events or _cache_get(key) != count
        _cache_set(key, count)
        return changed

    def _take(self, comment: dict[str, Any], post_urn: str, parent: str, scan: _Scan) -> str:
        """Take one comment; returns its URN."""
        urn = _comment_urn(comment)
        created = _ms((comment.get("created") or {}).get("time"))
        if not urn or created is None:
            return ""
        modified = _ms((comment.get("lastModified") or {}).get("time")) or created
        if not scan.base.knows(urn, created):
            scan.events[urn] = self._event(comment, urn, post_urn, parent)
        elif modified > created and modified > scan.base.e:
            scan.events[urn] = self._event(comment, urn, post_urn, parent)  # an edit
        scan.top.add(urn, created, modified)
        return urn

    def _event(self, comment: dict[str, Any], urn: str, post_urn: str, parent: str) -> InboundEvent:
        parent = str(comment.get("parentComment") or parent or "")
        actor = str(comment.get("actor") or (comment.get("created") or {}).get("actor") or "")
        post = str(comment.get("object") or post_urn or post_of_comment(urn))
        created = _ms((comment.get("created") or {}).get("time"))
        return InboundEvent(
            kind="post",
            external_id=urn,
            author={"external_id": actor, "handle": actor, "display_name": ""},
            text=str((comment.get("message") or {}).get("text") or ""),
            url=_comment_url(post, parent or urn, urn if parent else ""),
            posted_at=_moment(created) if created is not None else None,
            in_reply_to_external_id=parent,
            raw=comment,
            is_own=actor == self.organization_urn,
            extra={"post_urn": post, "thread_id": parent or urn},
        )

    # ---- publishing ---------------------------------------------------------------------------
    def publish(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID
    ) -> PublishResult:
        if not text.strip():
            raise PermanentError("LinkedIn does not take an empty comment.")
        if len(text) > self.max_reply_chars:
            raise PermanentError(
                f"The reply is {len(text)} characters; a LinkedIn comment takes at most "
                f"{self.max_reply_chars}.",
                code="text_too_long",
            )
        thread, post = self._thread_of(target)
        body: dict[str, Any] = {
            "actor": self.organization_urn,
            "object": post,
            "message": {"text": text},
        }
        if thread:
            body["parentComment"] = thread
        response = _http.send(
            "POST",
            self._url(f"/rest/socialActions/{_enc(thread or post)}/comments"),
            platform=PLATFORM,
            timeout=self._timeout(),
            headers={**self._headers(), "Content-Type": "application/json"},
            json_body=body,
            classify=self._classify,
        )
        created: Any = {}
        if response.content:
            created = _http.json_of(response, platform=PLATFORM, ambiguous=True)
        urn = _comment_urn(created if isinstance(created, dict) else {}) or str(
            response.headers.get("x-restli-id") or response.headers.get("x-linkedin-id") or ""
        )
        if urn and not urn.startswith("urn:"):
            urn = f"urn:li:comment:({post},{urn})"
        if not urn:
            raise TransientError("LinkedIn answered the comment without its URN.", ambiguous=True)
        return PublishResult(
            external_id=urn, url=_comment_url(post, thread or urn, urn if thread else "")
        )

    def find_own_reply(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID, since: datetime
    ) -> PublishResult | None:
        """The organisation's comment with this text in the target's thread, created
        since `since` (the newest, if the same words were posted there more than once)."""
        thread, post = self._thread_of(target)
        wanted = _comparable(text)
        scan = _Scan(base=_Mark(0), top=_Mark(0))
        try:
            comments = self._comments_of(thread or post, scan)
        except _NotFound:
            return None
        best: tuple[int, str] | None = None
        for comment in comments:
            actor = comment.get("actor") or (comment.get("created") or {}).get("actor")
            said = str((comment.get("message") or {}).get("text") or "")
            urn = _comment_urn(comment)
            if actor != self.organization_urn or not urn or _comparable(said) != wanted:
                continue
            created = _ms((comment.get("created") or {}).get("time")) or 0
            if created < since.timestamp() * 1000:
                continue  # not provably this attempt's: an earlier answer, perhaps
            if best is None or created > best[0]:
                best = (created, urn)
        if best is None:
            return None
        urn = best[1]
        return PublishResult(
            external_id=urn, url=_comment_url(post, thread or urn, urn if thread else "")
        )

    @staticmethod
    def _thread_of(target: ReplyTarget) -> tuple[str, str]:
        """(top-level comment to reply under or "", the post) for a reply target."""
        thread = str(target.extra.get("thread_id") or "")
        if not thread and target.external_id.startswith("urn:li:comment:"):
            thread = target.external_id
        post = str(target.extra.get("post_urn") or "") or post_of_comment(thread)
        if not thread and not post:
            post = target.external_id  # answering a post itself: a top-level comment
        if not post:
            raise PermanentError(f"Cannot tell which LinkedIn post {target.external_id} is on.")
        return thread, post

    # ---- HTTP -----------------------------------------------------------------------------------
    def _get(self, path: str, scan: _Scan, *, finder: bool = False) -> dict[str, Any]:
        headers = self._headers()
        if finder:
            headers["X-RestLi-Method"] = "FINDER"
        response = _http.send(
            "GET",
            self._url(path),
            platform=PLATFORM,
            timeout=self._timeout(),
            headers=headers,
            classify=self._classify,
        )
        data = _http.json_of(response, platform=PLATFORM)
        if not isinstance(data, dict):
            raise TransientError("LinkedIn answered with something other than a JSON object.")
        scan.bodies.append(response.content)
        return data

    def _classify(self, response: httpx.Response, ambiguous: bool) -> ConnectorError | None:
        """LinkedIn's error body: `{"status", "serviceErrorCode", "code"?, "message"}`."""
        status = response.status_code
        message = _http.error_message(response)
        code = _error_code(response)
        label = f"{status} {code}".strip()
        if status == 429:
            wait = _http.retry_after_seconds(response)
            return TransientError(
                f"LinkedIn rate limit ({label}): {message}. Daily limits reset at midnight UTC.",
                retry_after=wait if wait is not None else seconds_until_utc_midnight(),
            )
        if status >= 500:
            return None  # the generic mapping: transient, ambiguous for a POST
        if status == 401:
            return PermanentError(
                f"LinkedIn refused the access token ({label}): {message}. Tokens last 60 "
                "days: reconnect the LinkedIn channel."
            )
        if status == 403:
            return PermanentError(
                f"LinkedIn refused access ({label}): {message}. The app needs the Community "
                "Management API product, and the token's member must be an ADMINISTRATOR of "
                "the page with r_organization_social / w_organization_social."
            )
        if status == 404:
            return _NotFound(
                f"LinkedIn cannot find it ({label}): {message}. The post or comment may "
                "have been deleted."
            )
        if status == 426:
            return PermanentError(
                f"LinkedIn no longer serves API version "
                f"{self.channel.setting('api_version')} ({label}): {message}. Set api_version "
                "to a current YYYYMM."
            )
        return PermanentError(f"LinkedIn refused the request ({label}): {message}")


class _NotFound(PermanentError):
    """404: the post or comment is not there (deleted, or never was)."""


def _comment_urn(comment: Mapping[str, Any]) -> str:
    urn = comment.get("commentUrn") or comment.get("$URN")
    if urn:
        return str(urn)
    if comment.get("object") and comment.get("id"):
        return f"urn:li:comment:({comment['object']},{comment['id']})"
    return ""


def _comment_url(post: str, comment: str, reply: str = "") -> str:
    """The comment's permalink: the post's page, opened at the comment (and reply)."""
    if not post:
        return ""
    url = f"{FEED_URL}{post}/?commentUrn={_enc(comment)}"
    if reply:
        url += f"&replyUrn={_enc(reply)}"
    return url


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(body, dict):
        return ""
    code = body.get("code") or body.get("serviceErrorCode") or ""
    return str(code)


def _cache_get(key: str) -> Any:
    """The cache only saves calls: when it is down, every count reads as changed."""
    try:
        return cache.get(key)
    except Exception:  # any cache backend failure
        logger.warning("cache unavailable: reading a LinkedIn comment's replies again")
        return None


def _cache_set(key: str, value: Any) -> None:
    try:
        cache.set(key, value, REPLY_COUNT_TTL)
    except Exception:  # any cache backend failure
        logger.warning("cache unavailable: a LinkedIn comment's reply count is not kept")
