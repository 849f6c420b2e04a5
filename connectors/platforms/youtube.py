"""YouTube: comments on the brand's channel, polled; replies posted as the channel.

Why httpx and not the official SDK (google-api-python-client): the SDK *can* be pointed
at a local server (`client_options={"api_endpoint": ...}`, `static_discovery=True`) and
its HttpError exposes the Google error reasons, so it was tried first. It was not taken:
- its transport, httplib2, re-sends a request whose connection closed before the answer
  came back, POSTs included: checked against a test server, one `comments.insert` call
  reached the server twice and the caller saw one success. YouTube has no idempotency
  key, so that is a duplicate public reply we could neither prevent nor detect;
- it brings 11 more packages (httplib2, google-auth, google-api-core, protobuf...) and
  about 125 MB, 111 MB of it discovery documents for every Google API, for the three
  calls this module makes;
- what it would give us (the discovery-built methods, its OAuth flows) we do not use:
  the calls are plain JSON over HTTPS with a key or a bearer token.
So the calls go through httpx (`connectors.platforms._http`), which never retries on
its own.

Reading: `GET /youtube/v3/commentThreads?part=snippet,replies&allThreadsRelatedToChannelId=
<channel_id>&order=time` with the `api_key` (or the OAuth token), newest threads first,
paged with `nextPageToken`. Every top-level comment and reply that is new since the
cursor becomes a post; our channel's own comments come through marked `is_own`. A
comment seen before whose `updatedAt` is newer than the last poll comes again with the
same id and its new text (an edit). Deletions cannot be seen (a deleted comment simply
disappears), and YouTube has no push for comments.

The cursor is JSON: `{"t": newest publishedAt seen, "ids": ids published at that second,
"e": newest updatedAt seen}`, plus `"scan"` while a long backlog is read over several
polls (the page token to go on from). A bare timestamp (`2026-11-20T00:00:00Z`) is also
accepted, so an operator can restart the channel from a chosen moment; an empty cursor
starts `backfill_hours` (default 24) ago.

What polling cannot see, by construction:
- a thread only shows a few of its replies: when it has more (`totalReplyCount`), all of
  them are read with `comments.list?parentId=` if the thread shows new activity or its
  reply count changed since we last looked (remembered in Django's cache; without the
  cache, such threads are re-read once);
- threads are scanned back to the cursor only: a reply hidden in a thread older than
  that, with no change in the thread's reply count, is not seen;
- comments held for review appear later with their original `publishedAt`, which may
  already be behind the cursor.

Quota: the default project quota is 10,000 units a day, reset at midnight Pacific time.
A poll costs at least 5 units (1 + 2 per part), a reply 50: a poll every 5 minutes uses
about 1,440 units a day. `quotaExceeded` is a TransientError whose `retry_after` runs
to the next midnight Pacific.

Replying: `POST /youtube/v3/comments?part=snippet` `{"snippet": {"parentId",
"textOriginal"}}` with the OAuth token (scope `youtube.force-ssl`). YouTube only takes
replies to top-level comments, so an answer to a reply goes into its thread. Access
tokens last an hour: with `refresh_token`, `client_id` and `client_secret` set, a fresh
one is fetched when the stored one has expired or is refused, and saved on the channel.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
from connectors.text import html_to_text

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.googleapis.com"
DEFAULT_OAUTH_ENDPOINT = "https://oauth2.googleapis.com/token"
DEFAULT_BACKFILL_HOURS = 24.0
WATCH_URL = "https://www.youtube.com/watch"
PLATFORM = "YouTube"
CURSOR_MAX_CHARS = ChannelAccount._meta.get_field("poll_cursor").max_length
# Reasons in a Google error body that mean "try later".
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
# Wait after a rate limit that names no time.
RATE_LIMIT_WAIT = 60.0
# Replies' reply counts are remembered this long (see the module docstring).
REPLY_COUNT_TTL = 30 * 24 * 3600
# A stored access token is refreshed this long before it expires.
TOKEN_MARGIN = timedelta(seconds=60)


def parse_time(value: str | None) -> datetime | None:
    """`2026-11-20T15:02:41Z` (fractions allowed) → aware UTC datetime."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def seconds_until_pacific_midnight(now: datetime | None = None) -> float:
    """Seconds until YouTube's daily quota resets (midnight in America/Los_Angeles)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        pacific = ZoneInfo("America/Los_Angeles")
    except ZoneInfoNotFoundError:  # no tz database: Pacific standard time is close enough
        pacific = None
    if pacific is None:
        local = now - timedelta(hours=8)
        midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=UTC)
        return max((midnight - local).total_seconds(), 1.0)
    local = now.astimezone(pacific)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=pacific)
    # Subtract in UTC: across a DST change the day is 23 or 25 hours long.
    return max((midnight.astimezone(UTC) - now).total_seconds(), 1.0)


def _comparable(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()


# ---- the cursor ---------------------------------------------------------------------------


@dataclass
class _Mark:
    """How far we have read: the newest publish time seen, the ids published at that
    very second, and the newest update time seen (edits up to it are known)."""

    t: datetime
    ids: set[str] = field(default_factory=set)
    e: datetime | None = None

    def copy(self) -> _Mark:
        return _Mark(self.t, set(self.ids), self.e)

    def knows(self, comment_id: str, published: datetime) -> bool:
        return published < self.t or (published == self.t and comment_id in self.ids)

    def add(self, comment_id: str, published: datetime, updated: datetime) -> None:
        if published > self.t:
            self.t, self.ids = published, {comment_id}
        elif published == self.t:
            self.ids.add(comment_id)
        if self.e is None or updated > self.e:
            self.e = updated

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"t": format_time(self.t), "ids": sorted(self.ids)}
        if self.e is not None:
            data["e"] = format_time(self.e)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _Mark:
        t = parse_time(data.get("t"))
        if t is None:
            raise ValueError("no time")
        return cls(t, {str(i) for i in data.get("ids") or []}, parse_time(data.get("e")) or t)


@dataclass
class _Cursor:
    mark: _Mark
    # While a backlog is read over several polls: the page to go on from, and what that
    # scan has seen so far (it becomes the mark when the scan ends).
    scan_page: str = ""
    scan_top: _Mark | None = None

    @classmethod
    def load(cls, text: str, *, backfill_hours: float) -> _Cursor:
        text = (text or "").strip()
        if not text:
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=backfill_hours)
            return cls(_Mark(start, set(), start))
        if not text.startswith("{"):
            moment = parse_time(text)
            if moment is None:
                raise PermanentError(f"The YouTube poll cursor is not a time: {text[:80]!r}")
            return cls(_Mark(moment, set(), moment))
        try:
            data = json.loads(text)
            mark = _Mark.from_dict(data)
            scan = data.get("scan") or {}
            top = _Mark.from_dict(scan) if scan else None
        except (ValueError, TypeError, AttributeError):
            raise PermanentError(f"The YouTube poll cursor is unreadable: {text[:80]!r}") from None
        return cls(mark, str(scan.get("page") or "") if scan else "", top)

    def dump(self) -> str:
        """Compact JSON that fits the cursor column. Ids at the boundary second are
        dropped first if needed (at worst a boundary comment is passed on twice, and
        mentions are deduplicated on the comment id)."""
        mark = self.mark.as_dict()
        data: dict[str, Any] = dict(mark)
        if self.scan_page and self.scan_top is not None:
            data["scan"] = {"page": self.scan_page, **self.scan_top.as_dict()}
        text = _compact(data)
        while len(text) > CURSOR_MAX_CHARS:
            scan = data.get("scan")
            if scan and scan["ids"]:
                scan["ids"].pop()
            elif data["ids"]:
                data["ids"].pop()
            elif scan:
                del data["scan"]  # the caller sees the scan is gone
            else:
                break
            text = _compact(data)
        return text


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


# ---- the connector --------------------------------------------------------------------------


@dataclass
class _Scan:
    """One poll's reading: the events found and what was seen."""

    base: _Mark
    top: _Mark
    events: dict[str, InboundEvent] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    # Threads whose replies must be read in full: thread id → video id.
    full_threads: dict[str, str] = field(default_factory=dict)


