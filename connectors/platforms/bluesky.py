"""Bluesky (AT Protocol): mentions, replies and quotes polled over XRPC, replies posted
as records in the brand's repository.

No SDK. The de-facto one, `atproto` (MarshalX), was evaluated at 0.0.73: it can be
pointed at any PDS (`Client(base_url=...)`) and its errors carry the HTTP status and
headers, but
- it brings ten more packages (~50 MB installed: pydantic and pydantic-core, zstandard,
  libipld, websockets, dnspython...), four with compiled extensions, for the five XRPC
  calls made here — its firehose, identity and CLI parts would never be used;
- it refreshes a session only ahead of the access token's expiry, read from the JWT's
  `exp`; refreshing after an `ExpiredToken` answer (a revoked or rotated session, clock
  skew) needs its private `_refresh_and_set_session`;
- it parses every answer into pydantic models, so a poll page could not be stored as the
  bytes the PDS sent without hooking its httpx client.
So the calls are plain httpx through `connectors.platforms._http`, which maps 429 (with
the `ratelimit-reset` epoch), 5xx and timeouts to TransientError (ambiguous for writes)
and other 4xx to PermanentError with the XRPC `{"error", "message"}`.

Session: `com.atproto.server.createSession` (handle + app password) gives the access and
refresh tokens and our DID. createSession is tightly limited (30 per 5 minutes, a few
hundred a day), and a connector object lives for one poll or one publish, so the session
is kept in the channel's encrypted secrets (key `session`) and reused. An `ExpiredToken`
/ `InvalidToken` answer is followed by `refreshSession` (or, if the refresh token is no
longer good, a new createSession) and the call is made once more. A refresh token is good
once, so a worker whose session was refused first looks whether another worker already
stored a renewed one, and takes that.

Polling: `app.bsky.notification.listNotifications` answers newest first, with a cursor
for older items only. Our cursor is our own: the high-water mark (the newest `indexedAt`
delivered, with the URIs at exactly that instant) as JSON. Each poll walks from the newest
page down until it meets an item at or below the mark, then returns the *lowest* page
that has new items, so pages arrive oldest first and the mark only ever moves over items
that were handed over: a poller stopped half-way loses nothing. A backlog deeper than
`max_walk` pages is worked through from its bottom (the cursor remembers where, `resume`).
The first poll, with no mark, takes the newest page only. A poll page is stored as the
PDS sent it; `parse` of a page yields all its mentions, replies and quotes, including any
older ones on the page that were delivered before (ingest deduplicates on the AT-URI).
Bluesky posts cannot be edited; deletions are not visible to polling.

Publishing: `com.atproto.repo.createRecord` of an `app.bsky.feed.post` whose
`reply.parent` is the customer's post and `reply.root` the root of its thread. Bluesky has
no idempotency key, so the record key is derived from ours: a valid TID, the same on every
attempt. A second create with that key fails, and `find_own_reply` is a
`com.atproto.repo.getRecord` of our repository at that key. (The TID's timestamp bits
come from a hash of the key, placed in 2023: TIDs are not trusted as creation times.)
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from django.db import transaction

from connectors.base import (
    Connector,
    ConnectorError,
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

DEFAULT_BASE_URL = "https://bsky.social"
APP_URL = "https://bsky.app"
POST = "app.bsky.feed.post"
REASONS = ("mention", "reply", "quote")
SESSION_KEY = "session"
SESSION_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
CURSOR_LIMIT = 512  # ChannelAccount.poll_cursor

_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_TID_EPOCH_US = 1_672_531_200 * 1_000_000  # 2023-01-01T00:00:00Z
_TID_SPAN_US = 365 * 24 * 3600 * 1_000_000
_URL = re.compile(r"https?://[^\s<>\"]+")
_URL_TAIL = ".,;:!?)]}'\""
_FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)


class _SessionExpired(ConnectorError):
    """The PDS no longer takes this token: refresh the session and try once more."""


class _NotFound(PermanentError):
    """getRecord: no record at that key."""


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 (`2026-11-20T15:02:41.804Z`, any fraction length) → aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if match and match.group(2) and len(match.group(2)) > 7:
        text = match.group(1) + match.group(2)[:7] + match.group(3)  # µs at most
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def now_rfc3339() -> str:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def rkey_for(idempotency_key: uuid.UUID) -> str:
    """A TID (13 base32-sortable characters) that is always the same for one key."""
    digest = hashlib.sha256(b"servicedesk-bluesky-rkey:" + idempotency_key.bytes).digest()
    number = int.from_bytes(digest[:8], "big")
    micros = _TID_EPOCH_US + (number >> 10) % _TID_SPAN_US
    value = (micros << 10) | (number & 0x3FF)  # top bit stays 0: micros < 2**53
    chars = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def post_url(handle_or_did: str, uri: str) -> str:
    return f"{APP_URL}/profile/{handle_or_did}/post/{uri.rsplit('/', 1)[-1]}"


def link_facets(text: str) -> list[dict]:
    """Links in our reply, as facets (UTF-8 byte offsets), so they are clickable."""
    facets = []
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_URL_TAIL)
        start = len(text[: match.start()].encode())
        facets.append(
            {
                "index": {"byteStart": start, "byteEnd": start + len(url.encode())},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}],
            }
        )
    return facets


@dataclass(frozen=True)
class _Mark:
    """The newest delivered notification: its indexedAt and the URIs at that instant
    (None: everything at that instant, for a cursor set by hand)."""

    stamp: str
    at: datetime
    uris: tuple[str, ...] | None

    def covers(self, item: dict) -> bool:
        at = _indexed_at(item)
        if at != self.at:
            return at < self.at
        return self.uris is None or item.get("uri") in self.uris


def _indexed_at(item: dict) -> datetime:
    return parse_time(item.get("indexedAt")) or _FAR_PAST


def _order(item: dict) -> tuple[datetime, str]:
    return (_indexed_at(item), str(item.get("uri", "")))


def _mark_of(items: list[dict]) -> _Mark | None:
    dated = [item for item in items if parse_time(item.get("indexedAt"))]
    if not dated:
        return None
    newest = max(dated, key=_order)
    at = _indexed_at(newest)
    uris = tuple(sorted(str(i.get("uri")) for i in dated if _indexed_at(i) == at))
    return _Mark(stamp=str(newest["indexedAt"]), at=at, uris=uris)


def decode_cursor(cursor: str) -> tuple[_Mark | None, str | None]:
    """Our cursor → (high-water mark, where to resume a deep walk). A bare RFC 3339
    timestamp is taken as a mark too (items indexed after it are new)."""
    if not cursor:
        return None, None
    if not cursor.startswith("{"):
        at = parse_time(cursor)
        if at is None:
            raise PermanentError(f"The Bluesky poll cursor {cursor!r} is not readable.")
        return _Mark(stamp=cursor, at=at, uris=None), None
    try:
        data = json.loads(cursor)
        at = parse_time(data["seen"])
        if at is None:
            raise ValueError(data["seen"])
        uris = data.get("uris")
        mark = _Mark(stamp=data["seen"], at=at, uris=None if uris is None else tuple(uris))
    except (ValueError, KeyError, TypeError):
        raise PermanentError(f"The Bluesky poll cursor {cursor!r} is not readable.") from None
    return mark, data.get("resume") or None


def encode_cursor(mark: _Mark, resume: str | None = None) -> str:
    uris = list(mark.uris) if mark.uris is not None else None
    while True:
        data: dict[str, Any] = {"seen": mark.stamp}
        if uris is not None:
            data["uris"] = uris
        if resume:
            data["resume"] = resume
        text = json.dumps(data, separators=(",", ":"))
        if len(text) <= CURSOR_LIMIT or not uris:
            return text
        uris.pop()  # a dropped URI can only come back once more: ingest deduplicates


class BlueskyConnector(Connector):
    platform = "bluesky"
    polls = True
    max_reply_chars = 300
    kept_headers = (
        "content-type",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "ratelimit-policy",
    )
    settings_spec = (
        SettingSpec("base_url", help=f"the account's PDS, default {DEFAULT_BASE_URL}"),
        SettingSpec("handle", required=True, help="the brand account, e.g. northwind.bsky.social"),
        SettingSpec(
            "app_password", required=True, secret=True, help="an app password of that account"
        ),
        SettingSpec("did", help="the account's DID (learnt at sign-in when absent)"),
        SettingSpec("poll_interval", help="seconds between polls, default 60"),
        SettingSpec("timeout", help="seconds to wait for the PDS, default 10"),
    )
    page_size = 50
    # Pages walked down in one poll looking for the last item we delivered (at least 2).
    max_walk = 10

    def __init__(self, channel: ChannelAccount):
        super().__init__(channel)
        self._session: dict[str, str] | None = None

    # ---- HTTP ---------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        nsid: str,
        *,
        token: str | None = None,
        params: Any = None,
        body: Any = None,
        session_call: bool = False,
    ) -> httpx.Response:
        def classify(response: httpx.Response, ambiguous: bool) -> ConnectorError | None:
            status = response.status_code
            error = _xrpc_error(response)
            session_refused = session_call or error in SESSION_ERRORS or status == 401
            if token is not None and status in (400, 401) and session_refused:
                return _SessionExpired(f"Bluesky: {_http.error_message(response)}")
            if status == 400 and error == "RecordNotFound":
                return _NotFound(_http.error_message(response))
            return None

        return _http.send(
            method,
            f"{self.base_url(DEFAULT_BASE_URL)}/xrpc/{nsid}",
            platform="Bluesky",
            timeout=self._timeout(),
            headers={"Authorization": f"Bearer {token}"} if token else None,
            params=params,
            json_body=body,
            classify=classify,
        )

    def _call(
        self, method: str, nsid: str, *, params: Any = None, body: Any = None
    ) -> httpx.Response:
        """An authenticated call; an expired session is renewed and the call made again."""

        def attempt() -> httpx.Response:
            token = self.session()["accessJwt"]
            return self._send(method, nsid, token=token, params=params, body=body)

        try:
            return attempt()
        except _SessionExpired:
            adopted = self._renew_session()
        try:
            return attempt()
        except _SessionExpired as exc:
            if not adopted:
                raise TransientError(f"{exc.reason} (even with a new session)") from None
        # The session another worker had stored was no good either: renew it ourselves.
        self._renew_session(adopt=False)
        try:
            return attempt()
        except _SessionExpired as exc:
            raise TransientError(f"{exc.reason} (even with a new session)") from None

    def _json(self, response: httpx.Response, *, ambiguous: bool = False) -> Any:
        return _http.json_of(response, platform="Bluesky", ambiguous=ambiguous)

    def _kept(self, response: httpx.Response) -> dict[str, str]:
        return {
            name: response.headers[name] for name in self.kept_headers if name in response.headers
        }

    # ---- session ----------------------------------------------------------------------
    def session(self) -> dict[str, str]:
        """accessJwt, refreshJwt, did, handle: the stored session, else a new one."""
        if self._session is None:
            self._session = self._stored_session() or self._create_session()
        return self._session

    def _stored_session(self) -> dict[str, str] | None:
        raw = self.channel.secrets.get(SESSION_KEY)
        if not raw:
            return None
        try:
            session = json.loads(raw)
        except ValueError:
            return None
        keys = ("accessJwt", "refreshJwt", "did", "handle")
        if not isinstance(session, dict) or not all(session.get(k) for k in keys):
            return None
        return session

    def _create_session(self) -> dict[str, str]:
        handle = self.channel.setting("handle")
        password = self.channel.setting("app_password")
        if not handle or not password:
            raise PermanentError("The Bluesky account needs handle and app_password.")
        response = self._send(
            "POST",
            "com.atproto.server.createSession",
            body={"identifier": handle, "password": password},
        )
        return self._keep_session(self._json(response))

    def _renew_session(self, *, adopt: bool = True) -> bool:
        """A session to replace the refused one. True when it is the one another worker
        stored meanwhile (a refresh token is good once, so only one of them refreshes)."""
        refused = (self._session or {}).get("accessJwt")
        if adopt and self.channel.pk is not None:
            row = ChannelAccount.objects.filter(pk=self.channel.pk).first()
            if row is not None:
                self.channel.secrets_encrypted = row.secrets_encrypted
                stored = self._stored_session()
                if stored is not None and stored["accessJwt"] != refused:
                    self._session = stored
                    return True
        refresh = (self._session or {}).get("refreshJwt")
        if refresh:
            try:
                response = self._send(
                    "POST", "com.atproto.server.refreshSession", token=refresh, session_call=True
                )
            except _SessionExpired:
                pass  # the refresh token is spent too: sign in again
            else:
                self._keep_session(self._json(response))
                return False
        self._session = None
        self._create_session()
        return False

    def _keep_session(self, data: Any) -> dict[str, str]:
        try:
            session = {
                "accessJwt": str(data["accessJwt"]),
                "refreshJwt": str(data["refreshJwt"]),
                "did": str(data["did"]),
                "handle": str(data.get("handle") or self.channel.setting("handle")),
            }
        except (KeyError, TypeError):
            raise TransientError("Bluesky's session answer lacks its tokens.") from None
        self._session = session
        self._save_secret(json.dumps(session))
        return session

    def _save_secret(self, value: str) -> None:
        """Keep the session with the channel's secrets (encrypted), for the next connector."""
        self.channel.set_secrets({**self.channel.secrets, SESSION_KEY: value})
        if self.channel.pk is None:
            return
        with transaction.atomic():
            row = ChannelAccount.objects.select_for_update().filter(pk=self.channel.pk).first()
            if row is not None:
                row.set_secrets({**row.secrets, SESSION_KEY: value})
                row.save(update_fields=["secrets_encrypted"])
                self.channel.secrets_encrypted = row.secrets_encrypted

    def _own_did(self) -> str:
        """Our DID without signing in: the live or stored session, else the setting."""
        session = self._session or self._stored_session()
        return (session or {}).get("did") or self.channel.setting("did")

    # ---- polling ----------------------------------------------------------------------
    def _list(self, position: str | None) -> tuple[httpx.Response, dict]:
        params: list[tuple[str, str | int]] = [("limit", self.page_size)]
        params += [("reasons", reason) for reason in REASONS]
        if position:
            params.append(("cursor", position))
        response = self._call("GET", "app.bsky.notification.listNotifications", params=params)
        data = self._json(response)
        if not isinstance(data, dict) or not isinstance(data.get("notifications"), list):
            raise TransientError("Bluesky's notifications answer has no notification list.")
        return response, data

    def poll(self, cursor: str) -> PollPage:
        mark, resume = decode_cursor(cursor)
        if mark is None:
            # First poll: the newest page, then forward from it.
            response, data = self._list(None)
            items = _items(data)
            new_mark = _mark_of(items)
            return self._page(response, items, new_mark, resume=None, done=True)

        walked: list[tuple[str | None, httpx.Response, list[dict]]] = []
        position = resume
        for _ in range(max(self.max_walk, 2)):
            response, data = self._list(position)
            items = _items(data)
            walked.append((position, response, items))
            next_position = data.get("cursor")
            if not items or not next_position or any(mark.covers(item) for item in items):
                break
            position = next_position
        else:
            # Every page walked is new and there are more: work up from the deepest next time.
            deepest_position, response, _ = walked[-1]
            return PollPage(
                events=[],
                next_cursor=encode_cursor(mark, deepest_position),
                done=False,
                raw_body=b"",
                headers=self._kept(response),
            )

        depth = len(walked) - 1
        fresh = [item for item in walked[depth][2] if not mark.covers(item)]
        if not fresh:
            if depth == 0:
                # Nothing new below where we started.
                if resume is None:
                    return PollPage(
                        events=[], next_cursor=None, done=True, headers=self._kept(walked[0][1])
                    )
                return PollPage(
                    events=[],
                    next_cursor=encode_cursor(mark),
                    done=False,
                    headers=self._kept(walked[0][1]),
                )
            depth -= 1  # the boundary fell between two pages: the one above is all new
            fresh = walked[depth][2]
        _, response, items = walked[depth]
        new_mark = _mark_of(fresh) or mark
        # The page at `resume` itself handed over: the deep backlog is done.
        next_resume = resume if depth > 0 else None
        done = depth == 0 and resume is None
        return self._page(response, fresh, new_mark, resume=next_resume, done=done)

    def _page(
        self,
        response: httpx.Response,
        fresh: list[dict],
        mark: _Mark | None,
        *,
        resume: str | None,
        done: bool,
    ) -> PollPage:
        fresh_uris = {item.get("uri") for item in fresh}
        events = [
            event
            for event in self.parse(response.content, response.headers)
            if event.raw.get("uri") in fresh_uris
        ]
        return PollPage(
            events=events,
            next_cursor=encode_cursor(mark, resume) if mark is not None else None,
            done=done,
            raw_body=response.content,
            headers=self._kept(response),
        )

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[InboundEvent]:
        """A listNotifications page → its mentions, replies and quotes, oldest first."""
        self.entry_errors = []
        if not body.strip():
            return []
        try:
            data = json.loads(body)
            items = data["notifications"]
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            raise PermanentError("The Bluesky page is not a notifications list.") from None
        if not isinstance(items, list):
            raise PermanentError("The Bluesky page is not a notifications list.")
        own = self._own_did()
        handle = (self.channel.setting("handle") or "").lower()
        events = []
        for item in sorted((i for i in items if isinstance(i, dict)), key=_order):
            if item.get("reason") not in REASONS:
                continue
            try:
                events.append(self._event(item, own, handle))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self.entry_errors.append(
                    EntryError(f"notification {item.get('uri', '?')}: {type(exc).__name__}: {exc}")
                )
        return events

    def _event(self, item: dict, own_did: str, own_handle: str) -> InboundEvent:
        uri, cid = str(item["uri"]), str(item["cid"])
        author, record = item["author"], item["record"]
        reply = record.get("reply") or {}
        root = reply.get("root") or {"uri": uri, "cid": cid}
        parent = reply.get("parent") or {}
        indexed_at = parse_time(item.get("indexedAt"))
        posted_at = parse_time(record.get("createdAt")) or indexed_at
        if posted_at is not None and indexed_at is not None and posted_at > indexed_at:
            posted_at = indexed_at  # createdAt is the client's word: not after indexing
        did, handle = str(author["did"]), str(author.get("handle") or "")
        is_own = did == own_did if own_did else bool(handle) and handle.lower() == own_handle
        return InboundEvent(
            kind="post",
            external_id=uri,
            author={
                "external_id": did,
                "handle": handle,
                "display_name": author.get("displayName") or "",
            },
            text=unicodedata.normalize("NFC", str(record.get("text") or "")),
            url=post_url(handle if handle and handle != "handle.invalid" else did, uri),
            posted_at=posted_at,
            in_reply_to_external_id=str(parent.get("uri") or ""),
            raw=item,
            is_own=is_own,
            extra={
                "uri": uri,
                "cid": cid,
                "root": {"uri": str(root["uri"]), "cid": str(root["cid"])},
                "reason": item.get("reason"),
            },
        )

    # ---- publishing -------------------------------------------------------------------
    def _result(self, uri: str) -> PublishResult:
        session = self.session()
        return PublishResult(external_id=uri, url=post_url(session["handle"], uri))

    def publish(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID
    ) -> PublishResult:
        cid = target.extra.get("cid")
        if not target.external_id.startswith("at://") or not cid:
            raise PermanentError("The Bluesky post to answer has no AT-URI and CID on record.")
        parent = {"uri": target.external_id, "cid": cid}
        root = target.extra.get("root") or parent
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": now_rfc3339(),
            "reply": {"root": {"uri": root["uri"], "cid": root["cid"]}, "parent": parent},
        }
        facets = link_facets(text)
        if facets:
            record["facets"] = facets
        rkey = rkey_for(idempotency_key)
        try:
            response = self._call(
                "POST",
                "com.atproto.repo.createRecord",
                body={
                    "repo": self.session()["did"],
                    "collection": POST,
                    "rkey": rkey,
                    "record": record,
                },
            )
        except PermanentError as refusal:
            # An earlier attempt may have created it: a second create at our key fails.
            try:
                earlier = self._own_record(rkey)
            except ConnectorError:
                earlier = None
            if earlier is not None:
                return earlier
            raise refusal from None
        data = self._json(response, ambiguous=True)
        return self._result(str(data["uri"]))

    def _own_record(self, rkey: str) -> PublishResult | None:
        try:
            response = self._call(
                "GET",
                "com.atproto.repo.getRecord",
                params={"repo": self.session()["did"], "collection": POST, "rkey": rkey},
            )
        except _NotFound:
            return None
        return self._result(str(self._json(response)["uri"]))

    def find_own_reply(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID, since: datetime
    ) -> PublishResult | None:
        """The record at this reply's own key: no earlier reply can be taken for it, so
        `since` is not needed."""
        return self._own_record(rkey_for(idempotency_key))


def _items(data: dict) -> list[dict]:
    return [item for item in data["notifications"] if isinstance(item, dict)]


def _xrpc_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else ""
