"""`make bench`: signed X and Meta webhook deliveries over HTTP, beside a bare insert.

A real stack on 127.0.0.1: gunicorn (gthread workers) serving servicedesk.wsgi with the
bench URLconf, `celery worker --concurrency 2` on Redis, PostgreSQL. Sender threads in
this process, each on its own keep-alive connection, send unique requests for a fixed
time: first to the bare-insert endpoint (the baseline), then signed deliveries to the X
and Meta webhooks, half each. Figures: acknowledged/s, acknowledgement latency p50/p99,
and delivery → ticket p50/p99 (the client's send to the delivery's `processed_at`,
which the worker writes after the ticket's transaction has committed). See
bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import hmac
import http.client
import io
import itertools
import json
import math
import os
import pstats
import random
import re
import runpy
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402 (ROOT must be on sys.path first)
    LENDING_SHARE,
    LENDING_TEXTS,
    OTHER_TEXTS,
    SITE,
    BenchError,
    bench_database_url,
    database_create,
    database_drop,
    history_seed,
    profile_area,
    where,
)

X_PATH = "/connectors/x/webhook/"
META_PATH = "/connectors/meta/webhook/"
BARE_PATH = "/bench/bare-insert/"
HEALTH_PATH = "/healthz"
GUNICORN_CONF = "servicedesk/gunicorn_conf.py"
HOST = "127.0.0.1"
REDIS_DB = 13
QUEUE = "servicedesk"
USERNAME = "bench-integration"
SIMULATED_CHANNEL = "bench"  # the history's channel, and the bare rows' channel name
X_CHANNEL = "bench-x"
FB_CHANNEL = "bench-fb"
BRAND_ID = "1460011235813213455"  # > 2^53, like a real X id: only ever a string
BRAND_HANDLE = "NorthwindBank"
PAGE_ID = "1353269864728879"
POST_ID = f"{PAGE_ID}_2422865137769341"
PERMALINK = f"https://www.facebook.com/{PAGE_ID}/posts/2422865137769341/"
AUTHORS = 500
WORKERS = 2  # Celery worker processes: the goal names two

GOAL_RATE = 500.0  # deliveries acknowledged per second, at least
GOAL_ACK_P99_MS = 50.0  # below
GOAL_E2E_P99_MS = 1000.0  # below

# Requests of each kind before the rounds, per sender, all checked: enough for every
# gunicorn thread to have opened its connections and imported the connectors, which
# costs its first requests up to a second (once per process, not the stack's pace).
WARMUP_PER_SENDER = 8
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 10.0
POLL_INTERVAL = 0.2
BUSY_OTHER = 0.1  # cores used by processes not in the bench: above this, say so

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# ---- set-up -------------------------------------------------------------------------


def webhooks_database_url() -> str:
    """The ingest bench's server and credentials, its own database: `…_webhooks_bench`."""
    parts = urlsplit(bench_database_url())
    name = parts.path.lstrip("/").removesuffix("_bench") + "_webhooks_bench"
    return urlunsplit(parts._replace(path="/" + name))


def bench_redis_url() -> str:
    """REDIS_URL's server (else 127.0.0.1:6379), database 13: the bench flushes it."""
    url = os.environ.get("REDIS_URL", "")
    if not url.startswith(("redis://", "rediss://")):
        return f"redis://127.0.0.1:6379/{REDIS_DB}"
    return urlunsplit(urlsplit(url)._replace(path=f"/{REDIS_DB}"))


def redis_flush(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5).flushdb()
    except redis.RedisError as error:
        raise BenchError(f"cannot reach Redis ({urlsplit(url).netloc}): {error}") from error


def django_setup(database_url: str, redis_url: str, *, test_client: bool = False) -> None:
    """Production-like settings in this process; the servers inherit the same environment
    (the same SECRET_KEY, so the same key for the channels' encrypted secrets)."""
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-" + secrets.token_urlsafe(40),
            "SECURE_SSL_REDIRECT": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost" + (",testserver" if test_client else ""),
            "REDIS_URL": redis_url,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            # The senders are on this host, which is exempt from the webhooks' rate limits
            # by default: not here, so every delivery pays for its count as a platform's
            # would (a limit no load reaches: the count is measured, never a refusal).
            "WEBHOOK_RATE_LIMIT_EXEMPT": "",
            "WEBHOOK_RATE_LIMIT": "100000000",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    os.chdir(ROOT)  # Celery's Django fixup puts the working directory on sys.path

    import django

    django.setup()


@dataclass(frozen=True)
class Fixtures:
    token: str
    x_secret: str
    fb_secret: str
    x_channel_id: int
    fb_channel_id: int


def fixtures_prepare() -> Fixtures:
    """Migrate, empty every table the bench writes, seed 5,000 earlier posts (as the
    ingest bench does), add the API user and the X and Facebook accounts."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from bench.urls import BARE_TABLE, CREATE_BARE_TABLE
    from connectors.models import ChannelAccount, RawDelivery
    from connectors.services import channel_add
    from servicedesk.models import AuditChainHead, AuditEvent
    from servicedesk.roles import INTEGRATION
    from tickets.models import Customer, Mention, Ticket

    call_command("migrate", interactive=False, verbosity=0)
    models = (Mention, Ticket, Customer, AuditEvent, AuditChainHead, RawDelivery, ChannelAccount)
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(CREATE_BARE_TABLE)
        cursor.execute(f"TRUNCATE {', '.join([*tables, BARE_TABLE])} RESTART IDENTITY CASCADE")
    user, _ = User.objects.get_or_create(username=USERNAME)
    user.groups.set([Group.objects.get(name=INTEGRATION)])
    token, _ = Token.objects.get_or_create(user=user)
    simulated = ChannelAccount.objects.create(name=SIMULATED_CHANNEL, platform="simulated")
    history_seed(simulated)
    x_secret = secrets.token_urlsafe(32)
    fb_secret = secrets.token_hex(16)
    x_channel = channel_add(
        platform="x",
        name=X_CHANNEL,
        values={"consumer_secret": x_secret, "user_id": BRAND_ID, "handle": BRAND_HANDLE},
    )
    fb_channel = channel_add(
        platform="facebook",
        name=FB_CHANNEL,
        values={
            "app_secret": fb_secret,
            "verify_token": secrets.token_urlsafe(16),
            "page_id": PAGE_ID,
        },
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return Fixtures(token.key, x_secret, fb_secret, x_channel.pk, fb_channel.pk)


# ---- payloads, in each platform's wire format (as tests/connectors/ builds them) -----


def wire(payload: dict) -> bytes:
    """JSON as X and Meta send it: non-ASCII as \\uXXXX and '/' escaped as '\\/'."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def x_created_at(moment: datetime) -> str:
    """`Fri Nov 20 15:02:41 +0000 2026`, without the locale."""
    moment = moment.astimezone(UTC)
    return (
        f"{WEEKDAYS[moment.weekday()]} {MONTHS[moment.month - 1]} {moment.day:02d} "
        f"{moment:%H:%M:%S} +0000 {moment.year}"
    )


