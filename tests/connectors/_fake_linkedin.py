"""A fake LinkedIn Community Management API on top of FakePlatform: the real wire format.

State: the organisation's posts and their comments. It answers, like LinkedIn:
- `GET /rest/posts?author=<org URN>&q=author&count=&sortBy=LAST_MODIFIED` (a finder);
- `GET /rest/socialActions/{encoded post or comment URN}/comments?start=&count=`: the
  comments newest first, with `paging {start, count, total, links}`;
- `POST /rest/socialActions/{encoded URN}/comments`: a comment by the organisation,
  answered 201 with the created comment.
Every call must carry `Authorization: Bearer <token>`, `LinkedIn-Version: <version>` and
`X-Restli-Protocol-Version: 2.0.0`, or gets LinkedIn's error for it; a path with a URN
that is not percent-encoded matches no route (404). `fail_next` queues canned answers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from tests.connectors.fakes import FakePlatform, Recorded, Reply

ORG_ID = "2414183"
ORG = f"urn:li:organization:{ORG_ID}"
TOKEN_VALUE = "AQV-fake-token"
VERSION = "202411"
POSTS = "/rest/posts"


def enc(urn: str) -> str:
    return quote(urn, safe="")


def comments_path(urn: str) -> str:
    return f"/rest/socialActions/{enc(urn)}/comments"


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def li_error(status: int, message: str, code: str = "", service_code: int = 100) -> Reply:
    body: dict[str, Any] = {"status": status, "serviceErrorCode": service_code, "message": message}
    if code:
        body["code"] = code
    return Reply(status, body)


@dataclass
class LiComment:
    urn: str
    id: str
    actor: str
    text: str
    created: int
    modified: int
    activity: str
    parent: str = ""
    replies: list[LiComment] = field(default_factory=list)

    def element(self) -> dict[str, Any]:
        element: dict[str, Any] = {
            "actor": self.actor,
            "commentUrn": self.urn,
            "$URN": self.urn,
            "id": self.id,
            "object": self.activity,
            "created": {"actor": self.actor, "time": self.created},
            "lastModified": {"actor": self.actor, "time": self.modified},
            "message": {"text": self.text, "attributes": []},
            "likesSummary": {"selectedLikes": [], "aggregatedTotalLikes": 0, "totalLikes": 0},
            "commentsSummary": {
                "selectedComments": [r.urn for r in self.replies[:1]],
                "totalFirstLevelComments": len(self.replies),
                "aggregatedTotalComments": len(self.replies),
            },
        }
        if self.parent:
            element["parentComment"] = self.parent
        return element


@dataclass
class LiPost:
    urn: str
    activity: str
    created: int
    comments: list[LiComment] = field(default_factory=list)


class FakeLinkedIn:
    def __init__(self, fake: FakePlatform):
        self.fake = fake
        self.token = TOKEN_VALUE
        self.version = VERSION
        self.posts: dict[str, LiPost] = {}
        self.comments: dict[str, LiComment] = {}
        self._failures: dict[tuple[str, str], list[Reply]] = {}
        self._ids = itertools.count(7_100_000_000_000_000_001)
        fake.route("GET", POSTS, self._posts)

    # ---- building state --------------------------------------------------------------------
    def post(self, at: datetime) -> str:
        number = next(self._ids)
        urn = f"urn:li:share:{number}"
        self.posts[urn] = LiPost(urn, f"urn:li:activity:{number}", ms(at))
        path = comments_path(urn)
        self.fake.route("GET", path, lambda r, urn=urn: self._list(r, urn))
        self.fake.route("POST", path, lambda r, urn=urn: self._create(r, urn))
        return urn

    def comment(
        self, on: str, text: str, at: datetime, *, actor: str = "urn:li:person:cust1"
    ) -> str:
        """A comment on a post, or a reply when `on` is a comment URN."""
        parent = self.comments.get(on)
        activity = parent.activity if parent else self.posts[on].activity
        number = str(next(self._ids))
        urn = f"urn:li:comment:({activity},{number})"
        comment = LiComment(
            urn, number, actor, text, ms(at), ms(at), activity, parent.urn if parent else ""
        )
        if parent:
            parent.replies.append(comment)
        else:
            self.posts[on].comments.append(comment)
            path = comments_path(urn)
            self.fake.route("GET", path, lambda r, urn=urn: self._list(r, urn))
            self.fake.route("POST", path, lambda r, urn=urn: self._create(r, urn))
        self.comments[urn] = comment
        return urn

    def edit(self, urn: str, text: str, at: datetime) -> None:
        self.comments[urn].text = text
        self.comments[urn].modified = ms(at)

    def delete_post(self, urn: str) -> None:
        for comment in self.posts.pop(urn).comments:
            self.comments.pop(comment.urn, None)

    def fail_next(self, method: str, path: str, *replies: Reply) -> None:
        self._failures.setdefault((method, path), []).extend(replies)

    def requests(self, method: str, path: str) -> list[Recorded]:
        return self.fake.requests_to(method, path)

    # ---- answering -------------------------------------------------------------------------
    def _refusal(self, request: Recorded) -> Reply | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return li_error(401, "Invalid access token", "INVALID_ACCESS_TOKEN", 65600)
        version = request.headers.get("linkedin-version")
        if not version:
            return li_error(400, "A version must be present.", "VERSION_MISSING")
        if version != self.version:
            return li_error(
                426, f"Requested version {version} is not active", "NONEXISTENT_VERSION"
            )
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            return li_error(400, "Rest.li protocol 2.0.0 is required", "ILLEGAL_ARGUMENT")
        queue = self._failures.get((request.method, request.path))
        return queue.pop(0) if queue else None

    def _posts(self, request: Recorded) -> Reply:
        refusal = self._refusal(request)
        if refusal:
            return refusal
        if (
            request.arg("q") != "author"
            or request.arg("author") != ORG
            or request.headers.get("x-restli-method") != "FINDER"
        ):
            return li_error(400, "Invalid finder", "ILLEGAL_ARGUMENT")
        count = int(request.arg("count") or 10)
        posts = sorted(self.posts.values(), key=lambda p: p.created, reverse=True)[:count]
        return Reply(
            200,
            {
                "paging": {"start": 0, "count": count, "links": [], "total": len(self.posts)},
                "elements": [
                    {
                        "id": p.urn,
                        "author": ORG,
                        "commentary": "Our new savings account",
                        "createdAt": p.created,
                        "lastModifiedAt": p.created,
                        "lifecycleState": "PUBLISHED",
                        "visibility": "PUBLIC",
                    }
                    for p in posts
                ],
            },
        )

    def _thread(self, urn: str) -> list[LiComment] | None:
        if urn in self.posts:
            return self.posts[urn].comments
        if urn in self.comments:
            return self.comments[urn].replies
        return None

    def _list(self, request: Recorded, urn: str) -> Reply:
        refusal = self._refusal(request)
        if refusal:
            return refusal
        comments = self._thread(urn)
        if comments is None:
            return li_error(404, f"Not found: {urn}", "NOT_FOUND")
        start, count = int(request.arg("start") or 0), int(request.arg("count") or 10)
        ordered = sorted(comments, key=lambda c: (c.created, c.id), reverse=True)
        page = ordered[start : start + count]
        links = []
        if start + count < len(ordered):
            links.append(
                {
                    "rel": "next",
                    "type": "application/json",
                    "href": f"{request.path}?count={count}&start={start + count}",
                }
            )
        return Reply(
            200,
            {
                "paging": {"start": start, "count": count, "links": links, "total": len(ordered)},
                "elements": [c.element() for c in page],
            },
        )

    def _create(self, request: Recorded, urn: str) -> Reply:
        refusal = self._refusal(request)
        if refusal and (refusal.status < 500 and not refusal.delay):
            return refusal  # refused before anything was done
        if self._thread(urn) is None:
            return li_error(404, f"Not found: {urn}", "NOT_FOUND")
        body = request.json()
        parent = self.comments.get(urn)
        activity = parent.activity if parent else self.posts[urn].activity
        if (
            body.get("actor") != ORG
            or body.get("object") not in (activity, urn if not parent else activity)
            or (parent is not None and body.get("parentComment") != urn)
            or not (body.get("message") or {}).get("text")
        ):
            return li_error(422, f"Invalid comment body: {body}", "UNPROCESSABLE_ENTITY")
        now = datetime.now().astimezone()
        made = self.comments[self.comment(urn, body["message"]["text"], now, actor=ORG)]
        if refusal:
            return refusal  # a 5xx, or a hang, after the comment was made
        return Reply(201, made.element(), headers={"x-restli-id": made.id})
