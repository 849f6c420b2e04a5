"""The connector interface: what every platform module offers the rest of the product.

A connector is built for one ChannelAccount. It may implement any of:
- webhooks: `handshake(request)` (GET challenge) and `verify(body, headers)` (signature
  over the raw bytes, constant-time);
- `parse(body, headers)` — a stored raw delivery → InboundEvents, exactly as the
  platform sent them (one bad entry raises EntryError for that entry only);
- `poll(cursor)` — one page of new items from a platform without push;
- `publish(...)` — a reply in the thread; `find_own_reply(...)` — look for a reply we
  may already have posted (since the first attempt), before retrying an ambiguous
  failure.
Errors: `TransientError` (retry, honouring `retry_after`), `PermanentError` (no retry).
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from connectors.models import ChannelAccount

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingSpec:
    key: str
    required: bool = False
    secret: bool = False
    help: str = ""
    # value -> what is wrong with it (refused by channel_add), or None.
    check: Callable[[str], str | None] | None = None


def aware_datetime_problem(value: str) -> str | None:
    """What is wrong with an ISO 8601 date and time with its UTC offset, or None ("" is
    fine: not set)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        return (
            f"{value!r} is not an ISO 8601 date and time with its UTC offset, "
            "e.g. 2026-12-01T09:00:00+00:00 (or …Z)."
        )
    return None


# A rotation's overlap: the previous secret is refused from this moment on.
PREVIOUS_SECRET_UNTIL = SettingSpec(
    "previous_secret_until",
    help="ISO 8601 date and time with offset: the previous secret is refused from then on",
    check=aware_datetime_problem,
)


def signature_matches(candidates: Iterable[tuple[bytes, bytes]]) -> bool:
    """Does any (given, expected) pair match? Every pair is compared, each in constant
    time: no early exit tells a caller which secret came close."""
    results = [hmac.compare_digest(given, expected) for given, expected in candidates]
    return any(results)


@dataclass(frozen=True)
class InboundEvent:
    """One thing a platform told us: a post (new or edited) or a deletion."""

    kind: str  # "post" | "delete"
    external_id: str
    author: dict[str, str] = field(default_factory=dict)  # external_id, handle, display_name
    text: str = ""
    url: str = ""
    posted_at: datetime | None = None
    in_reply_to_external_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    # The brand account's own post: never a ticket (it would answer itself).
    is_own: bool = False
    # Platform data the reply needs later (visibility, root refs...), kept on the mention.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PollPage:
    events: list[InboundEvent]
    # Cursor to store once this page is safely stored; None keeps the current one.
    next_cursor: str | None
    # True when there is nothing more to fetch now.
    done: bool
    # The page as fetched, stored as the raw delivery.
    raw_body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishResult:
    external_id: str
    url: str


class ConnectorError(Exception):
    """`reason` is shown to people (the agent, the admin); `code`, when set, is a stable
    name for the kind of failure (e.g. `text_too_long`)."""

    def __init__(self, reason: str, *, code: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.code = code


class TransientError(ConnectorError):
    """Try again later: rate limits (with retry_after seconds), 5xx, timeouts.

    `ambiguous` means the platform may have acted (a timeout after sending): look for
    our own reply before posting again.
    """

    def __init__(self, reason: str, *, retry_after: float | None = None, ambiguous: bool = False):
        super().__init__(reason)
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class PermanentError(ConnectorError):
    """Will never work as it is: deleted post, blocked, text too long, bad credentials."""


class DuplicatePost(PermanentError):
    """The platform refused the post as a repeat of one already there (X's "duplicate
    content"). It is ours if `find_own_reply` finds it posted since the first attempt
    (an earlier attempt got through without our hearing of it); otherwise the text
    repeats another post and has to be reworded."""


class EntryError(ConnectorError):
    """One entry of a multi-entry delivery could not be read; the others still count."""


@dataclass(frozen=True)
class ReplyTarget:
    """What a reply answers: the customer's post, with what the platform needs."""

    external_id: str
    author_handle: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Connector:
    platform: ClassVar[str]
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = ()
    # Platforms without push are polled by Celery beat.
    polls: ClassVar[bool] = False
    # The longest reply the platform takes, in characters (None: no limit we know).
    max_reply_chars: ClassVar[int | None] = None
    # Headers worth keeping with a raw delivery (lower case).
    kept_headers: ClassVar[tuple[str, ...]] = ("content-type",)
    # Seconds to wait for the platform; a channel's `timeout` setting overrides it.
    timeout: ClassVar[float] = 10.0

    def __init__(self, channel: ChannelAccount):
        self.channel = channel
        # Entries of the last parsed delivery that could not be read (the rest still count).
        self.entry_errors: list[EntryError] = []

    def _timeout(self) -> float:
        return float(self.channel.setting("timeout") or self.timeout)

    def base_url(self, default: str) -> str:
        return (self.channel.setting("base_url") or default).rstrip("/")

    def previous_secret(self, key: str) -> str:
        """The secret a rotation replaced, stored under `key`, while the overlap lasts:
        "" once `previous_secret_until` has passed (or if it cannot be read — refused
        rather than trusted for ever). For checking signatures only, never for anything
        sent out."""
        secret = self.channel.setting(key)
        until = self.channel.setting("previous_secret_until")
        if not secret or not until:
            return secret
        if aware_datetime_problem(until) is not None:
            logger.warning(
                "channel %s: previous_secret_until %r is not a date and time with an "
                "offset; the previous secret is refused",
                self.channel.name,
                until,
            )
            return ""
        return secret if timezone.now() < datetime.fromisoformat(until) else ""

    # ---- webhooks -------------------------------------------------------------------
    def handshake(self, request: HttpRequest) -> HttpResponse | None:
        raise NotImplementedError

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        raise NotImplementedError

    def accepts(self, body: bytes) -> bool:
        """Is this verified delivery for this account? (Several accounts can share one
        app secret: X's for_user_id, Meta's entry id tell them apart.)"""
        return True

    def parse(self, body: bytes, headers: Mapping[str, str]) -> Iterable[InboundEvent]:
        raise NotImplementedError

    # ---- polling --------------------------------------------------------------------
    def poll(self, cursor: str) -> PollPage:
        raise NotImplementedError

    # ---- publishing -----------------------------------------------------------------
    def publish(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID
    ) -> PublishResult:
        raise NotImplementedError

    def find_own_reply(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID, since: datetime
    ) -> PublishResult | None:
        """Our reply to `target` with this text, posted at or after `since`, if it is
        already on the platform.

        `since` is when this reply's first publish attempt began, less a margin for the
        platform's clock: the same words from us in the same thread before then are an
        earlier answer, not this one, and must not stop this one from being posted."""
        return None