def x_user(number: int) -> dict:
    user_id = str(1337000000000000000 + number)
    return {
        "id": int(user_id),
        "id_str": user_id,
        "name": f"Zoë Müller {number}" if number % 3 == 0 else f"Customer {number}",
        "screen_name": f"customer_{number}",
        "location": "Zürich",
        "url": None,
        "description": "coffee & code",
        "protected": False,
        "verified": False,
        "followers_count": 212,
        "friends_count": 180,
        "created_at": "Tue Mar 03 09:12:44 +0000 2015",
        "profile_image_url_https": "https://pbs.twimg.com/profile_images/1/a_normal.jpg",
    }


def x_delivery(tweet_id: str, author: int, text: str, now: datetime) -> dict:
    """An Account Activity delivery with one v1.1 Tweet mentioning the brand."""
    text = f"@{BRAND_HANDLE} {text}".replace("&", "&amp;").replace("<", "&lt;")
    tweet = {
        "created_at": x_created_at(now - timedelta(seconds=1)),
        "id": int(tweet_id),
        "id_str": tweet_id,
        "text": text,
        "display_text_range": [len(BRAND_HANDLE) + 2, len(text)],
        "source": '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>',
        "truncated": False,
        "in_reply_to_status_id": None,
        "in_reply_to_status_id_str": None,
        "in_reply_to_user_id": int(BRAND_ID),
        "in_reply_to_user_id_str": BRAND_ID,
        "in_reply_to_screen_name": BRAND_HANDLE,
        "user": x_user(author),
        "geo": None,
        "coordinates": None,
        "place": None,
        "contributors": None,
        "is_quote_status": False,
        "quote_count": 0,
        "reply_count": 0,
        "retweet_count": 0,
        "favorite_count": 0,
        "entities": {
            "hashtags": [],
            "urls": [],
            "user_mentions": [
                {
                    "screen_name": BRAND_HANDLE,
                    "name": "Northwind Bank",
                    "id": int(BRAND_ID),
                    "id_str": BRAND_ID,
                    "indices": [0, len(BRAND_HANDLE) + 1],
                }
            ],
            "symbols": [],
        },
        "favorited": False,
        "retweeted": False,
        "filter_level": "low",
        "lang": "en",
        "timestamp_ms": str(int(now.timestamp() * 1000)),
        "edit_history": {"initial_tweet_id": tweet_id, "edit_tweet_ids": [tweet_id]},
        "edit_controls": {
            "editable_until_ms": int(now.timestamp() * 1000) + 1800000,
            "edits_remaining": 5,
        },
        "editable": True,
    }
    return {"for_user_id": BRAND_ID, "user_has_blocked": False, "tweet_create_events": [tweet]}


def meta_delivery(comment_id: str, author: int, text: str, now: datetime) -> dict:
    """A Page `feed` delivery: one entry, one new comment under the Page's post."""
    seconds = int(now.timestamp())
    value = {
        "from": {
            "id": str(24242424242424242 + author),
            "name": f"Zoë Müller {author}" if author % 3 == 0 else f"Customer {author}",
        },
        "post": {
            "status_type": "added_photos",
            "is_published": True,
            "updated_time": f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%S}+0000",
            "permalink_url": PERMALINK,
            "promotion_status": "inactive",
            "id": POST_ID,
        },
        "message": text,
        "post_id": POST_ID,
        "comment_id": comment_id,
        "created_time": seconds - 1,
        "item": "comment",
        "parent_id": POST_ID,
        "verb": "add",
    }
    entry = {"id": PAGE_ID, "time": seconds, "changes": [{"field": "feed", "value": value}]}
    return {"entry": [entry], "object": "page"}


@dataclass(frozen=True)
class Request:
    kind: str  # "x", "meta" or "bare"
    key: str  # the post's id on its platform (the mention's external_id)
    path: str
    body: bytes
    headers: dict[str, str]


class Requests:
    """Unique, signed requests; `number` makes every post id unique within the run."""

    def __init__(self, fixtures: Fixtures):
        self.fixtures = fixtures
        self.numbers = itertools.count(1)  # next() on it is atomic under the GIL

    def text(self, rng: random.Random) -> str:
        return rng.choice(LENDING_TEXTS if rng.random() < LENDING_SHARE else OTHER_TEXTS)

    def x(self, rng: random.Random) -> Request:
        tweet_id = str(1861234567000000000 + next(self.numbers))
        body = wire(x_delivery(tweet_id, rng.randrange(AUTHORS), self.text(rng), _now()))
        digest = hmac.new(self.fixtures.x_secret.encode(), body, hashlib.sha256).digest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Twitter-Webhooks-Signature": "sha256=" + base64.b64encode(digest).decode(),
        }
        return Request("x", tweet_id, X_PATH, body, headers)

    def meta(self, rng: random.Random) -> Request:
        comment_id = f"2422865137769341_{3000000000000000 + next(self.numbers)}"
        body = wire(meta_delivery(comment_id, rng.randrange(AUTHORS), self.text(rng), _now()))
        key = self.fixtures.fb_secret.encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
        }
        return Request("meta", comment_id, META_PATH, body, headers)

    def webhook(self, rng: random.Random) -> Request:
        """X or Meta, at random: about half each."""
        return self.x(rng) if rng.random() < 0.5 else self.meta(rng)

    def bare(self, rng: random.Random) -> Request:
        """The ingest bench's normalized mention body, to the bare insert."""
        external_id = f"bare-{next(self.numbers)}"
        author = rng.randrange(AUTHORS)
        body = {
            "channel": SIMULATED_CHANNEL,
            "external_id": external_id,
            "author": {
                "external_id": f"u{author}",
                "handle": f"customer_{author}",
                "display_name": f"Customer {author}",
            },
            "text": self.text(rng),
            "url": f"https://social.example.com/customer_{author}/status/{external_id}",
            "posted_at": _now().isoformat(),
        }
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Token {self.fixtures.token}",
        }
        return Request("bare", external_id, BARE_PATH, json.dumps(body).encode(), headers)


def _now() -> datetime:
    return datetime.now(UTC)