class YouTubeConnector(Connector):
    platform = "youtube"
    polls = True
    max_reply_chars = 10_000
    # Threads per commentThreads page (YouTube's maximum is 100).
    page_size = 100
    # commentThreads pages read in one poll; a longer backlog goes on at the next poll.
    max_pages_per_poll = 10
    # comments.list pages read for one thread's replies (100 replies each).
    max_reply_pages = 10
    settings_spec = (
        SettingSpec("base_url", help=f"API root, default {DEFAULT_BASE_URL}"),
        SettingSpec(
            "channel_id",
            required=True,
            help="the brand's channel id (UC…): whose comments are read, and our own",
        ),
        SettingSpec("api_key", secret=True, help="API key for reading comments"),
        SettingSpec(
            "oauth_token",
            secret=True,
            help="OAuth access token (scope youtube.force-ssl) for posting replies",
        ),
        SettingSpec(
            "refresh_token",
            secret=True,
            help="OAuth refresh token: keeps oauth_token fresh (with client_id and secret)",
        ),
        SettingSpec("client_id", help="OAuth client id, for refreshing oauth_token"),
        SettingSpec("client_secret", secret=True, help="OAuth client secret, for refreshing"),
        SettingSpec("token_url", help=f"OAuth token endpoint, default {DEFAULT_OAUTH_ENDPOINT}"),
        SettingSpec(
            "poll_interval",
            help="seconds between polls; a poll costs ≥5 of the 10,000 daily quota units, "
            "a reply 50 (300 s is a reasonable start)",
        ),
        SettingSpec(
            "backfill_hours",
            help=f"how far back the first poll looks, default {DEFAULT_BACKFILL_HOURS:g}",
        ),
        SettingSpec("timeout", help="seconds to wait for YouTube, default 10"),
    )

    @property
    def channel_id(self) -> str:
        channel_id = self.channel.setting("channel_id")
        if not channel_id:
            raise PermanentError("The YouTube channel_id is not set.")
        return str(channel_id)

    def _url(self, path: str) -> str:
        return self.base_url(DEFAULT_BASE_URL) + path

    # ---- reading ----------------------------------------------------------------------------
    def poll(self, cursor: str) -> PollPage:
        backfill = float(self.channel.setting("backfill_hours") or DEFAULT_BACKFILL_HOURS)
        state = _Cursor.load(cursor, backfill_hours=backfill)
        scan = _Scan(base=state.mark, top=(state.scan_top or state.mark).copy())
        page_token = state.scan_page
        finished = False
        restarted = False
        pages = 0
        while True:
            params = {
                "part": "snippet,replies",
                "allThreadsRelatedToChannelId": self.channel_id,
                "order": "time",
                "maxResults": str(self.page_size),
                "textFormat": "html",
            }
            if page_token:
                params["pageToken"] = page_token
            try:
                data, raw = self._get("/youtube/v3/commentThreads", params)
            except PermanentError:
                if not page_token or page_token != state.scan_page or restarted:
                    raise
                # The backlog's page token has expired: read again from the newest.
                logger.warning("youtube %s: scan page token refused, rescanning", self.channel)
                page_token, restarted = "", True
                scan.top = state.mark.copy()
                continue
            scan.bodies.append(raw)
            pages += 1
            reached_old = False
            for thread in data.get("items") or []:
                if self._take_thread(thread, scan) < scan.base.t:
                    reached_old = True
            page_token = str(data.get("nextPageToken") or "")
            if reached_old or not page_token:
                finished = True
                break
            if pages >= self.max_pages_per_poll:
                break
        for thread_id, video_id in scan.full_threads.items():
            self._take_all_replies(thread_id, video_id, scan)

        if finished:
            next_state = _Cursor(scan.top)
        else:
            next_state = _Cursor(state.mark, scan_page=page_token, scan_top=scan.top)
        next_cursor = next_state.dump()
        if next_state.scan_page and '"scan"' not in next_cursor:
            # A page token too long to keep: give up the rest of this backlog.
            logger.warning("youtube %s: backlog page token too long, skipping", self.channel)
            next_cursor = _Cursor(scan.top).dump()
            finished = True
        events = sorted(
            scan.events.values(),
            key=lambda event: (event.posted_at or scan.base.t, event.external_id),
        )
        bodies = scan.bodies
        raw_body = bodies[0] if len(bodies) == 1 else b"[" + b",".join(bodies) + b"]"
        return PollPage(
            events=events,
            next_cursor=None if next_cursor == (cursor or "").strip() else next_cursor,
            done=finished,
            raw_body=raw_body,
            headers={"content-type": "application/json; charset=UTF-8"},
        )

    def _take_thread(self, thread: dict[str, Any], scan: _Scan) -> datetime:
        """Take a thread's comments; returns its latest activity (the newest publish time
        among the comments it shows)."""
        snippet = thread.get("snippet") or {}
        top = snippet.get("topLevelComment") or {}
        thread_id = str(thread.get("id") or top.get("id") or "")
        video_id = str(snippet.get("videoId") or "")
        shown = list((thread.get("replies") or {}).get("comments") or [])
        activity = scan.base.t - timedelta(days=36500)
        top_is_new = False
        for comment in [top, *shown]:
            published = self._take_comment(comment, thread_id, video_id, scan)
            if published is not None:
                activity = max(activity, published)
                if comment is top:
                    top_is_new = comment.get("id") in scan.events
        total = int(snippet.get("totalReplyCount") or 0)
        if total > len(shown):
            key = f"connectors:youtube:{self.channel.pk}:replies:{thread_id}"
            if top_is_new or activity > scan.base.t or _cache_get(key) != total:
                scan.full_threads[thread_id] = video_id
            _cache_set(key, total)
        return activity

    def _take_all_replies(self, thread_id: str, video_id: str, scan: _Scan) -> None:
        params = {
            "part": "snippet",
            "parentId": thread_id,
            "maxResults": "100",
            "textFormat": "html",
        }
        for _page in range(self.max_reply_pages):
            data, raw = self._get("/youtube/v3/comments", params)
            scan.bodies.append(raw)
            for comment in data.get("items") or []:
                self._take_comment(comment, thread_id, video_id, scan)
            token = data.get("nextPageToken")
            if not token:
                return
            params["pageToken"] = str(token)

    def _take_comment(
        self, comment: dict[str, Any], thread_id: str, video_id: str, scan: _Scan
    ) -> datetime | None:
        snippet = comment.get("snippet") or {}
        comment_id = str(comment.get("id") or "")
        published = parse_time(snippet.get("publishedAt"))
        if not comment_id or published is None:
            return None
        updated = parse_time(snippet.get("updatedAt")) or published
        if not scan.base.knows(comment_id, published):
            scan.events[comment_id] = self._event(comment, thread_id, video_id)
        elif updated > published and (scan.base.e is None or updated > scan.base.e):
            scan.events[comment_id] = self._event(comment, thread_id, video_id)  # an edit
        scan.top.add(comment_id, published, updated)
        return published

    def _event(self, comment: dict[str, Any], thread_id: str, video_id: str) -> InboundEvent:
        snippet = comment.get("snippet") or {}
        comment_id = str(comment["id"])
        author_id = str((snippet.get("authorChannelId") or {}).get("value") or "")
        name = str(snippet.get("authorDisplayName") or "")
        text = snippet.get("textOriginal")
        if text is None:
            text = html_to_text(str(snippet.get("textDisplay") or ""))
        video_id = str(snippet.get("videoId") or video_id)
        parent_id = str(snippet.get("parentId") or "")
        return InboundEvent(
            kind="post",
            external_id=comment_id,
            author={
                "external_id": author_id or str(snippet.get("authorChannelUrl") or name),
                "handle": name,
                "display_name": name,
            },
            text=str(text),
            url=self._comment_url(video_id, comment_id, str(snippet.get("channelId") or "")),
            posted_at=parse_time(snippet.get("publishedAt")),
            in_reply_to_external_id=parent_id,
            raw=comment,
            is_own=bool(author_id) and author_id == self.channel_id,
            extra={"thread_id": parent_id or thread_id or comment_id, "video_id": video_id},
        )

    @staticmethod
    def _comment_url(video_id: str, comment_id: str, channel_id: str = "") -> str:
        if video_id:
            return f"{WATCH_URL}?{urlencode({'v': video_id, 'lc': comment_id})}"
        if channel_id:
            return f"https://www.youtube.com/channel/{quote(channel_id)}?lc={quote(comment_id)}"
        return ""

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[InboundEvent]:
        """Every comment in a stored poll page (one API answer, or a JSON array of the
        answers one poll read), as posts: for reprocessing a stored page."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PermanentError(f"The stored YouTube page is not JSON: {exc}") from None
        answers = data if isinstance(data, list) else [data]
        events: dict[str, InboundEvent] = {}
        for answer in answers:
            if not isinstance(answer, dict):
                continue
            for item in answer.get("items") or []:
                for comment, thread_id, video_id in _comments_of(item):
                    if comment.get("id") and (comment.get("snippet") or {}).get("publishedAt"):
                        events[str(comment["id"])] = self._event(comment, thread_id, video_id)
        return sorted(events.values(), key=lambda e: (e.posted_at, e.external_id))

    # ---- publishing ---------------------------------------------------------------------------
    def publish(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID
    ) -> PublishResult:
        if not text.strip():
            raise PermanentError("YouTube does not take an empty reply.")
        if len(text) > self.max_reply_chars:
            raise PermanentError(
                f"The reply is {len(text)} characters; YouTube takes at most "
                f"{self.max_reply_chars}.",
                code="text_too_long",
            )
        thread_id = self._thread_of(target)
        response = self._send_authorized(
            "POST",
            "/youtube/v3/comments",
            params={"part": "snippet"},
            json_body={"snippet": {"parentId": thread_id, "textOriginal": text}},
        )
        body = _http.json_of(response, platform=PLATFORM, ambiguous=True)
        comment_id = str((body or {}).get("id") or "")
        if not comment_id:
            raise TransientError("YouTube answered the reply without a comment id.", ambiguous=True)
        video_id = str(
            ((body.get("snippet") or {}).get("videoId")) or target.extra.get("video_id") or ""
        )
        return PublishResult(external_id=comment_id, url=self._comment_url(video_id, comment_id))

    def find_own_reply(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID, since: datetime
    ) -> PublishResult | None:
        """Our channel's reply with this text in the target's thread, published since
        `since` (the newest, if the same words were posted there more than once)."""
        thread_id = self._thread_of(target)
        wanted = _comparable(text)
        params = {"part": "snippet", "parentId": thread_id, "maxResults": "100"}
        found: tuple[datetime, dict[str, Any]] | None = None
        for _page in range(self.max_reply_pages):
            response = self._send_authorized("GET", "/youtube/v3/comments", params=params)
            body = _http.json_of(response, platform=PLATFORM)
            for comment in body.get("items") or []:
                snippet = comment.get("snippet") or {}
                author = (snippet.get("authorChannelId") or {}).get("value")
                said = snippet.get("textOriginal")
                if said is None:
                    said = html_to_text(str(snippet.get("textDisplay") or ""))
                if author != self.channel_id or _comparable(str(said)) != wanted:
                    continue
                try:
                    published = parse_time(snippet.get("publishedAt"))
                except (ValueError, TypeError):
                    published = None
                if published is None or published < since:
                    continue  # not provably this attempt's: an earlier answer, perhaps
                if found is None or published > found[0]:
                    found = (published, comment)
            token = body.get("nextPageToken")
            if not token:
                break
            params["pageToken"] = str(token)
        if found is None:
            return None
        comment = found[1]
        video_id = str(
            (comment.get("snippet") or {}).get("videoId") or target.extra.get("video_id") or ""
        )
        return PublishResult(
            external_id=str(comment["id"]), url=self._comment_url(video_id, str(comment["id"]))
        )

    @staticmethod
    def _thread_of(target: ReplyTarget) -> str:
        """The top-level comment a reply must go under (reply ids are `<thread>.<suffix>`)."""
        thread_id = str(target.extra.get("thread_id") or "")
        return thread_id or target.external_id.split(".", 1)[0]

    # ---- HTTP -----------------------------------------------------------------------------------
    def _get(self, path: str, params: dict[str, str]) -> tuple[dict[str, Any], bytes]:
        """A read, with the API key (or the OAuth token when there is no key)."""
        api_key = self.channel.setting("api_key")
        if api_key:
            response = _http.send(
                "GET",
                self._url(path),
                platform=PLATFORM,
                timeout=self._timeout(),
                params={**params, "key": api_key},
                headers={"Accept": "application/json"},
                classify=self._classify,
            )
        else:
            response = self._send_authorized("GET", path, params=params)
        data = _http.json_of(response, platform=PLATFORM)
        if not isinstance(data, dict):
            raise TransientError("YouTube answered with something other than a JSON object.")
        return data, response.content

    def _send_authorized(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        """A request with the OAuth access token, refreshed once if it is refused."""
        token = self._access_token()
        for attempt in (1, 2):
            try:
                return _http.send(
                    method,
                    self._url(path),
                    platform=PLATFORM,
                    timeout=self._timeout(),
                    params=params,
                    json_body=json_body,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    classify=self._classify,
                )
            except _Unauthorized as refused:
                # 401: nothing was done; a fresh token may be all it takes.
                if attempt == 2 or not self._can_refresh():
                    raise PermanentError(
                        f"{refused.reason} Reconnect the YouTube channel (new OAuth token)."
                    ) from None
                token = self._refresh_token()
        raise AssertionError("unreachable")

    def _access_token(self) -> str:
        token = self.channel.setting("oauth_token")
        expires = parse_time(self.channel.setting("oauth_token_expires_at"))
        stale = expires is not None and expires - TOKEN_MARGIN <= datetime.now(UTC)
        if (not token or stale) and self._can_refresh():
            return self._refresh_token()
        if not token:
            raise PermanentError(
                "The YouTube oauth_token is not set: replies need an OAuth token with the "
                "youtube.force-ssl scope (or a refresh_token with client_id and client_secret)."
            )
        return str(token)

    def _can_refresh(self) -> bool:
        return all(
            self.channel.setting(key) for key in ("refresh_token", "client_id", "client_secret")
        )

    def _refresh_token(self) -> str:
        """A new access token from the refresh token, saved with the channel's secrets."""
        response = _http.send(
            "POST",
            str(self.channel.setting("token_url") or DEFAULT_OAUTH_ENDPOINT),
            platform="Google OAuth",
            timeout=self._timeout(),
            data={
                "grant_type": "refresh_token",
                "refresh_token": self.channel.setting("refresh_token"),
                "client_id": self.channel.setting("client_id"),
                "client_secret": self.channel.setting("client_secret"),
            },
            classify=_classify_token_error,
        )
        body = _http.json_of(response, platform="Google OAuth")
        token = str((body or {}).get("access_token") or "")
        if not token:
            raise PermanentError("Google OAuth answered the refresh without an access_token.")
        secrets = dict(self.channel.secrets)
        secrets["oauth_token"] = token
        lifetime = float(body.get("expires_in") or 3600)
        secrets["oauth_token_expires_at"] = format_time(
            datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lifetime)
        )
        self.channel.set_secrets(secrets)
        if self.channel.pk:
            self.channel.save(update_fields=["secrets_encrypted"])
        return token

    def _classify(self, response: httpx.Response, ambiguous: bool) -> ConnectorError | None:
        """Google's error body: `{"error": {"code", "message", "errors": [{"reason"}]}}`."""
        status = response.status_code
        message = _http.error_message(response)
        reasons = _google_reasons(response)
        reason = reasons[0] if reasons else ""
        label = f"{status} {reason}".strip()
        if QUOTA_REASONS & set(reasons):
            return TransientError(
                f"YouTube quota exhausted ({label}): {message}. It resets at midnight Pacific.",
                retry_after=seconds_until_pacific_midnight(),
            )
        if status == 429 or RATE_REASONS & set(reasons):
            wait = _http.retry_after_seconds(response)
            return TransientError(
                f"YouTube rate limit ({label}): {message}",
                retry_after=wait if wait is not None else RATE_LIMIT_WAIT,
            )
        if status >= 500:
            return None  # the generic mapping: transient, ambiguous for a POST
        if status == 401:
            return _Unauthorized(f"YouTube refused the credentials ({label}): {message}.")
        return PermanentError(f"YouTube refused the request ({label}): {message}")


