"""`make bench`: a locust load test of the production stack on 127.0.0.1, beside bare Django.

The stack: gunicorn with the production settings (`servicedesk/gunicorn_conf.py`:
threaded workers, as many as it picks for this machine), `celery worker --concurrency 2` on Redis
database 14, PostgreSQL, all with DEBUG off. Locust (as a library, in its own process:
gevent must patch the standard library before anything else is imported) runs N users
that each send their next request as soon as the last is answered, for a fixed time per
phase. Each round has five phases:

- bare insert (the ingest baseline): `POST /bench/bare-insert/`, one INSERT;
- webhooks: signed X and Meta deliveries; this process polls the database for the
  tickets, so a delivery counts when its ticket can be read (delivery -> ticket);
- webhooks paced at a rate the workers keep up with (80% of the round's saturated
  end-to-end rate unless `--paced-rate`): the delivery -> ticket latency of a stack
  that is not behind;
- bare read (the reads baseline): `GET /bench/bare-read/<id>/`, token auth and one
  SELECT by primary key;
- reads: `GET /api/v1/tickets/` and `GET /api/v1/tickets/<id>/` as an agent, half each.

See bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402 (ROOT must be on sys.path first)
    BenchError,
    bench_database_url,
    database_create,
    where,
)
from bench.webhooks import (  # noqa: E402
    HOST,
    READY_TIMEOUT,
    Fixtures,
    Phase,
    Requests,
    Sent,
    Server,
    Stack,
    cpu_used,
    free_port,
    gunicorn_env,
    percentile,
    redis_flush,
    stack_wait_ready,
    teardown,
    web_label,
)
from bench.webhooks import (  # noqa: E402
    cpu_snapshot as webhook_cpu_snapshot,
)

REDIS_DB = 14  # the webhook bench flushes 13, CI uses 15
AGENT = "bench-load-agent"
BARE_READ_PATH = "/bench/bare-read/{id}/"
LIST_PATH = "/api/v1/tickets/"
DETAIL_PATH = "/api/v1/tickets/{id}/"
GUNICORN_CONF = "servicedesk/gunicorn_conf.py"
WORKERS = 2  # Celery worker processes, as the Procfile runs them
PACED_SHARE = 0.8
POLL_SECONDS = 0.05  # how often this process looks for new tickets
# Mentions commit out of id order (two workers, batches of 50): every poll looks again at
# this many ids below the highest seen, far more than can be in flight.
POLL_WINDOW = 1000
WARMUP_SECONDS = 4.0
IDS_FOR_READS = 2000
GENERATOR = (
    "import locust, sys; from bench.load import generate; "  # locust first: gevent patches
    "sys.exit(generate(sys.argv[1], sys.argv[2]))"
)


# ---- the served app: every route, plus the read baseline -----------------------------


def _bare_read_view():
    from django.db import connection
    from rest_framework.response import Response
    from rest_framework.views import APIView

    class BareReadApi(APIView):
        """The least an authenticated API read costs: the project's authentication,
        permission and renderer, and one SELECT of one ticket row by primary key."""

        def get(self, request, ticket_id: int):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id, state, deadline FROM tickets_ticket WHERE id = %s", [ticket_id]
                )
                row = cursor.fetchone()
            return Response({"id": row[0], "state": row[1], "deadline": row[2]})

    return BareReadApi.as_view()


def __getattr__(name: str):
    """What gunicorn and Django ask this module for when it serves the bench: the WSGI
    application (`bench.load:application`, made when a worker imports it, as
    servicedesk.wsgi is) and, as the URLconf, the bench's routes plus the read baseline.
    Built on demand so that running this file or the load generator never imports Django."""
    if name == "application":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
        from django.conf import settings
        from django.core.wsgi import get_wsgi_application

        app = get_wsgi_application()
        settings.ROOT_URLCONF = __name__
        globals()["application"] = app
        return app
    if name == "urlpatterns":
        from django.urls import include, path

        patterns = [
            path("bench/bare-read/<int:ticket_id>/", _bare_read_view()),
            path("", include("bench.urls")),
        ]
        globals()["urlpatterns"] = patterns
        return patterns
    if name in ("handler404", "handler500"):
        return f"servicedesk.views.{'not_found' if name == 'handler404' else 'error'}"
    raise AttributeError(name)


# ---- set-up -------------------------------------------------------------------------


def load_database_url() -> str:
    """The ingest bench's server and credentials, its own database: `…_load_bench`."""
    parts = urlsplit(bench_database_url())
    name = parts.path.lstrip("/").removesuffix("_bench") + "_load_bench"
    return urlunsplit(parts._replace(path="/" + name))