# ---- the servers --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """One process group we started, its output in a log file."""

    def __init__(
        self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None
    ):
        self.name = name
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: Ctrl-C reaches only us, we stop it
            )

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check(self) -> None:
        if not self.running():
            raise BenchError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def stop(self) -> None:
        """SIGTERM (gunicorn and Celery both stop gracefully), then SIGKILL to what is left
        of the group after STOP_TIMEOUT seconds."""
        group = self.process.pid
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"warning: {self.name} did not stop in {STOP_TIMEOUT:.0f} s: killed")
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # children left behind, if any
        self.process.wait(timeout=STOP_TIMEOUT)


@dataclass
class Stack:
    port: int
    web: Server
    worker: Server
    nodename: str

    def check(self) -> None:
        self.web.check()
        self.worker.check()

    @property
    def groups(self) -> dict[int, str]:
        return {self.web.process.pid: "gunicorn", self.worker.process.pid: "celery"}

    def stop(self) -> None:
        for server in (self.web, self.worker):
            server.stop()


def gunicorn_env(logs: Path, port: int, *, workers: int, threads: int) -> dict[str, str]:
    """The environment gunicorn_conf.py reads: a free port, a metrics directory of the
    run's own, and the workers and threads when given (else the file's defaults)."""
    env = {"BIND": f"{HOST}:{port}", "PROMETHEUS_MULTIPROC_DIR": str(logs / "metrics")}
    (logs / "metrics").mkdir()
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    if threads:
        env["WEB_THREADS"] = str(threads)
    return env