class _Unauthorized(PermanentError):
    """401: the access token is missing, expired or revoked."""


def _cache_get(key: str) -> Any:
    """The cache only saves calls: when it is down, every count reads as changed."""
    try:
        return cache.get(key)
    except Exception:  # any cache backend failure
        logger.warning("cache unavailable: reading a YouTube thread's replies again")
        return None


def _cache_set(key: str, value: Any) -> None:
    try:
        cache.set(key, value, REPLY_COUNT_TTL)
    except Exception:  # any cache backend failure
        logger.warning("cache unavailable: a YouTube thread's reply count is not kept")


def _google_reasons(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return []
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return []
    return [
        str(item["reason"])
        for item in error.get("errors") or []
        if isinstance(item, dict) and item.get("reason")
    ]


def _classify_token_error(response: httpx.Response, ambiguous: bool) -> ConnectorError | None:
    """OAuth token endpoint errors: `{"error": "invalid_grant", "error_description"}`."""
    if response.status_code >= 500 or response.status_code == 429:
        return None
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = {}
    error = body.get("error") if isinstance(body, dict) else ""
    detail = body.get("error_description") if isinstance(body, dict) else ""
    return PermanentError(
        f"Google refused to refresh the YouTube token ({response.status_code} {error}): "
        f"{detail or _http.error_message(response)}. Reconnect the YouTube channel."
    )


def _comments_of(item: dict[str, Any]) -> Iterable[tuple[dict[str, Any], str, str]]:
    """(comment, thread id, video id) for a commentThread or a comment resource."""
    if item.get("kind") == "youtube#commentThread" or "topLevelComment" in (
        item.get("snippet") or {}
    ):
        snippet = item.get("snippet") or {}
        thread_id = str(item.get("id") or "")
        video_id = str(snippet.get("videoId") or "")
        top = snippet.get("topLevelComment") or {}
        yield top, thread_id, video_id
        for reply in (item.get("replies") or {}).get("comments") or []:
            yield reply, thread_id, video_id
    else:
        snippet = item.get("snippet") or {}
        yield item, str(snippet.get("parentId") or item.get("id") or ""), ""
