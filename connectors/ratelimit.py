"""Rate limits on the public webhooks, per client address, counted in the cache.

Two limits, each per client address and per one-minute window (fixed, on the clock):

- `WEBHOOK_FORGED_LIMIT` requests whose signature (or handshake token) did not verify.
  An address that reached it is answered 429 for the rest of the window, before any
  HMAC is computed: guessing a secret, or making us hash megabytes, stops being cheap.
- `WEBHOOK_RATE_LIMIT` requests of any kind: a ceiling, high by default, because the
  platforms deliver from a few addresses in bursts.

Either is off at 0. Counting costs one cache round trip (on Redis: one small Lua
script, INCRBY and GET), and not one per delivery: each process adds up an address's
requests itself and adds them to the cache every `FLUSH_SECONDS` or every thousandth of
the ceiling, whichever comes first, reading back every process's total and the forged
count. So within one process the ceiling is exact, across processes it can be passed by
a thousandth per process, and the forged count of other processes is seen within
`FLUSH_SECONDS` (this process's own at once). Under a ceiling below 2,000 every request
is added at once. A forged request costs one more round trip. When the cache cannot be
reached the limits are skipped for `FAIL_OPEN_SECONDS` and the outage logged once: a genuine
delivery is never refused because Redis is down, and no request waits on a dead Redis
more than once in that time.

The client address is REMOTE_ADDR or, behind a trusted proxy (`BEHIND_PROXY=1`), the
last entry of X-Forwarded-For — the one our proxy added; the entries before it are the
client's own to write. IPv6 addresses count per /64 (one host usually holds a whole
/64). Addresses in `WEBHOOK_RATE_LIMIT_EXEMPT` (this host, by default) are never
limited.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest

from servicedesk.net import forwarded_for, plain_address

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# Counters are named by their window and live a little past it: web processes whose
# clocks are a few seconds apart still count in the same one.
KEY_TTL = WINDOW_SECONDS + 5
FAIL_OPEN_SECONDS = 5.0
# A process adds its count of an address's requests to the cache at least this often,
# and reads back everyone's (see `webhook_admit`).
FLUSH_SECONDS = 0.1
_PREFIX = "servicedesk:webhook-limit"

# Cache alias -> monotonic time until which the limits are skipped (the cache failed).
_skip_until: dict[str, float] = {}
_warned_proxy = threading.Event()
_local = threading.local()


def client_address(request: HttpRequest) -> str:
    """The address a webhook request came from, as a key: IPv4 as is, IPv6 as its /64."""
    remote = request.META.get("REMOTE_ADDR", "")
    if (
        request.META.get("HTTP_X_FORWARDED_FOR")
        and not settings.BEHIND_PROXY
        and remote in settings.WEBHOOK_RATE_LIMIT_EXEMPT
        and not _warned_proxy.is_set()
    ):
        _warned_proxy.set()
        logger.warning(
            "webhook requests come through a proxy at %s but BEHIND_PROXY is off: "
            "they are not rate limited per client",
            remote,
        )
    return _address_key(forwarded_for(request))


def _address_key(raw: str) -> str:
    address = plain_address(raw)
    if address is None:
        return "unknown"  # not an address (a proxy's garbage): all such share one count
    if isinstance(address, ipaddress.IPv6Address):
        if str(address) in settings.WEBHOOK_RATE_LIMIT_EXEMPT:
            return str(address)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _window(now: float) -> tuple[int, int]:
    """This window's number and the whole seconds until the next one starts."""
    number = int(now // WINDOW_SECONDS)
    return number, max(1, math.ceil((number + 1) * WINDOW_SECONDS - now))


def _keys(address: str, window: int) -> tuple[str, str]:
    return f"{_PREFIX}:all:{address}:{window}", f"{_PREFIX}:forged:{address}:{window}"


def _skipping(alias: str) -> bool:
    return time.monotonic() < _skip_until.get(alias, 0.0)


def _cache_failed(alias: str, exc: Exception) -> None:
    if not _skipping(alias):
        logger.warning(
            "webhook rate limits skipped for %.0f s: the cache '%s' failed: %s",
            FAIL_OPEN_SECONDS,
            alias,
            exc,
        )
    _skip_until[alias] = time.monotonic() + FAIL_OPEN_SECONDS


# Add to one counter and read another, atomically, in one round trip (cheaper than a
# pipeline: one command to pack and parse). The first increment of a window sets its
# expiry, so a counter never outlives it.
_COUNT_SCRIPT = """
local by = tonumber(ARGV[2])
local count = redis.call('INCRBY', KEYS[1], by)
if count == by then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local other = 0
if KEYS[2] then other = tonumber(redis.call('GET', KEYS[2]) or '0') end
return {count, other}
"""


def _redis_script(cache: RedisCache):
    """The counting script on the cache's own connection pool, made once per thread (as
    the cache backend is): Django builds a new Redis client per call, which costs more
    CPU than the round trip."""
    backend = cache._cache
    held = getattr(_local, "redis", None)
    if held is None or held[0] is not backend:
        held = (backend, backend.get_client(write=True).register_script(_COUNT_SCRIPT))
        _local.redis = held
    return held[1]


def _increment(cache, key: str, *, read: str | None = None, by: int = 1) -> tuple[int, int]:
    """Add `by` to `key` (created for KEY_TTL seconds) and read the count at `read`."""
    if isinstance(cache, RedisCache):
        keys = [cache.make_and_validate_key(key)]
        if read is not None:
            keys.append(cache.make_and_validate_key(read))
        count, other = _redis_script(cache)(keys=keys, args=[KEY_TTL, by])
        return int(count), int(other)
    cache.add(key, 0, timeout=KEY_TTL)
    try:
        count = cache.incr(key, by)
    except ValueError:  # expired between add and incr
        cache.add(key, by, timeout=KEY_TTL)
        count = by
    return count, int(cache.get(read) or 0) if read is not None else 0


@dataclass
class _Tally:
    """One address's requests in one window, as this process knows them."""

    window: int
    total: int = 0  # the count across every process, at this process's last flush
    forged: int = 0  # the forged count then, plus the forged requests seen here since
    unflushed: int = 0  # requests counted here and not yet added to the cache
    flushed_at: float = -math.inf  # time.monotonic()


# Address -> its tally in the current window. Stale windows are dropped as the dict
# grows, so an attacker cycling through addresses cannot make it grow for long.
_tallies: dict[str, _Tally] = {}
_tallies_lock = threading.Lock()
MAX_TALLIES = 10_000


def _flush_every(limit: int) -> int:
    """Requests counted here between two flushes: exact (1) for a limit under 2,000; for
    a high ceiling, a thousandth of it, so each process can overshoot it by 0.1% at
    most."""
    return max(1, limit // 1000)


def _tally(address: str, window: int) -> _Tally:
    tally = _tallies.get(address)
    if tally is None or tally.window != window:
        if len(_tallies) >= MAX_TALLIES:
            for key in [k for k, t in _tallies.items() if t.window != window]:
                del _tallies[key]
        tally = _tallies[address] = _Tally(window)
    return tally


def webhook_admit(address: str) -> int | None:
    """Count one webhook request from `address`; None to let it in, or the seconds to
    wait (Retry-After) if the address is over either limit in this window."""
    overall, forged = settings.WEBHOOK_RATE_LIMIT, settings.WEBHOOK_FORGED_LIMIT
    alias = settings.WEBHOOK_RATE_LIMIT_CACHE
    if not (overall or forged) or address in settings.WEBHOOK_RATE_LIMIT_EXEMPT:
        return None
    if _skipping(alias):
        return None
    window, retry_after = _window(time.time())
    now = time.monotonic()
    with _tallies_lock:
        tally = _tally(address, window)
        tally.unflushed += 1
        due = (
            not overall
            or tally.unflushed >= _flush_every(overall)
            or now - tally.flushed_at >= FLUSH_SECONDS
        )
        adding, tally.unflushed = (tally.unflushed, 0) if due else (0, tally.unflushed)
        if due:
            tally.flushed_at = now
    if due:
        all_key, forged_key = _keys(address, window)
        try:
            cache = caches[alias]
            if overall:
                count, forged_count = _increment(
                    cache, all_key, read=forged_key if forged else None, by=adding
                )
            else:
                count, forged_count = 0, int(cache.get(forged_key) or 0)
        except Exception as exc:  # whatever the backend raises: fail open, never drop one
            _cache_failed(alias, exc)
            return None
        with _tallies_lock:
            tally.total = max(tally.total, count)
            tally.forged = max(tally.forged, forged_count)
    with _tallies_lock:
        count, forged_count = tally.total + tally.unflushed, tally.forged
    if (overall and count > overall) or (forged and forged_count >= forged):
        return retry_after
    return None


def webhook_forged_count(address: str) -> None:
    """Count a request from `address` whose signature or handshake did not verify."""
    alias = settings.WEBHOOK_RATE_LIMIT_CACHE
    if (
        not settings.WEBHOOK_FORGED_LIMIT
        or address in settings.WEBHOOK_RATE_LIMIT_EXEMPT
        or _skipping(alias)
    ):
        return
    window, _ = _window(time.time())
    _, forged_key = _keys(address, window)
    try:
        forged_count, _ = _increment(caches[alias], forged_key)
    except Exception as exc:  # fail open, as above
        _cache_failed(alias, exc)
        return
    with _tallies_lock:
        tally = _tally(address, window)
        tally.forged = max(tally.forged, forged_count)