def load_redis_url() -> str:
    """REDIS_URL's server (else 127.0.0.1:6379), database 14: the bench flushes it."""
    url = os.environ.get("REDIS_URL", "")
    if not url.startswith(("redis://", "rediss://")):
        url = "redis://127.0.0.1:6379/0"
    return urlunsplit(urlsplit(url)._replace(path=f"/{REDIS_DB}"))


def agent_token() -> str:
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from servicedesk.roles import AGENT as AGENT_ROLE

    user, _ = User.objects.get_or_create(username=AGENT)
    user.groups.set([Group.objects.get(name=AGENT_ROLE)])
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def stack_start(logs: Path, *, web_concurrency: int, web_threads: int) -> Stack:
    """gunicorn as production runs it (`-c servicedesk/gunicorn_conf.py`) on a free port,
    and a Celery worker as the Procfile runs it (named, so that it can be pinged)."""
    port = free_port()
    env = gunicorn_env(logs, port, workers=web_concurrency, threads=web_threads)
    web = Server(
        "gunicorn",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            GUNICORN_CONF,
            "--no-control-socket",
            "bench.load:application",
        ],
        logs / "gunicorn.log",
        env=env,
    )
    nodename = f"bench-load-{uuid.uuid4().hex[:8]}@localhost"
    worker = Server(
        "celery worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "servicedesk",
            "worker",
            "--loglevel=WARNING",
            f"--concurrency={WORKERS}",
            "-n",
            nodename,
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


# ---- CPU --------------------------------------------------------------------------


def cpu_snapshot(groups: dict[int, str]) -> dict[str, float]:
    """The webhook bench's, this process being locust's parent (the ticket poller). Each
    process's reaped children count with it: gunicorn replaces a worker every
    WEB_MAX_REQUESTS requests, and the time of one that ended stays in its master's."""
    return webhook_cpu_snapshot(groups, me="locust")


# ---- the load generator (a separate process; locust imported first) -----------------


@dataclass
class Load:
    """One phase for the generator: what to send, how many users, how long, how fast."""

    kind: str  # "bare insert", "webhooks", "bare read", "reads" or "warm-up"
    port: int
    seconds: float
    users: int
    fixtures: dict
    agent_token: str
    ticket_ids: list[int]
    groups: dict[str, str]  # process group id -> name, for the CPU figures
    rate: float = 0.0  # requests/s in all; 0: each user sends when answered
    first_number: int = 1  # makes every post id unique across phases
    seed: int = 0


def generate(config_path: str, result_path: str) -> int:
    """Run one phase with locust's LocalRunner and write every request's outcome."""
    import gevent
    from locust import FastHttpUser, constant, task
    from locust.env import Environment

    load = Load(**json.loads(Path(config_path).read_text()))
    requests = Requests(Fixtures(**load.fixtures))
    requests.numbers = itertools.count(load.first_number)
    read_headers = {"Authorization": f"Token {load.agent_token}", "Accept": "application/json"}
    records: list[list] = []
    errors: list[str] = []
    users = itertools.count()
    clock = {"start": time.time()}

    def build(rng: random.Random, turn: int) -> tuple[str, str, str, bytes | None, dict, str]:
        """(kind, key, method, body, headers, path) of the next request."""
        kind = load.kind
        if kind == "warm-up":
            kind = ("bare insert", "webhooks", "bare read", "reads")[turn % 4]
            turn //= 4
        if kind == "webhooks":
            request = requests.webhook(rng)
            return request.kind, request.key, "POST", request.body, request.headers, request.path
        if kind == "bare insert":
            request = requests.bare(rng)
            return "bare", request.key, "POST", request.body, request.headers, request.path
        ticket_id = rng.choice(load.ticket_ids)
        if kind == "bare read":
            path = BARE_READ_PATH.format(id=ticket_id)
            return "bare read", "", "GET", None, read_headers, path
        if turn % 2:
            return "detail", "", "GET", None, read_headers, DETAIL_PATH.format(id=ticket_id)
        return "list", "", "GET", None, read_headers, LIST_PATH

    class Desk(FastHttpUser):
        host = f"http://{HOST}:{load.port}"
        wait_time = constant(0)
        connection_timeout = 10.0
        network_timeout = 30.0

        def on_start(self):
            self.index = next(users)
            self.rng = random.Random(load.seed * 1000 + self.index)
            self.sent = 0

        @task
        def send(self):
            due = 0.0
            if load.rate:
                # Each request due at a fixed time, its latency counted from then: a user
                # that falls behind does not hide the wait (as the webhook bench paces).
                due = clock["start"] + (self.sent * load.users + self.index) / load.rate
                if due >= clock["start"] + load.seconds:
                    gevent.sleep(load.seconds)  # this user is done: wait for the end
                    return
                pause = due - time.time()
                if pause > 0:
                    gevent.sleep(pause)
            kind, key, method, body, headers, path = build(self.rng, self.index + self.sent)
            self.sent += 1
            label = kind if kind in ("list", "detail", "bare read") else path
            context = {"kind": kind, "key": key, "due": due}
            self.client.request(
                method, path, data=body, headers=headers, name=label, context=context
            )

    def on_request(response_time, response, context, exception, start_time, **_):
        status = getattr(response, "status_code", 0) or 0
        if exception is not None and status < 400 and len(errors) < 5:
            errors.append(repr(exception))
        due = context.get("due") or 0.0
        waited = max(0.0, start_time - due) if due else 0.0
        sent = due or start_time
        records.append(
            [context["kind"], context["key"], sent, waited + response_time / 1000, status]
        )

    def on_user_error(user_instance, exception, tb, **_):
        if len(errors) < 5:
            errors.append(repr(exception))

    env = Environment(user_classes=[Desk], host=Desk.host)
    env.events.request.add_listener(on_request)
    env.events.user_error.add_listener(on_user_error)
    runner = env.create_local_runner()
    groups = {int(pid): name for pid, name in load.groups.items()}
    cpu_before = cpu_snapshot(groups)
    clock["start"] = time.time()
    runner.start(load.users, spawn_rate=min(100, load.users * 10))
    gevent.sleep(load.seconds)
    ended = time.time()
    cpu = cpu_used(cpu_before, cpu_snapshot(groups), ended - clock["start"])
    runner.quit()
    runner.greenlet.join(timeout=10)
    result = {"start": clock["start"], "end": ended, "records": records, "errors": errors}
    result["cpu"] = cpu
    Path(result_path).write_text(json.dumps(result))
    return 0


# ---- the phases, from this process ----------------------------------------------------


class TicketWatch(threading.Thread):
    """Polls the database for new tickets (each with its first mention) every
    POLL_SECONDS and notes when each post's ticket was first seen: a delivery is
    ingested end to end when its ticket can be read."""

    def __init__(self):
        super().__init__(name="ticket-watch", daemon=True)
        self.seen: dict[str, float] = {}
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.polls = 0

    def run(self) -> None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT coalesce(max(id), 0) FROM tickets_mention")
                (top,) = cursor.fetchone()
                recent: dict[int, str] = {}
                while not self.stopping.is_set():
                    floor = top - POLL_WINDOW
                    recent = {pk: key for pk, key in recent.items() if pk > floor}
                    cursor.execute(
                        "SELECT m.id, m.external_id FROM tickets_mention m "
                        "JOIN tickets_ticket t ON t.id = m.ticket_id "
                        "WHERE m.id > %s AND NOT (m.id = ANY(%s))",
                        [floor, list(recent)],
                    )
                    rows = cursor.fetchall()
                    now = time.time()
                    self.polls += 1
                    for pk, key in rows:
                        recent[pk] = key
                        self.seen.setdefault(key, now)
                        top = max(top, pk)
                    self.stopping.wait(POLL_SECONDS)
        except BaseException as error:  # reported by the main thread
            self.error = error
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
        if self.error is not None:
            raise BenchError(f"the ticket poller failed: {self.error!r}")


@dataclass
class Ingested:
    """What became of one phase's acknowledged deliveries, as the poller saw it."""

    e2e_ms: list[float]  # the send (or when it was due) -> its ticket seen; inf if never
    rate: float  # tickets per second, from the first send to the last ticket seen
    missing: int
    drain_seconds: float  # after the load stopped, until the last ticket was seen
    wal_bytes: int = 0  # WAL the server wrote meanwhile (all its databases)

    @property
    def wal_per_ticket(self) -> float:
        seen = sum(1 for value in self.e2e_ms if math.isfinite(value))
        return self.wal_bytes / seen if seen else math.nan

    def e2e(self, pct: float) -> float:
        return percentile(self.e2e_ms, pct)


@dataclass
class RoundResult:
    phases: dict[str, Phase] = field(default_factory=dict)
    ingested: dict[str, Ingested] = field(default_factory=dict)
    paced_rate: float = 0.0


class Bench:
    def __init__(self, stack: Stack, fixtures: Fixtures, token: str, args, logs: Path):
        self.stack = stack
        self.fixtures = fixtures
        self.token = token
        self.args = args
        self.logs = logs
        self.numbers = itertools.count(1)

    def ticket_ids(self) -> list[int]:
        from tickets.models import Ticket

        ids = list(Ticket.objects.values_list("pk", flat=True))
        return random.Random(len(ids)).sample(ids, min(IDS_FOR_READS, len(ids)))

    def run(self, kind: str, *, seconds: float, rate: float = 0.0, seed: int = 0) -> Phase:
        """One phase in a locust process; its records as the webhook bench's Phase."""
        groups = {str(pid): name for pid, name in self.stack.groups.items()}
        groups[str(os.getpgrp())] = "poller"  # this process: the ticket poller
        number = next(self.numbers)
        load = Load(
            kind=kind,
            port=self.stack.port,
            seconds=seconds,
            users=self.args.users,
            fixtures=asdict(self.fixtures),
            agent_token=self.token,
            ticket_ids=self.ticket_ids() if kind in ("reads", "bare read", "warm-up") else [],
            groups=groups,
            rate=rate,
            first_number=number * 10_000_000,
            seed=seed,
        )
        config = self.logs / f"phase-{number}.json"
        result_path = self.logs / f"phase-{number}-result.json"
        config.write_text(json.dumps(asdict(load)))
        generator = Server(
            "locust",
            [sys.executable, "-c", GENERATOR, str(config), str(result_path)],
            self.logs / f"locust-{number}.log",
        )
        try:
            generator.process.wait(timeout=seconds + READY_TIMEOUT + 30)
        except BaseException:
            generator.stop()
            raise
        if generator.process.returncode != 0 or not result_path.exists():
            raise BenchError(f"the load generator failed:\n{generator.log_tail()}")
        result = json.loads(result_path.read_text())
        if result["errors"]:
            raise BenchError(f"{kind}: requests failed: {result['errors']}")
        self.stack.check()
        sent = [
            Sent(kind, key, wall, latency, status)
            for kind, key, wall, latency, status in result["records"]
        ]
        first = min((s.wall for s in sent), default=result["start"])
        expected = 201 if kind == "bare insert" else 200
        return Phase(sent, result["end"] - first, expected, result["cpu"])

    def ingest(self, kind: str, *, seconds: float, rate: float = 0.0, seed: int = 0):
        """A phase of deliveries, watched until every acknowledged one is a ticket."""
        watch = TicketWatch()
        wal = wal_position()
        watch.start()
        try:
            phase = self.run(kind, seconds=seconds, rate=rate, seed=seed)
            ended = time.time()
            acked = [s for s in phase.acked() if s.kind in ("x", "meta")]
            deadline = time.monotonic() + self.args.drain_timeout
            while time.monotonic() < deadline and any(s.key not in watch.seen for s in acked):
                time.sleep(POLL_SECONDS)
            time.sleep(2 * POLL_SECONDS)
        finally:
            watch.stop()
        wal = wal_position() - wal
        seen = [watch.seen.get(s.key) for s in acked]
        e2e = [(at - s.wall) * 1000 if at else math.inf for s, at in zip(acked, seen, strict=True)]
        found = [at for at in seen if at]
        first = min((s.wall for s in acked), default=0.0)
        last = max(found, default=first)
        rate_seen = len(found) / (last - first) if last > first else 0.0
        missing = len(acked) - len(found)
        return phase, Ingested(e2e, rate_seen, missing, max(0.0, last - ended), wal)


def wal_position() -> int:
    """Bytes of WAL the PostgreSQL server has written so far."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
        return int(cursor.fetchone()[0])


def warm_up(bench: Bench) -> None:
    """Every kind of request a few seconds, every one answered and every delivery a
    ticket: each gunicorn worker has then imported the views and opened its connection."""
    phase, ingested = bench.ingest("warm-up", seconds=WARMUP_SECONDS)
    refused = [s.status for s in phase.sent if s.status != (201 if s.kind == "bare" else 200)]
    if refused or not phase.sent:
        raise BenchError(f"warm-up: {len(refused)} of {len(phase.sent)} requests refused")
    if ingested.missing:
        raise BenchError(f"warm-up: {ingested.missing} deliveries did not become tickets")


def round_run(bench: Bench, number: int) -> RoundResult:
    args = bench.args
    result = RoundResult()
    seed = number * 10
    ingest = ["bare insert", "webhooks"] if number % 2 else ["webhooks", "bare insert"]
    for kind in ingest:
        if kind == "webhooks":
            phase, ingested = bench.ingest(kind, seconds=args.seconds, seed=seed)
            result.phases[kind], result.ingested[kind] = phase, ingested
            result.paced_rate = args.paced_rate or max(1, round(PACED_SHARE * ingested.rate))
            phase, ingested = bench.ingest(
                kind, seconds=args.seconds, rate=result.paced_rate, seed=seed + 1
            )
            result.phases["paced"], result.ingested["paced"] = phase, ingested
        else:
            result.phases[kind] = bench.run(kind, seconds=args.seconds, seed=seed + 2)
    reads = ["bare read", "reads"] if number % 2 else ["reads", "bare read"]
    for kind in reads:
        result.phases[kind] = bench.run(kind, seconds=args.seconds, seed=seed + 3)
    return result


# ---- report -------------------------------------------------------------------------


def ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "never"
    return f"{value:.1f}"


def round_lines(number: int, rnd: RoundResult) -> str:
    hooks, bare = rnd.phases["webhooks"], rnd.phases["bare insert"]
    saturated, paced = rnd.ingested["webhooks"], rnd.ingested["paced"]
    reads, bare_read = rnd.phases["reads"], rnd.phases["bare read"]
    return (
        f"  round {number}: webhooks {hooks.rate():.0f} acknowledged/s, "
        f"{saturated.rate:.0f} tickets/s end to end (p50/p99 {ms(saturated.e2e(50))}/"
        f"{ms(saturated.e2e(99))} ms); bare insert {bare.rate():.0f}/s; paced at "
        f"{rnd.paced_rate:.0f}/s: {paced.rate:.0f} tickets/s, p50/p99 {ms(paced.e2e(50))}/"
        f"{ms(paced.e2e(99))} ms\n"
        f"           reads {reads.rate():.0f}/s (p50/p99 {ms(reads.latency_ms(50))}/"
        f"{ms(reads.latency_ms(99))} ms); bare read {bare_read.rate():.0f}/s (p50/p99 "
        f"{ms(bare_read.latency_ms(50))}/{ms(bare_read.latency_ms(99))} ms)"
    )


CPU_KINDS = ("gunicorn", "celery", "postgres", "redis", "locust", "poller", "other")


def cpu_text(cpu: dict[str, float]) -> str:
    """Cores by kind. A process that ended and was not reaped by one still running (a
    PostgreSQL session, say) leaves its kind's sum: `exited` is what is missing."""
    if not cpu:
        return "(not measured: no /proc)"
    used = {kind: max(0.0, cpu.get(kind, 0.0)) for kind in (*CPU_KINDS, "interrupts")}
    idle = cpu.get("idle", 0.0)
    used["exited"] = max(0.0, (os.cpu_count() or 1) - idle - sum(used.values()))
    return ", ".join(f"{kind} {value:.2f}" for kind, value in used.items()) + f"; idle {idle:.2f}"


def figures(paced_rate: float):
    """(figure, the desk's value, the baseline's value or None) for one round."""

    def phase(name):
        return lambda rnd: rnd.phases[name]

    def ingested(name):
        return lambda rnd: rnd.ingested[name]

    hooks, bare = phase("webhooks"), phase("bare insert")
    reads, bare_read = phase("reads"), phase("bare read")
    saturated, paced = ingested("webhooks"), ingested("paced")
    rows = [
        ("ingest: acknowledged/s", lambda r: hooks(r).rate(), lambda r: bare(r).rate()),
        ("ingest: mentions/s end to end", lambda r: saturated(r).rate, lambda r: bare(r).rate()),
    ]
    for pct in (50, 99):
        rows.append(
            (
                f"ingest: p{pct} acknowledgement ms",
                lambda r, p=pct: hooks(r).latency_ms(p),
                lambda r, p=pct: bare(r).latency_ms(p),
            )
        )
    for pct in (50, 99):
        rows.append(
            (
                f"ingest: p{pct} delivery -> ticket ms",
                lambda r, p=pct: saturated(r).e2e(p),
                None,
            )
        )
    rows.append((f"paced {paced_rate:.0f}/s: mentions/s end to end", lambda r: paced(r).rate, None))
    for pct in (50, 99):
        rows.append(
            (
                f"paced {paced_rate:.0f}/s: p{pct} delivery -> ticket ms",
                lambda r, p=pct: paced(r).e2e(p),
                None,
            )
        )
    rows.append(("reads: requests/s", lambda r: reads(r).rate(), lambda r: bare_read(r).rate()))
    for kind, name in (
        (None, "reads"),
        ("list", "GET /api/v1/tickets/"),
        ("detail", "GET /api/v1/tickets/<id>/"),
    ):
        for pct in (50, 99):
            rows.append(
                (
                    f"{name}: p{pct} ms",
                    lambda r, p=pct, k=kind: reads(r).latency_ms(p, k),
                    lambda r, p=pct: bare_read(r).latency_ms(p),
                )
            )
    return rows


def report(rounds: list[RoundResult], args, label: str, database: str) -> None:
    def med(figure) -> float:
        return statistics.median(figure(rnd) for rnd in rounds)

    paced_rate = med(lambda r: r.paced_rate)
    print()
    print(
        f"median of {len(rounds)} round(s): {args.seconds:g} s per phase, {args.users} locust "
        f"users, gunicorn {label}, {WORKERS} Celery worker processes, {database}"
    )
    print(f"  {'figure':<42} {'desk':>9} {'baseline':>9} {'ratio':>7}")
    for name, desk, base in figures(paced_rate):
        value = med(desk)
        base_value = med(base) if base else None
        text = ms(value) if name.endswith(" ms") else f"{value:.1f}"
        base_text = "-" if base_value is None else f"{base_value:.1f}"
        ratio = f"{value / base_value:.2f}" if base_value and math.isfinite(value) else "-"
        print(f"  {name:<42} {text:>9} {base_text:>9} {ratio:>7}")
    print(
        "  (baselines: ingest, the bare insert (POST, one INSERT); reads, the bare read "
        "(GET, one SELECT); both with token auth)"
    )

    middle = sorted(rounds, key=lambda r: r.ingested["webhooks"].rate)[len(rounds) // 2]
    print()
    print(
        "The round with the median end-to-end rate: the saturated queue drained "
        f"{middle.ingested['webhooks'].drain_seconds:.1f} s after its load stopped, the paced "
        f"one {middle.ingested['paced'].drain_seconds:.1f} s; PostgreSQL wrote "
        f"{middle.ingested['paced'].wal_per_ticket / 1024:.1f} KiB of WAL per mention in the "
        f"paced phase (the whole server's WAL). CPU in use, in cores of {os.cpu_count()}, "
        "during each phase:"
    )
    for kind in ("webhooks", "paced", "bare insert", "reads", "bare read"):
        print(f"  {kind + ':':<12} {cpu_text(middle.phases[kind].cpu)}")
    busy = max((p.cpu.get("other", 0.0) for r in rounds for p in r.phases.values()), default=0)
    if busy > 0.1:
        print(
            f"  warning: other processes used up to {busy:.2f} cores during a phase: the "
            "machine was not quiet, so these figures are low"
        )
    for number, rnd in enumerate(rounds, 1):
        for kind, phase in rnd.phases.items():
            if phase.refused():
                print(f"  round {number} {kind}: not answered as expected: {phase.refused()}")
        for kind, ingested in rnd.ingested.items():
            if ingested.missing:
                print(
                    f"  round {number} {kind}: {ingested.missing} deliveries never became tickets"
                )

    paced = med(lambda r: r.ingested["paced"].rate)
    p99 = med(lambda r: r.ingested["paced"].e2e(99))
    kept = paced >= 0.95 * paced_rate and not any(r.ingested["paced"].missing for r in rounds)
    print()
    print(
        f"sustained ingest: {paced:.0f} mentions/s end to end with {paced_rate:.0f}/s offered, "
        f"p99 delivery -> ticket {ms(p99)} ms: " + ("KEPT UP" if kept else "FELL BEHIND")
    )
    reads = med(lambda r: r.phases["reads"].rate())
    print(
        f"API reads: {reads:.0f}/s, p50/p99 {ms(med(lambda r: r.phases['reads'].latency_ms(50)))}"
        f"/{ms(med(lambda r: r.phases['reads'].latency_ms(99)))} ms"
    )


# ---- main ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="each phase (default 15)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of five phases (2)")
    parser.add_argument("--users", type=int, default=16, help="locust users (default 16)")
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=0.0,
        help="deliveries/s of the paced phase (default: 80%% of the round's saturated "
        "end-to-end rate)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the tickets after a phase (default 60)",
    )
    parser.add_argument(
        "--web-concurrency",
        type=int,
        default=0,
        help="gunicorn workers (default: gunicorn_conf.py's, 2 x cores + 1)",
    )
    parser.add_argument(
        "--web-threads", type=int, default=0, help="threads per worker (default: its 1)"
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database")
    args = parser.parse_args(argv)
    if min(args.rounds, args.users) < 1 or not 0 < args.seconds <= 600:
        parser.error("--rounds and --users must be at least 1, --seconds in (0, 600]")
    if args.paced_rate < 0 or not 0 <= args.drain_timeout <= 600:
        parser.error("--paced-rate >= 0, --drain-timeout in [0, 600]")

    from bench.webhooks import django_setup, fixtures_prepare

    database_url = load_database_url()
    redis_url = load_redis_url()
    database = f"PostgreSQL {where(database_url)}, Redis {urlsplit(redis_url).netloc}/{REDIS_DB}"
    created = database_create(database_url)
    redis_flush(redis_url)
    print(
        f"load bench database {where(database_url)}: {'created' if created else 'reused'}, "
        f"migrating and emptying it; Redis database {REDIS_DB} flushed",
        flush=True,
    )
    label = web_label(args.web_concurrency, args.web_threads)
    ready = False
    stack: Stack | None = None
    try:
        django_setup(database_url, redis_url)
        ready = True
        fixtures = fixtures_prepare()
        token = agent_token()
        with tempfile.TemporaryDirectory(prefix="servicedesk-load-") as logs:
            stack = stack_start(
                Path(logs), web_concurrency=args.web_concurrency, web_threads=args.web_threads
            )
            print(
                f"gunicorn on {HOST}:{stack.port} ({label}), celery worker --concurrency "
                f"{WORKERS}; warming up",
                flush=True,
            )
            bench = Bench(stack, fixtures, token, args, Path(logs))
            warm_up(bench)
            rounds = []
            for number in range(1, args.rounds + 1):
                rounds.append(round_run(bench, number))
                print(round_lines(number, rounds[-1]), flush=True)
            stack.stop()
            stack = None
        report(rounds, args, label, database)
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
