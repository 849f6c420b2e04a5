"""A fake YouTube Data API v3 (comments) on top of FakePlatform: the real wire format.

State is a set of comment threads on the brand's channel. It answers:
- `GET /youtube/v3/commentThreads?part=snippet,replies&allThreadsRelatedToChannelId=…
  &order=time&maxResults=…[&pageToken=…]`: threads newest first (by the top-level
  comment's publishedAt), each showing at most `shown_replies` of its replies (the
  oldest ones, like a thread preview), `nextPageToken` paging;
- `GET /youtube/v3/comments?part=snippet&parentId=…`: all replies of a thread, paged;
- `POST /youtube/v3/comments?part=snippet` (Bearer token): a reply by the brand;
- `POST /token`: Google's OAuth refresh.
It checks what YouTube checks (the key or the token, required parameters) and answers
errors with Google's error body. `fail_next` queues canned answers for a route.
"""

from __future__ import annotations

import base64
import html
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.connectors.fakes import FakePlatform, Recorded, Reply

THREADS = "/youtube/v3/commentThreads"
COMMENTS = "/youtube/v3/comments"
TOKEN = "/token"
API_KEY = "key-1"
FIRST_TOKEN = "ya29.token-1"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def google_error(code: int, reason: str, message: str, domain: str = "youtube.comment") -> Reply:
    return Reply(
        code,
        {
            "error": {
                "code": code,
                "message": message,
                "errors": [{"message": message, "domain": domain, "reason": reason}],
            }
        },
    )


@dataclass
class Comment:
    id: str
    author_channel: str
    author_name: str
    text: str
    published: datetime
    updated: datetime
    video_id: str
    parent_id: str = ""
    with_text_original: bool = True

    def resource(self, brand: str) -> dict[str, Any]:
        snippet: dict[str, Any] = {
            "channelId": brand,
            "videoId": self.video_id,
            "textDisplay": html.escape(self.text).replace("\n", "<br>"),
            "authorDisplayName": self.author_name,
            "authorProfileImageUrl": "https://yt3.ggpht.example/a.jpg",
            "authorChannelUrl": f"http://www.youtube.com/channel/{self.author_channel}",
            "authorChannelId": {"value": self.author_channel},
            "canRate": True,
            "viewerRating": "none",
            "likeCount": 0,
            "publishedAt": stamp(self.published),
            "updatedAt": stamp(self.updated),
        }
        if self.with_text_original:
            snippet["textOriginal"] = self.text
        if self.parent_id:
            snippet["parentId"] = self.parent_id
        return {
            "kind": "youtube#comment",
            "etag": f"e-{self.id}",
            "id": self.id,
            "snippet": snippet,
        }


@dataclass
class Thread:
    top: Comment
    replies: list[Comment] = field(default_factory=list)