def stack_start(logs: Path, *, web_workers: int, web_threads: int) -> Stack:
    """gunicorn as production runs it (servicedesk/gunicorn_conf.py: its defaults unless
    --web-workers or --web-threads say otherwise), on a free port."""
    port = free_port()
    env = gunicorn_env(logs, port, workers=web_workers, threads=web_threads)
    web = Server(
        "gunicorn",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / GUNICORN_CONF),
            "servicedesk.wsgi:application",
            "--log-level=warning",
            "--no-control-socket",
        ],
        logs / "gunicorn.log",
        env=env,
    )
    nodename = f"bench-{uuid.uuid4().hex[:8]}@localhost"
    worker = Server(
        "celery worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "servicedesk",
            "worker",
            "--pool=prefork",
            f"--concurrency={WORKERS}",
            "-Q",
            QUEUE,
            "-n",
            nodename,
            "--loglevel=WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        logs / "celery.log",
    )
    stack = Stack(port, web, worker, nodename)
    try:
        stack_wait_ready(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


def stack_wait_ready(stack: Stack) -> None:
    from servicedesk import celery_app

    deadline = time.monotonic() + READY_TIMEOUT
    web_ready = worker_ready = False
    while time.monotonic() < deadline and not (web_ready and worker_ready):
        stack.check()
        if not web_ready:
            try:
                conn = http.client.HTTPConnection(HOST, stack.port, timeout=2)
                conn.request("GET", HEALTH_PATH)
                web_ready = conn.getresponse().status == 200
                conn.close()
            except OSError:
                pass
        if not worker_ready:
            worker_ready = bool(celery_app.control.ping(destination=[stack.nodename], timeout=0.5))
        if not (web_ready and worker_ready):
            time.sleep(POLL_INTERVAL)
    if not web_ready:
        raise BenchError(
            f"gunicorn not healthy after {READY_TIMEOUT:.0f} s:\n{stack.web.log_tail()}"
        )
    if not worker_ready:
        raise BenchError(
            f"the Celery worker did not answer a ping in {READY_TIMEOUT:.0f} s:\n"
            + stack.worker.log_tail()
        )


# ---- where the CPU goes -------------------------------------------------------------


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_snapshot(groups: dict[int, str], me: str = "senders (this process)") -> dict[str, float]:
    """CPU seconds used so far, by kind of process (Linux /proc; empty elsewhere): our
    process groups by name, PostgreSQL, Redis, this process (the senders), the rest;
    and the whole machine's `idle` time and `interrupts` (irq, softirq, steal)."""
    totals: dict[str, float] = {}
    if not os.path.exists("/proc/stat"):
        return totals
    pid = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # Its own time and that of its children that ended: a PostgreSQL session that
        # closes during a load moves its time to the postmaster's, instead of vanishing.
        group, ticks = int(fields[2]), sum(int(value) for value in fields[11:15])
        if int(entry.name) == pid:
            kind = me
        elif group in groups:
            kind = groups[group]
        elif comm.startswith(("postgres", "postmaster")):
            kind = "postgres"
        elif comm.startswith("redis"):
            kind = "redis"
        else:
            kind = "other"
        totals[kind] = totals.get(kind, 0.0) + ticks / CLOCK_TICKS
    with open("/proc/stat") as stat:
        machine = stat.readline().split()[1:]
    totals["idle"] = (int(machine[3]) + int(machine[4])) / CLOCK_TICKS
    totals["interrupts"] = sum(int(value) for value in machine[5:8]) / CLOCK_TICKS
    return totals


def cpu_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores in use on average between two snapshots, by kind. `exited` is what the
    machine did that no process still running at the end accounts for: processes that
    ended meanwhile and whose parent has not collected them, and the kernel's own work."""
    if not after or seconds <= 0:
        return {}
    used = {kind: (after[kind] - before.get(kind, 0.0)) / seconds for kind in after}
    busy = sum(value for kind, value in used.items() if kind != "idle")
    used["exited"] = max(0.0, (os.cpu_count() or 1) - used["idle"] - busy)
    return used


def database_sessions() -> int:
    """Sessions PostgreSQL has opened on the bench database so far (PostgreSQL 14+)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else -1


# ---- the load -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    kind: str
    key: str
    wall: float  # time.time() when sent (or when it was due, at a paced rate)
    latency: float  # seconds from then to the whole response
    status: int  # 0: no answer (connection error or timeout)
    delivery_ids: tuple[int, ...] = ()


@dataclass
class Phase:
    sent: list[Sent]
    seconds: float
    expected: int  # the status that acknowledges: 200 for a webhook, 201 for the bare insert
    cpu: dict[str, float] = field(default_factory=dict)  # cores in use, by kind of process

    def acked(self, kind: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.status == self.expected and kind in (None, s.kind)]

    def rate(self, kind: str | None = None) -> float:
        return len(self.acked(kind)) / self.seconds

    def latency_ms(self, pct: float, kind: str | None = None) -> float:
        return percentile([s.latency * 1000 for s in self.acked(kind)], pct)

    def refused(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for s in self.sent:
            if s.status != self.expected:
                counts[s.status] = counts.get(s.status, 0) + 1
        return counts


def percentile(values: list[float], pct: float) -> float:
    """Nearest rank; math.inf counts (a delivery that never became a ticket)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


# Requests built before a load, per second of it and in all: above what this stack
# answers, so senders seldom build one while the clock runs.
PREBUILT_PER_SECOND = 1500
PREBUILT_MAX = 40000


def http_request(request: Request) -> bytes:
    """The whole HTTP/1.1 request, as bytes ready to send."""
    lines = [f"POST {request.path} HTTP/1.1", f"Host: {HOST}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    lines.append(f"Content-Length: {len(request.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + request.body


class Connection:
    """One keep-alive HTTP/1.1 connection that sends prepared bytes and reads just the
    status, the body (by Content-Length) and whether the server will close: the senders
    share the bench's process and the server's cores, so they do as little as they can."""

    def __init__(self, port: int):
        self.sock = socket.create_connection((HOST, port), timeout=REQUEST_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def exchange(self, raw: bytes) -> tuple[int, bytes, bool]:
        """(status, body, the server keeps the connection open)."""
        self.sock.sendall(raw)
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the response")
            buffer += chunk
        head = buffer[:end].decode("latin-1").lower()
        status = int(head[9:12])
        length = 0
        keep = True
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name == "content-length":
                length = int(value)
            elif name == "connection" and "close" in value:
                keep = False
        while len(buffer) < end + 4 + length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed in the middle of the response")
            buffer += chunk
        body = buffer[end + 4 : end + 4 + length]
        self.buffer = buffer[end + 4 + length :]
        return status, body, keep

    def close(self) -> None:
        with suppress(OSError):
            self.sock.close()


def load(
    port: int,
    make: Callable[[random.Random], Request],
    *,
    senders: int,
    seconds: float,
    rate: float = 0.0,
    limit: int = 0,
    seed: int = 0,
    groups: dict[int, str] | None = None,
) -> Phase:
    """`senders` threads, each on one keep-alive connection, send until `seconds` have
    passed (or `limit` requests in all). At rate 0 each sends its next request as soon
    as the last is answered; at a rate they share it, each request due at a fixed time,
    its latency counted from then (a late sender does not hide the wait). The requests
    are built and signed before the clock starts."""
    limit = limit or int(seconds * 20000) + senders
    budget = itertools.count()
    clock: dict[str, float] = {}  # "start": when the gate opened (perf_counter)
    cpu_before: dict[str, float] = {}
    per_sender = min(
        limit,
        int(rate * seconds) + senders if rate else int(seconds * PREBUILT_PER_SECOND),
        PREBUILT_MAX,
    )
    per_sender = -(-per_sender // senders)  # rounded up
    prepared: list[list[tuple[Request, bytes]]] = []
    for index in range(senders):
        rng = random.Random(seed * 1000 + index)
        batch = [make(rng) for _ in range(per_sender)]
        prepared.append([(request, http_request(request)) for request in batch])

    def open_gate() -> None:  # run by one thread once all are connected, before any goes
        cpu_before.update(cpu_snapshot(groups or {}))
        clock["start"] = time.perf_counter()

    start_gate = threading.Barrier(senders + 1, action=open_gate)
    results: list[list[Sent]] = [[] for _ in range(senders)]
    errors: list[BaseException] = []

    def sender(index: int) -> None:
        rng = random.Random(seed * 1000 + index + 500)
        out = results[index]
        ready = iter(prepared[index])
        conn: Connection | None = Connection(port)
        try:
            start_gate.wait(timeout=READY_TIMEOUT)
            start = clock["start"]
            deadline = start + seconds
            for position in itertools.count():
                due = start + (position * senders + index) / rate if rate else 0.0
                if due:
                    if due >= deadline:
                        break
                    pause = due - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                # Paced, a request due before the deadline is sent however late its
                # sender woke (it was offered; its wait counts in its latency).
                if (not due and time.perf_counter() >= deadline) or next(budget) >= limit:
                    break
                request, raw = next(ready, (None, b""))
                if request is None:  # more than was built: build one now
                    request = make(rng)
                    raw = http_request(request)
                began = time.perf_counter()
                wall = time.time() - (began - due if due else 0.0)
                status, data = 0, b""
                try:
                    if conn is None:
                        conn = Connection(port)
                    status, data, keep = conn.exchange(raw)
                    if not keep:
                        conn.close()
                        conn = None
                except (OSError, ValueError):
                    if conn is not None:
                        conn.close()
                    conn = None
                latency = time.perf_counter() - (due or began)
                ids: tuple[int, ...] = ()
                if status == 200 and request.kind != "bare":
                    ids = tuple(json.loads(data)["delivery_ids"])
                out.append(Sent(request.kind, request.key, wall, latency, status, ids))
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            start_gate.abort()
        finally:
            if conn is not None:
                conn.close()

    threads = [
        threading.Thread(target=sender, args=(index,), name=f"sender-{index}", daemon=True)
        for index in range(senders)
    ]
    for thread in threads:
        thread.start()
    with suppress(threading.BrokenBarrierError):
        start_gate.wait(timeout=READY_TIMEOUT)
    for thread in threads:
        thread.join(timeout=seconds + 2 * REQUEST_TIMEOUT + READY_TIMEOUT)
    finished = time.perf_counter()
    if errors:
        raise BenchError(f"a sender failed: {errors[0]!r}")
    if any(thread.is_alive() for thread in threads) or "start" not in clock:
        raise BenchError("a sender did not finish in time")
    seconds_taken = finished - clock["start"]
    cpu = cpu_used(cpu_before, cpu_snapshot(groups or {}), seconds_taken)
    # Paced, every request was due within `seconds`: the rate is what was acknowledged
    # of them over that window (how late the answers came is in the latencies). Unpaced,
    # it is over the whole time, the last answers included.
    window = seconds if rate else seconds_taken
    return Phase([s for out in results for s in out], window, 0, cpu)


def webhook_load(port: int, requests: Requests, **kwargs) -> Phase:
    phase = load(port, requests.webhook, **kwargs)
    phase.expected = 200
    return phase


def bare_load(port: int, requests: Requests, **kwargs) -> Phase:
    phase = load(port, requests.bare, **kwargs)
    phase.expected = 201
    return phase


# ---- delivery → ticket --------------------------------------------------------------


@dataclass
class Tickets:
    """What became of one phase's acknowledged deliveries."""

    e2e_ms: list[float]  # client send → processed_at; math.inf when no ticket came of it
    queue_ms: list[float]  # acknowledged (client) → the ticket's transaction began
    work_ms: list[float]  # the ticket's transaction began → processed_at
    missing: dict[str, int] = field(default_factory=dict)
    drain_seconds: float = 0.0
    worker_rate: float = 0.0  # tickets per second over the phase and its drain
    sessions: int = -1  # PostgreSQL sessions opened during the phase and its drain

    def e2e(self, pct: float) -> float:
        return percentile(self.e2e_ms, pct)


def tickets_wait(phase: Phase, fixtures: Fixtures, drain_timeout: float) -> Tickets:
    """Wait (bounded) until every acknowledged delivery is processed, then match each
    with its mention and ticket, looked up by the post's id."""
    from django.db.models import Q

    from connectors.models import DeliveryStatus, RawDelivery
    from tickets.models import Mention

    acked = phase.acked()
    ids = [delivery_id for s in acked for delivery_id in s.delivery_ids]
    began = time.monotonic()
    while True:
        pending = RawDelivery.objects.filter(pk__in=ids, status=DeliveryStatus.PENDING).count()
        if not pending or time.monotonic() - began > drain_timeout:
            break
        time.sleep(POLL_INTERVAL)
    drained = time.monotonic() - began
    deliveries = {
        pk: (status, processed_at)
        for pk, status, processed_at in RawDelivery.objects.filter(pk__in=ids).values_list(
            "pk", "status", "processed_at"
        )
    }
    channel_of = {"x": fixtures.x_channel_id, "meta": fixtures.fb_channel_id}
    mentions = {}
    for kind, channel_id in channel_of.items():
        keys = [s.key for s in acked if s.kind == kind]
        for external_id, received_at, ticket_id in Mention.objects.filter(
            Q(channel_id=channel_id) & Q(external_id__in=keys)
        ).values_list("external_id", "received_at", "ticket_id"):
            mentions[(kind, external_id)] = (received_at, ticket_id)
    result = Tickets([], [], [], drain_seconds=drained)
    last = 0.0
    for s in acked:
        status, processed_at = deliveries.get(s.delivery_ids[0], ("lost", None))
        mention = mentions.get((s.kind, s.key))
        problem = None
        if status == DeliveryStatus.PENDING:
            problem = "still pending"
        elif status != DeliveryStatus.PROCESSED:
            problem = f"delivery {status}"
        elif mention is None or mention[1] is None:
            problem = "no mention or ticket"
        if problem:
            result.missing[problem] = result.missing.get(problem, 0) + 1
            result.e2e_ms.append(math.inf)
            continue
        done = processed_at.timestamp()
        began_at = mention[0].timestamp()
        last = max(last, done)
        result.e2e_ms.append((done - s.wall) * 1000)
        result.queue_ms.append((began_at - s.wall - s.latency) * 1000)
        result.work_ms.append((done - began_at) * 1000)
    first = min((s.wall for s in acked), default=0.0)
    if last > first:
        result.worker_rate = len(result.work_ms) / (last - first)
    return result


# ---- a round ------------------------------------------------------------------------


@dataclass
class Round:
    bare: Phase
    hooks: Phase
    tickets: Tickets


def warm_up(stack: Stack, requests: Requests, fixtures: Fixtures, senders: int) -> None:
    """A few requests of each kind, every one checked: answered, processed, a ticket."""
    for name, run in (("bare insert", bare_load), ("webhooks", webhook_load)):
        count = WARMUP_PER_SENDER * senders
        phase = run(stack.port, requests, senders=senders, seconds=30, limit=count)
        if phase.refused() or len(phase.sent) != count:
            raise BenchError(f"warm-up {name}: {len(phase.sent)} sent, refused {phase.refused()}")
        if name == "webhooks":
            tickets = tickets_wait(phase, fixtures, READY_TIMEOUT)
            if tickets.missing:
                raise BenchError(
                    f"warm-up deliveries did not all become tickets: {tickets.missing}\n"
                    + stack.worker.log_tail()
                )
    stack.check()


def round_run(stack: Stack, requests: Requests, fixtures: Fixtures, args, number: int) -> Round:
    common = {
        "senders": args.senders,
        "seconds": args.seconds,
        "seed": number,
        "groups": stack.groups,
    }
    bare = bare_load(stack.port, requests, **common)
    stack.check()
    sessions = database_sessions()
    hooks = webhook_load(stack.port, requests, rate=args.rate, **common)
    stack.check()
    tickets = tickets_wait(hooks, fixtures, args.drain_timeout)
    time.sleep(0.6)  # PostgreSQL publishes a session's statistics within 0.5 s
    tickets.sessions = database_sessions() - sessions
    stack.check()
    return Round(bare, hooks, tickets)


# ---- report -------------------------------------------------------------------------


def median(values) -> float:
    return statistics.median(list(values))


def ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "never"
    return f"{value:.1f}"


def round_line(number: int, rnd: Round) -> str:
    missing = sum(rnd.tickets.missing.values())
    return (
        f"{number:>5} {rnd.hooks.rate():>8.1f} {rnd.bare.rate():>8.1f} "
        f"{rnd.hooks.rate() / rnd.bare.rate():>6.2f}  "
        f"{ms(rnd.hooks.latency_ms(50)):>6}/{ms(rnd.hooks.latency_ms(99)):<7} "
        f"{ms(rnd.bare.latency_ms(50)):>6}/{ms(rnd.bare.latency_ms(99)):<7} "
        f"{ms(rnd.tickets.e2e(50)):>7}/{ms(rnd.tickets.e2e(99)):<8} "
        f"{rnd.tickets.worker_rate:>7.1f} {missing:>7}"
    )


ROUND_HEADER = (
    f"{'round':>5} {'hooks/s':>8} {'bare/s':>8} {'ratio':>6}  {'ack p50/p99 ms':>14} "
    f"{'bare p50/p99':>14} {'to ticket p50/p99':>16} {'tkt/s':>7} {'missing':>7}"
)


def cpu_line(cpu: dict[str, float]) -> str:
    if not cpu:
        return "(not measured: no /proc)"
    order = ["gunicorn", "celery", "postgres", "redis", "senders (this process)", "other"]
    order += ["interrupts", "exited"]
    shown = [f"{kind} {cpu[kind]:.2f}" for kind in order if kind in cpu]
    return ", ".join(shown) + f"; idle {cpu.get('idle', 0.0):.2f}"


def gunicorn_settings(workers: int, threads: int) -> tuple[int, int]:
    """The workers and threads gunicorn_conf.py makes of these options (0: not given),
    read from the file itself, in a copy of the environment it would see."""
    saved = dict(os.environ)
    try:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = "unused"  # the file makes one otherwise
        for name, value in (("WEB_CONCURRENCY", workers), ("WEB_THREADS", threads)):
            if value:
                os.environ[name] = str(value)
        conf = runpy.run_path(str(ROOT / GUNICORN_CONF))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return conf["workers"], conf["threads"]


def web_label(workers: int, threads: int) -> str:
    workers, threads = gunicorn_settings(workers, threads)
    kind = "sync workers" if threads == 1 else f"gthread workers x {threads} threads"
    return f"{workers} {kind} ({GUNICORN_CONF})"


def report(rounds: list[Round], args, database: str) -> None:

    def both(figure: Callable[[Phase], float]) -> tuple[float, float]:
        return median(figure(r.hooks) for r in rounds), median(figure(r.bare) for r in rounds)

    rate = both(lambda p: p.rate())
    p50 = both(lambda p: p.latency_ms(50))
    p99 = both(lambda p: p.latency_ms(99))
    e2e50 = median(r.tickets.e2e(50) for r in rounds)
    e2e99 = median(r.tickets.e2e(99) for r in rounds)
    workers = median(r.tickets.worker_rate for r in rounds)
    load_kind = f"paced at {args.rate:g}/s" if args.rate else "each as fast as answered"
    print()
    print(
        f"median of {len(rounds)} round(s): {args.seconds:g} s of each load, {args.senders} "
        f"senders ({load_kind}), gunicorn {web_label(args.web_workers, args.web_threads)}, "
        f"{WORKERS} Celery worker processes, {database}"
    )
    print(f"{'figure':<32} {'webhooks':>10} {'bare insert':>12} {'ratio':>7}")
    rows = [
        ("acknowledged/s (bare: rows/s)", rate, "{:.1f}"),
        ("p50 acknowledgement (ms)", p50, "{:.1f}"),
        ("p99 acknowledgement (ms)", p99, "{:.1f}"),
    ]
    for label, (hooks, bare), fmt in rows:
        print(f"{label:<32} {fmt.format(hooks):>10} {fmt.format(bare):>12} {hooks / bare:>7.2f}")
    print(f"{'p50 delivery -> ticket (ms)':<32} {ms(e2e50):>10} {'-':>12} {'-':>7}")
    print(f"{'p99 delivery -> ticket (ms)':<32} {ms(e2e99):>10} {'-':>12} {'-':>7}")
    print(f"{'tickets/s by the workers':<32} {workers:>10.1f} {'-':>12} {'-':>7}")

    last = sorted(rounds, key=lambda r: r.hooks.rate())[len(rounds) // 2]
    tickets = last.tickets
    queued = [percentile(tickets.queue_ms, pct) for pct in (50, 99)]
    written = [percentile(tickets.work_ms, pct) for pct in (50, 99)]
    print()
    print(
        "The round with the median webhook rate. Delivery -> ticket, p50/p99 ms: "
        f"acknowledged {ms(last.hooks.latency_ms(50))}/{ms(last.hooks.latency_ms(99))}, "
        f"then queued {ms(queued[0])}/{ms(queued[1])} (until the ticket's transaction began), "
        f"then {ms(written[0])}/{ms(written[1])} to commit it and mark the delivery processed; "
        f"the queue drained {tickets.drain_seconds:.1f} s after the load stopped."
    )
    if tickets.sessions >= 0:
        print(
            f"PostgreSQL sessions opened during the webhook load and its drain: "
            f"{tickets.sessions}, for {len(tickets.work_ms)} deliveries processed"
        )
    for kind, label in (("x", "X"), ("meta", "Meta")):
        print(
            f"  {label:<5} {last.hooks.rate(kind):>6.1f} acknowledged/s, "
            f"p50/p99 {ms(last.hooks.latency_ms(50, kind))}/{ms(last.hooks.latency_ms(99, kind))}"
            " ms"
        )
    print(
        f"CPU in use, in cores of {os.cpu_count()}, during each load:\n"
        f"  webhooks:    {cpu_line(last.hooks.cpu)}\n"
        f"  bare insert: {cpu_line(last.bare.cpu)}"
    )
    busy = max(
        (phase.cpu.get("other", 0.0) for r in rounds for phase in (r.hooks, r.bare)), default=0
    )
    if busy > BUSY_OTHER:
        print(
            f"  warning: other processes used up to {busy:.2f} cores during a load: the machine "
            "was not quiet, so these figures are low; run it again when it is"
        )
    for number, rnd in enumerate(rounds, 1):
        for name, phase in (("webhooks", rnd.hooks), ("bare insert", rnd.bare)):
            if phase.refused():
                print(f"  round {number} {name}: not acknowledged, by status: {phase.refused()}")
        if rnd.tickets.missing:
            print(f"  round {number}: deliveries without a ticket: {rnd.tickets.missing}")

    print()
    verdicts = [
        (f"acknowledged {rate[0]:.0f}/s", f">= {GOAL_RATE:.0f}/s", rate[0] >= GOAL_RATE),
        (
            f"p99 acknowledgement {p99[0]:.1f} ms",
            f"< {GOAL_ACK_P99_MS:.0f} ms",
            p99[0] < GOAL_ACK_P99_MS,
        ),
        (
            f"p99 delivery -> ticket {ms(e2e99)} ms",
            f"< {GOAL_E2E_P99_MS:.0f} ms",
            e2e99 < GOAL_E2E_P99_MS,
        ),
    ]
    for figure, goal, ok in verdicts:
        print(f"{figure} (goal {goal}): {'OK' if ok else 'BELOW GOAL'}")


# ---- profile ------------------------------------------------------------------------


PROFILE_FUNCTIONS = (
    rf"{re.escape(str(ROOT))}/(servicedesk|tickets|approvals|connectors)/"
    r"|celery/app/task\.py:\d+\(apply_async\)"
    r"|kombu/messaging\.py:\d+\(publish\)"
    r"|cryptography/fernet\.py:\d+\(decrypt\)"
    r"|django/db/backends/base/base\.py:\d+\(commit\)"
    r"|django/core/handlers/base\.py:\d+\(get_response\)"
)


@contextmanager
def timed_calls(target, name: str, totals: dict[str, list[float]], label: str) -> Iterator[None]:
    """Time every call of target.name (a module function or a class attribute)."""
    real = getattr(target, name)

    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            totals.setdefault(label, []).append(time.perf_counter() - began)

    setattr(target, name, wrapper)
    try:
        yield
    finally:
        setattr(target, name, real)


@contextmanager
def timed_sql(timings: list[tuple[str, float]]) -> Iterator[None]:
    from django.db import connection

    def timed(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timings.append((sql, time.perf_counter() - began))

    real_commit = connection._commit

    def timed_commit():
        began = time.perf_counter()
        try:
            return real_commit()
        finally:
            timings.append(("COMMIT", time.perf_counter() - began))

    connection._commit = timed_commit
    try:
        with connection.execute_wrapper(timed):
            yield
    finally:
        del connection._commit


def print_statements(timings: list[tuple[str, float]], count: int) -> None:
    per_statement: dict[str, list[float]] = {}
    for sql, seconds in timings:
        key = re.sub(r'"s\d+_x\d+"', '"sN"', " ".join(sql.split()))
        key = re.sub(r"IN \((%s, )+%s\)", "IN (%s, ...)", key)[:110]
        per_statement.setdefault(key, []).append(seconds)
    ranked = sorted(per_statement.items(), key=lambda item: -sum(item[1]))
    for sql, samples in ranked:
        print(f"  {len(samples) / count:>4.2f}x {sum(samples) / count * 1000:>6.3f} ms  {sql}")


def print_cprofile(profiler: cProfile.Profile, count: int, title: str) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(PROFILE_FUNCTIONS, 30)
    text = out.getvalue()
    print(f"\n{title}")
    if "   ncalls" in text:
        print(text[text.index("   ncalls") :].replace(SITE, "").replace(str(ROOT) + "/", ""))
    areas: dict[str, float] = {}
    for (filename, _, _), (_, _, own_seconds, _, _) in stats.stats.items():
        area = profile_area(filename)
        areas[area] = areas.get(area, 0.0) + own_seconds
    total = sum(areas.values())
    print("Own time by area (profiler on), per item:")
    ranked = sorted(areas.items(), key=lambda item: -item[1])
    shown = [(area, seconds) for area, seconds in ranked if seconds >= 0.02 * total]
    shown.append(("the rest", total - sum(seconds for _, seconds in shown)))
    for area, seconds in shown:
        print(f"  {seconds / count * 1000:>6.2f} ms  {seconds / total:>4.0%}  {area}")


def backend_cpu_seconds() -> float:
    """CPU seconds this process's PostgreSQL session has used (Linux /proc; else 0)."""
    from django.db import connection

    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def profile(fixtures: Fixtures, requests: Requests, count: int) -> None:
    """In this process, no servers: the webhook view through django.test.Client, its
    wake-up going to Redis for real; then the workers' work, `deliveries_drain`, on the
    deliveries just stored, in batches as a worker claims them. CPU is this process's
    (time.process_time) and its PostgreSQL session's (/proc), per request or delivery."""
    from django.test import Client

    import connectors.crypto
    import connectors.services.deliveries
    import connectors.services.ingest
    import connectors.views
    import servicedesk.audit
    from connectors.platforms.meta import _MetaConnector
    from connectors.platforms.x import XConnector
    from connectors.services import deliveries_drain

    client = Client()
    rng = random.Random(7)

    def send(request: Request) -> int:
        extra = {
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in request.headers.items()
            if name != "Content-Type"
        }
        response = client.post(
            request.path,
            data=request.body,
            content_type=request.headers["Content-Type"],
            **extra,
        )
        if response.status_code != 200:
            raise BenchError(f"{request.path} answered {response.status_code}")
        return response.json()["delivery_ids"][0]

    for make in (requests.x, requests.meta):  # warm: connections, first wake-up, imports
        for _ in range(20):
            send(make(rng))

    def part(parts: dict[str, list[float]], name: str, count: int) -> str:
        samples = parts.get(name, [])
        return f"{sum(samples) / count * 1000:.3f} ms ({len(samples) / count:.2f}x)"

    for label, make in (("X", requests.x), ("Meta", requests.meta)):
        batch = [make(rng) for _ in range(count)]
        timings: list[tuple[str, float]] = []
        parts: dict[str, list[float]] = {}
        views = connectors.views
        with (
            timed_sql(timings),
            timed_calls(views, "_connectors", parts, "connectors"),
            timed_calls(XConnector, "verify", parts, "verify"),
            timed_calls(_MetaConnector, "verify", parts, "verify"),
            timed_calls(connectors.crypto, "decrypt_secrets", parts, "decrypt"),
            timed_calls(views, "delivery_store_webhook", parts, "store"),
            timed_calls(views, "deliveries_wake", parts, "wake"),
        ):
            cpu, pg, began = time.process_time(), backend_cpu_seconds(), time.perf_counter()
            for request in batch:
                send(request)
            seconds = time.perf_counter() - began
            cpu, pg = time.process_time() - cpu, backend_cpu_seconds() - pg
        print(
            f"\n{label} webhook, acknowledgement path: {count / seconds:.0f} requests/s, "
            f"{seconds / count * 1000:.2f} ms a request in one thread (django.test.Client, "
            f"no HTTP server); CPU {cpu / count * 1000:.2f} ms in Python, "
            f"{pg / count * 1000:.2f} ms in PostgreSQL\n"
            f"  SQL through Django's cursor: {len(timings) / count:.1f} statements a request"
        )
        print_statements(timings, count)
        print(
            f"  _connectors() (the accounts, from the per-process cache): "
            f"{part(parts, 'connectors', count)}\n"
            f"  verify() (HMAC over the raw bytes): {part(parts, 'verify', count)}\n"
            f"    of which decrypt_secrets() (Fernet): {part(parts, 'decrypt', count)}\n"
            f"  delivery_store_webhook() (the one INSERT, autocommit, straight to psycopg): "
            f"{part(parts, 'store', count)}\n"
            f"  deliveries_wake() (a cache call at most every "
            f"{connectors.services.deliveries.WAKE_DEBOUNCE_SECONDS * 1000:.0f} ms): "
            f"{part(parts, 'wake', count)}"
        )

    profiler = cProfile.Profile()
    batch = [requests.webhook(rng) for _ in range(count)]
    profiler.enable()
    for request in batch:
        send(request)
    profiler.disable()
    print_cprofile(
        profiler,
        count,
        f"cProfile of {count} webhook requests (X and Meta), cumulative, "
        "the project's code and main steps:",
    )

    # The workers' side: every delivery stored above, drained here in batches.
    from connectors.models import DeliveryStatus, RawDelivery

    pending = RawDelivery.objects.filter(status=DeliveryStatus.PENDING)
    total = pending.count()
    first = total // 2
    deliveries = connectors.services.deliveries
    ingest = connectors.services.ingest
    timings = []
    parts = {}
    with (
        timed_sql(timings),
        timed_calls(deliveries, "delivery_claim", parts, "claim"),
        timed_calls(deliveries, "_parse", parts, "parse"),
        timed_calls(ingest, "_split", parts, "split"),
        timed_calls(ingest, "_new_threads_ingest", parts, "new"),
        timed_calls(ingest, "_apply_event", parts, "one"),
        timed_calls(servicedesk.audit, "audit_record", parts, "audit"),
        timed_calls(deliveries, "_outcomes_record", parts, "outcomes"),
    ):
        cpu, pg, began = time.process_time(), backend_cpu_seconds(), time.perf_counter()
        done = deliveries_drain(seconds=3600, batch=deliveries.DRAIN_BATCH)
        if done < first:
            raise BenchError(f"only {done} of {total} deliveries were processed")
        seconds = time.perf_counter() - began
        cpu, pg = time.process_time() - cpu, backend_cpu_seconds() - pg
    failed = RawDelivery.objects.exclude(status=DeliveryStatus.PROCESSED).count()
    if failed:
        raise BenchError(f"{failed} deliveries were not processed")
    print(
        f"\nProcessing (the drain task's body, deliveries_drain, batches of "
        f"{deliveries.DRAIN_BATCH}): {done / seconds:.0f} deliveries/s in one process, "
        f"{seconds / done * 1000:.2f} ms each; CPU {cpu / done * 1000:.2f} ms in Python, "
        f"{pg / done * 1000:.2f} ms in PostgreSQL; SQL "
        f"{sum(s for _, s in timings) / done * 1000:.2f} ms in "
        f"{len(timings) / done:.2f} round trips:"
    )
    print_statements(timings, done)
    print(
        f"  delivery_claim() (claim a batch, one attempt and a lease each): "
        f"{part(parts, 'claim', done)}\n"
        f"  _parse() (each delivery's platform format): {part(parts, 'parse', done)}\n"
        f"  _split() (which posts open a conversation): {part(parts, 'split', done)}\n"
        f"  _new_threads_ingest() (a batch's new conversations together): "
        f"{part(parts, 'new', done)}\n"
        f"    of which audit_record() (one event each): {part(parts, 'audit', done)}\n"
        f"  _apply_event() (everything else, one at a time): {part(parts, 'one', done)}\n"
        f"  _outcomes_record() (statuses and channel health): {part(parts, 'outcomes', done)}"
    )

    # A cProfile of the same work, on a fresh set of deliveries.
    more = [requests.webhook(rng) for _ in range(count)]
    for request in more:
        send(request)
    profiler = cProfile.Profile()
    profiler.enable()
    processed = deliveries_drain(seconds=3600)
    profiler.disable()
    print_cprofile(profiler, processed, f"cProfile of draining {processed} deliveries, cumulative:")


# ---- main ---------------------------------------------------------------------------


def teardown(stack, *, ready: bool, redis_url: str, database_url: str, keep_db: bool) -> None:
    """Whatever a run started, stopped; its Redis database emptied; its PostgreSQL
    database dropped unless kept. Also used by bench/load.py."""
    if stack is not None:
        stack.stop()
    if ready:
        from django.db import connections

        connections.close_all()
    try:
        redis_flush(redis_url)
    except BenchError as error:
        print(f"warning: {error}", file=sys.stderr)
    if not keep_db:
        database_drop(database_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="seconds of each load (default 10)"
    )
    parser.add_argument(
        "--senders", type=int, default=16, help="concurrent sender threads (default 16)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds (bare insert, webhooks, drain); default 1"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="pace the webhook load at this many deliveries/s in all (default: unpaced, "
        "each sender sends as soon as answered)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the workers to process the deliveries (default 60)",
    )
    parser.add_argument(
        "--web-workers",
        type=int,
        default=0,
        help="gunicorn workers (default: gunicorn_conf.py's, cores + 1)",
    )
    parser.add_argument(
        "--web-threads",
        type=int,
        default=0,
        help="threads per worker (default: gunicorn_conf.py's, 4; 1 runs sync workers)",
    )
    parser.add_argument(
        "--keep-db",
        action="store_true",
        help="leave the bench database (and its rows) in place afterwards",
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=300,
        default=0,
        metavar="N",
        help="instead: where a webhook's time goes, and its processing's (N of each, 300)",
    )
    args = parser.parse_args(argv)
    if min(args.senders, args.rounds) < 1 or min(args.web_workers, args.web_threads) < 0:
        parser.error("--senders and --rounds must be at least 1, --web-* not negative")
    if not 0 < args.seconds <= 600 or not 0 <= args.drain_timeout <= 600 or args.rate < 0:
        parser.error("--seconds: (0, 600], --drain-timeout: [0, 600], --rate >= 0")

    database_url = webhooks_database_url()
    redis_url = bench_redis_url()
    database = f"PostgreSQL {where(database_url)}, Redis {urlsplit(redis_url).netloc}/{REDIS_DB}"
    created = database_create(database_url)
    redis_flush(redis_url)
    print(
        f"bench database {where(database_url)}: {'created' if created else 'reused'}, "
        f"migrating and emptying it; Redis database {REDIS_DB} flushed",
        flush=True,
    )
    ready = False
    stack: Stack | None = None
    try:
        django_setup(database_url, redis_url, test_client=bool(args.profile))
        ready = True
        fixtures = fixtures_prepare()
        requests = Requests(fixtures)
        if args.profile:
            profile(fixtures, requests, args.profile)
            return 0
        with tempfile.TemporaryDirectory(prefix="servicedesk-bench-") as logs:
            stack = stack_start(
                Path(logs),
                web_workers=args.web_workers,
                web_threads=args.web_threads,
            )
            print(
                f"gunicorn on {HOST}:{stack.port} "
                f"({web_label(args.web_workers, args.web_threads)}), "
                f"celery worker --concurrency {WORKERS}; warming up",
                flush=True,
            )
            warm_up(stack, requests, fixtures, args.senders)
            rounds = []
            print("\n" + ROUND_HEADER, flush=True)
            for number in range(args.rounds):
                rounds.append(round_run(stack, requests, fixtures, args, number + 1))
                print(round_line(number + 1, rounds[-1]), flush=True)
            stack.stop()
            stack = None
        report(rounds, args, database)
    finally:
        teardown(
            stack, ready=ready, redis_url=redis_url, database_url=database_url, keep_db=args.keep_db
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        sys.exit(f"bench failed: {error}")