class FakeYouTube:
    def __init__(
        self,
        fake: FakePlatform,
        *,
        brand: str,
        api_key: str = API_KEY,
        oauth_token: str = FIRST_TOKEN,
    ):
        self.fake = fake
        self.brand = brand
        self.api_key = api_key
        self.oauth_token = oauth_token
        self.threads: dict[str, Thread] = {}
        self.shown_replies = 5
        # Page tokens carry a generation: bumping it expires every token handed out.
        self.token_generation = 1
        self.refresh = {"refresh_token": "1//refresh", "client_id": "cid", "client_secret": "cs"}
        self.issued_tokens = itertools.count(2)
        self._failures: dict[tuple[str, str], list[Reply]] = {}
        self._ids = itertools.count(1)
        fake.route("GET", THREADS, self._threads)
        fake.route("GET", COMMENTS, self._comments)
        fake.route("POST", COMMENTS, self._insert)
        fake.route("POST", TOKEN, self._token)

    # ---- building state --------------------------------------------------------------------
    def comment(
        self,
        text: str,
        at: datetime,
        *,
        author: str = "UCcustomer1",
        name: str = "@customer1",
        video: str = "vid-1",
        with_text_original: bool = True,
    ) -> str:
        thread_id = f"Ugz{next(self._ids):04d}AaBbCc"
        self.threads[thread_id] = Thread(
            Comment(thread_id, author, name, text, at, at, video, "", with_text_original)
        )
        return thread_id

    def reply(
        self,
        thread_id: str,
        text: str,
        at: datetime,
        *,
        author: str = "UCcustomer1",
        name: str = "@customer1",
    ) -> str:
        thread = self.threads[thread_id]
        reply_id = f"{thread_id}.9x{next(self._ids):04d}"
        thread.replies.append(
            Comment(reply_id, author, name, text, at, at, thread.top.video_id, thread_id)
        )
        return reply_id

    def edit(self, comment_id: str, text: str, at: datetime) -> None:
        comment = self.find(comment_id)
        comment.text, comment.updated = text, at

    def find(self, comment_id: str) -> Comment:
        for thread in self.threads.values():
            for comment in [thread.top, *thread.replies]:
                if comment.id == comment_id:
                    return comment
        raise KeyError(comment_id)

    def fail_next(self, method: str, path: str, *replies: Reply) -> None:
        self._failures.setdefault((method, path), []).extend(replies)

    def requests(self, method: str, path: str) -> list[Recorded]:
        return self.fake.requests_to(method, path)

    # ---- answering -------------------------------------------------------------------------
    def _failure(self, request: Recorded) -> Reply | None:
        queue = self._failures.get((request.method, request.path))
        return queue.pop(0) if queue else None

    def _auth_error(self, request: Recorded, *, write: bool) -> Reply | None:
        bearer = request.headers.get("authorization", "")
        if bearer:
            if bearer != f"Bearer {self.oauth_token}":
                return google_error(
                    401,
                    "authError",
                    "Request had invalid authentication credentials.",
                    domain="global",
                )
            return None
        if write:
            return google_error(401, "required", "Login Required.", domain="global")
        if request.arg("key") != self.api_key:
            return google_error(
                400, "keyInvalid", "API key not valid. Please pass a valid API key.", "global"
            )
        return None

    def _page(self, items: list[Any], request: Recorded) -> tuple[list[Any], str | None]:
        size = int(request.arg("maxResults") or 20)
        assert size in range(1, 101), size
        token = request.arg("pageToken")
        offset = 0
        if token:
            generation, _, position = base64.urlsafe_b64decode(token).decode().partition(":")
            if int(generation) != self.token_generation:
                raise _BadToken
            offset = int(position)
        end = offset + size
        following = None
        if end < len(items):
            following = base64.urlsafe_b64encode(f"{self.token_generation}:{end}".encode())
        return items[offset:end], following.decode() if following else None

    def _threads(self, request: Recorded) -> Reply:
        failure = self._failure(request) or self._auth_error(request, write=False)
        if failure:
            return failure
        if request.arg("part") != "snippet,replies" or request.arg("order") != "time":
            return google_error(400, "invalidParameter", "part or order not as expected", "global")
        if request.arg("allThreadsRelatedToChannelId") != self.brand:
            return google_error(404, "channelNotFound", "The channel could not be found.")
        ordered = sorted(
            self.threads.items(), key=lambda kv: (kv[1].top.published, kv[0]), reverse=True
        )
        try:
            page, following = self._page(ordered, request)
        except _BadToken:
            return google_error(400, "invalidPageToken", "The page token is not valid.", "global")
        items = []
        for thread_id, thread in page:
            item: dict[str, Any] = {
                "kind": "youtube#commentThread",
                "etag": f"t-{thread_id}",
                "id": thread_id,
                "snippet": {
                    "channelId": self.brand,
                    "videoId": thread.top.video_id,
                    "topLevelComment": thread.top.resource(self.brand),
                    "canReply": True,
                    "totalReplyCount": len(thread.replies),
                    "isPublic": True,
                },
            }
            if thread.replies:
                shown = sorted(thread.replies, key=lambda c: c.published)[: self.shown_replies]
                item["replies"] = {"comments": [c.resource(self.brand) for c in shown]}
            items.append(item)
        body: dict[str, Any] = {
            "kind": "youtube#commentThreadListResponse",
            "etag": "list-etag",
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
            "items": items,
        }
        if following:
            body["nextPageToken"] = following
        return Reply(200, body)

    def _comments(self, request: Recorded) -> Reply:
        failure = self._failure(request) or self._auth_error(request, write=False)
        if failure:
            return failure
        thread = self.threads.get(request.arg("parentId") or "")
        if request.arg("part") != "snippet" or thread is None:
            return google_error(404, "commentNotFound", "The parent comment could not be found.")
        replies = sorted(thread.replies, key=lambda c: c.published)
        try:
            page, following = self._page(replies, request)
        except _BadToken:
            return google_error(400, "invalidPageToken", "The page token is not valid.", "global")
        body: dict[str, Any] = {
            "kind": "youtube#commentListResponse",
            "etag": "c-etag",
            "pageInfo": {"totalResults": len(page), "resultsPerPage": len(page)},
            "items": [c.resource(self.brand) for c in page],
        }
        if following:
            body["nextPageToken"] = following
        return Reply(200, body)

    def _insert(self, request: Recorded) -> Reply:
        failure = self._auth_error(request, write=True)
        if failure:
            return failure
        snippet = request.json().get("snippet") or {}
        thread = self.threads.get(snippet.get("parentId") or "")
        queued = self._failure(request)
        if queued is not None and queued.status < 500 and not queued.delay:
            return queued  # refused before anything was done
        if thread is None:
            return google_error(404, "commentNotFound", "The parent comment could not be found.")
        now = datetime.now(UTC).replace(microsecond=0)
        reply_id = self.reply(
            thread.top.id, snippet["textOriginal"], now, author=self.brand, name="@NorthwindBank"
        )
        if queued is not None:
            return queued  # a 5xx, or a hang, after the comment was made
        return Reply(200, self.find(reply_id).resource(self.brand))

    def _token(self, request: Recorded) -> Reply:
        form = request.form()
        if form.get("grant_type") != "refresh_token" or any(
            form.get(key) != value for key, value in self.refresh.items()
        ):
            return Reply(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
            )
        self.oauth_token = f"ya29.token-{next(self.issued_tokens)}"
        return Reply(
            200,
            {
                "access_token": self.oauth_token,
                "expires_in": 3599,
                "scope": "https://www.googleapis.com/auth/youtube.force-ssl",
                "token_type": "Bearer",
            },
        )


class _BadToken(Exception):
    pass


def minutes_ago(now: datetime, minutes: float) -> datetime:
    return (now - timedelta(minutes=minutes)).replace(microsecond=0)
