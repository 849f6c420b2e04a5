"""`make bench`: mention ingest against a bare insert, on PostgreSQL, in the same run.

Each round sends N requests to `POST /api/v1/mentions/` (every one must open a ticket)
and N to `POST /bench/bare-insert/` (the same body, token auth and middleware, one
INSERT), in alternating chunks, the other endpoint first in every other round. The
figures are medians over the rounds; the verdict is the median of the per-round ratios
ingest rate / bare-insert rate. See bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import re
import secrets
import statistics
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SITE = sysconfig.get_paths()["purelib"] + "/"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/servicedesk_bench"
POSTGRES_SCHEMES = ("postgres://", "postgresql://", "pgsql://")
GOAL = 0.50
INGEST_PATH = "/api/v1/mentions/"
BARE_PATH = "/bench/bare-insert/"
CHANNEL = "bench"
USERNAME = "bench-integration"
WARMUP = 30
HISTORY = 5000
LENDING_SHARE = 0.3

LENDING_TEXTS = (
    "what is your mortgage rate?",
    "Can I refinance my car loan with you?",
    "Is the APR on your personal loans fixed or variable?",
    "How do I apply for a home equity line of credit?",
    "What are the interest rates on auto loans right now?",
    "Do you do mortgages for first-time buyers? What down payment do I need?",
)
OTHER_TEXTS = (
    "My card was declined at the store this morning, what is going on?",
    "Thanks for the quick help yesterday, the new card arrived!",
    "The app keeps logging me out, this is ridiculous",
    "There is an unauthorized charge on my account, urgent please",
    "How do I order a new debit card?",
    "Waiting 40 minutes on hold and still no answer.",
    "Great service at the Main Street branch today",
    "Is online banking down? I cannot access my statements.",
    "When will the branch on 5th Avenue reopen after the renovation?",
    "How do I add my daughter as an authorized user?",
)
OFFSETS = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)))


class BenchError(Exception):
    """The bench could not measure what it claims to: a setup step or a check failed."""


# ---- database ---------------------------------------------------------------------


def bench_database_url() -> str:
    """DATABASE_URL's server when it is PostgreSQL, else the local default.

    The bench empties its tables before every run, so it only ever works in a database
    whose name ends in `_bench`: DATABASE_URL's database `servicedesk` becomes
    `servicedesk_bench` on the same server, with the same credentials and options.
    """
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(POSTGRES_SCHEMES):
        return DEFAULT_DATABASE_URL
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "servicedesk"
    if not name.endswith("_bench"):
        name = f"{name}_bench"
    return urlunsplit(parts._replace(path="/" + name))


def where(url: str) -> str:
    """host:port/database, without the credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def _server_connection(url: str):
    """An autocommit connection to the server's `postgres` database (for CREATE/DROP)."""
    import dj_database_url
    import psycopg

    db = dj_database_url.parse(url)
    params = {
        "dbname": "postgres",
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        **db.get("OPTIONS", {}),
    }
    return psycopg.connect(
        autocommit=True, **{key: value for key, value in params.items() if value is not None}
    ), db["NAME"]


def database_create(url: str) -> bool:
    """Create the bench database unless it exists; True when it was created."""
    import psycopg
    from psycopg import sql

    try:
        conn, name = _server_connection(url)
    except psycopg.OperationalError as error:
        raise BenchError(f"cannot reach PostgreSQL ({where(url)}): {error}") from error
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return not exists


def database_drop(url: str) -> None:
    import psycopg
    from psycopg import sql

    try:
        conn, name = _server_connection(url)
        with conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        print(f"warning: the bench database was not dropped: {error}", file=sys.stderr)


def django_setup(url: str) -> None:
    """Production-like settings: DEBUG off, no Redis (ingest enqueues no task)."""
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["DEBUG"] = "0"
    os.environ["SECRET_KEY"] = "bench-only-" + secrets.token_urlsafe(40)
    os.environ["SECURE_SSL_REDIRECT"] = "0"
    os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    for name in ("REDIS_URL", "CELERY_TASK_ALWAYS_EAGER"):
        os.environ.pop(name, None)
    # Celery's Django fixup puts the working directory first on sys.path: make it ROOT.
    os.chdir(ROOT)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    import django

    django.setup()


def fixtures_prepare() -> str:
    """Migrate, empty the tables the bench writes, make its user and channel, seed history.

    Returns the user's API token. TRUNCATE (not DELETE) empties the audit log: the
    append-only trigger guards rows, and this is the bench's own database.
    """
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from bench.urls import BARE_TABLE, CREATE_BARE_TABLE
    from connectors.models import ChannelAccount
    from servicedesk.models import AuditChainHead, AuditEvent
    from servicedesk.roles import INTEGRATION
    from tickets.models import Customer, Mention, Ticket

    call_command("migrate", interactive=False, verbosity=0)
    tables = [
        model._meta.db_table for model in (Mention, Ticket, Customer, AuditEvent, AuditChainHead)
    ]
    with connection.cursor() as cursor:
        cursor.execute(CREATE_BARE_TABLE)
        cursor.execute(f"TRUNCATE {', '.join([*tables, BARE_TABLE])} RESTART IDENTITY CASCADE")
    user, _ = User.objects.get_or_create(username=USERNAME)
    user.groups.set([Group.objects.get(name=INTEGRATION)])
    token, _ = Token.objects.get_or_create(user=user)
    channel, _ = ChannelAccount.objects.update_or_create(
        name=CHANNEL, defaults={"platform": "simulated", "is_active": True}
    )
    history_seed(channel)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return token.key


def history_seed(channel) -> None:
    """Tables that look lived-in: HISTORY earlier posts, each with its customer and ticket,
    and as many rows in the bare table. With statistics on near-empty tables the planner
    picks plans that a real desk never runs (a scan of the channel's mentions to find one
    external_id, say), and those get slower as the run adds rows."""
    from django.db import connection

    from bench.urls import BARE_TABLE
    from tickets.models import Customer, Mention, Ticket

    now = datetime.now(UTC)
    customers = Customer.objects.bulk_create(
        Customer(platform="simulated", external_id=f"h{n}", handle=f"past_{n}")
        for n in range(HISTORY)
    )
    tickets = Ticket.objects.bulk_create(
        Ticket(
            channel=channel,
            customer=customer,
            state="closed",
            posted_at=now - timedelta(days=1, minutes=n),
            received_at=now - timedelta(days=1, minutes=n),
            deadline=now - timedelta(days=1, minutes=n - 30),
            closed_at=now - timedelta(hours=12),
        )
        for n, customer in enumerate(customers)
    )
    Mention.objects.bulk_create(
        Mention(
            channel=channel,
            external_id=f"history-{ticket.customer.external_id}",
            customer=ticket.customer,
            ticket=ticket,
            text="An earlier post.",
            posted_at=ticket.posted_at,
            received_at=ticket.received_at,
        )
        for ticket in tickets
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {BARE_TABLE} "  # noqa: S608 (constants)
            "(channel, external_id, author_external_id, handle, display_name, text, url, "
            "posted_at) SELECT %s, 'history-' || n, 'h' || n, '', '', 'An earlier post.', '', "
            "now() - interval '1 day' "
            "FROM generate_series(1, %s) AS n",
            [CHANNEL, HISTORY],
        )


# ---- requests ---------------------------------------------------------------------


class Bodies:
    """JSON bodies in the normalized mention shape, each with its own external_id."""

    def __init__(self, seed: int = 20260131, authors: int = 500):
        self.rng = random.Random(seed)
        self.authors = [
            {"external_id": f"u{n}", "handle": f"customer_{n}", "display_name": f"Customer {n}"}
            for n in range(authors)
        ]

    def make(self, tag: str, count: int) -> list[bytes]:
        now = datetime.now(UTC)
        bodies = []
        for n in range(count):
            lending = self.rng.random() < LENDING_SHARE
            text = self.rng.choice(LENDING_TEXTS if lending else OTHER_TEXTS)
            author = self.rng.choice(self.authors)
            external_id = f"{tag}-{n}"
            posted_at = now - timedelta(seconds=self.rng.randint(5, 3600))
            body = {
                "channel": CHANNEL,
                "external_id": external_id,
                "author": author,
                "text": text,
                "url": f"https://social.example.com/{author['handle']}/status/{external_id}",
                "posted_at": posted_at.astimezone(self.rng.choice(OFFSETS)).isoformat(),
            }
            bodies.append(json.dumps(body).encode())
        return bodies


@dataclass(frozen=True)
class Batch:
    count: int
    seconds: float
    latencies: list[float]

    @classmethod
    def merge(cls, batches: list[Batch]) -> Batch:
        return cls(
            sum(batch.count for batch in batches),
            sum(batch.seconds for batch in batches),
            [latency for batch in batches for latency in batch.latencies],
        )

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def percentile_ms(self, pct: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
        return ordered[rank - 1] * 1000


class Runner:
    """Requests through the real middleware and WSGI handler, in this process."""

    def __init__(self, token: str):
        from django.test import Client

        self.client = Client()
        self.headers = {"Authorization": f"Token {token}"}

    def post(self, path: str, body: bytes):
        return self.client.post(path, body, content_type="application/json", headers=self.headers)

    def batch(self, path: str, bodies: list[bytes]) -> Batch:
        latencies = []
        failures = []
        clock = time.perf_counter
        start = clock()
        for body in bodies:
            sent = clock()
            response = self.post(path, body)
            latencies.append(clock() - sent)
            if response.status_code != 201:
                failures.append(response)
        seconds = clock() - start
        if failures:
            first = failures[0]
            raise BenchError(
                f"{len(failures)} of {len(bodies)} requests to {path} were not answered 201; "
                f"the first: {first.status_code} {first.content[:500]!r}"
            )
        return Batch(len(bodies), seconds, latencies)


def count_rows() -> dict[str, int]:
    from django.db import connection

    from bench.urls import BARE_TABLE
    from tickets.models import Mention, Ticket

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {BARE_TABLE}")  # noqa: S608 (a constant)
        (bare,) = cursor.fetchone()
    return {"tickets": Ticket.objects.count(), "mentions": Mention.objects.count(), "bare": bare}


@dataclass(frozen=True)
class Round:
    order: str
    ingest: Batch
    bare: Batch

    @property
    def ratio(self) -> float:
        return self.ingest.rate / self.bare.rate


def checked_round(
    runner: Runner, bodies: Bodies, tag: str, requests: int, chunk: int, *, ingest_first: bool
) -> Round:
    """N requests to each endpoint, alternating chunks of them so that both see the same
    moments of a noisy machine; then proof that every ingest opened its own ticket."""
    batches: dict[str, list[Batch]] = {"ingest": [], "bare": []}
    payloads = {kind: bodies.make(f"{tag}-{kind}", requests) for kind in batches}
    order = ("ingest", "bare") if ingest_first else ("bare", "ingest")
    before = count_rows()
    for start in range(0, requests, chunk):
        for kind in order:
            path = INGEST_PATH if kind == "ingest" else BARE_PATH
            batches[kind].append(runner.batch(path, payloads[kind][start : start + chunk]))
    after = count_rows()
    grew = {key: after[key] - before[key] for key in after}
    expected = {"tickets": requests, "mentions": requests, "bare": requests}
    if grew != expected:
        raise BenchError(
            f"{requests} requests to each endpoint changed the row counts by {grew}, not {expected}"
        )
    return Round(order[0], Batch.merge(batches["ingest"]), Batch.merge(batches["bare"]))


# ---- report -----------------------------------------------------------------------


def median(values) -> float:
    return statistics.median(list(values))


def report(rounds: list[Round], *, requests: int, database: str) -> float:
    from tickets.models import Ticket

    print()
    print(
        f"{'round':>5}  {'first':<6} {'ingest/s':>9} {'bare/s':>8} {'ratio':>6}   "
        f"{'ingest p50/p99 ms':>17}   {'bare p50/p99 ms':>15}"
    )
    for number, rnd in enumerate(rounds, 1):
        print(
            f"{number:>5}  {rnd.order:<6} {rnd.ingest.rate:>9.1f} {rnd.bare.rate:>8.1f} "
            f"{rnd.ratio:>6.2f}   "
            f"{rnd.ingest.percentile_ms(50):>8.2f}/{rnd.ingest.percentile_ms(99):<8.2f}   "
            f"{rnd.bare.percentile_ms(50):>6.2f}/{rnd.bare.percentile_ms(99):<8.2f}"
        )
    figures: list[tuple[str, Callable[[Batch], float], str]] = [
        ("rate (tickets or rows/s)", lambda b: b.rate, "{:.1f}"),
        ("p50 latency (ms)", lambda b: b.percentile_ms(50), "{:.2f}"),
        ("p99 latency (ms)", lambda b: b.percentile_ms(99), "{:.2f}"),
    ]
    print()
    print(f"median of {len(rounds)} rounds x {requests} requests each, on {database}")
    print(f"{'figure':<26} {'ingest':>10} {'bare insert':>12} {'ingest/bare':>12}")
    for label, figure, fmt in figures:
        ingest = median(figure(rnd.ingest) for rnd in rounds)
        bare = median(figure(rnd.bare) for rnd in rounds)
        print(f"{label:<26} {fmt.format(ingest):>10} {fmt.format(bare):>12} {ingest / bare:>12.2f}")
    opened = Ticket.objects.count() - HISTORY
    regulated = Ticket.objects.filter(regulated=True).count()
    print(f"(tickets opened by ingest, warm-up included: {opened}; regulated: {regulated})")
    ratio = median(rnd.ratio for rnd in rounds)
    verdict = "OK" if ratio >= GOAL else "BELOW GOAL"
    print()
    print(f"ratio ingest/bare: {ratio:.2f} (goal >= {GOAL:.2f}): {verdict}")
    return ratio


# ---- profile ----------------------------------------------------------------------


PROFILE_FUNCTIONS = (
    # The project's own code, and the framework steps every request goes through.
    rf"{re.escape(str(ROOT))}/(servicedesk|tickets|approvals|connectors)/"
    r"|rest_framework/(authentication|serializers)\.py:\d+\((authenticate|is_valid|data)\)"
    r"|django/db/models/sql/compiler\.py:\d+\(as_sql\)"
    r"|django/db/backends/base/base\.py:\d+\(commit\)"
)


def profile(runner: Runner, bodies: Bodies, requests: int) -> None:
    """Where a request's time goes: its SQL statements, the commit, the rest (Python)."""
    from django.db import connection

    timings: list[tuple[str, float]] = []

    def timed(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timings.append((sql, time.perf_counter() - start))

    real_commit = connection._commit

    def timed_commit():
        start = time.perf_counter()
        try:
            return real_commit()
        finally:
            timings.append(("COMMIT", time.perf_counter() - start))

    connection._commit = timed_commit
    try:
        for kind, path in (("ingest", INGEST_PATH), ("bare insert", BARE_PATH)):
            batch_bodies = bodies.make(f"profile-{kind[:4]}", requests)
            timings.clear()
            with connection.execute_wrapper(timed):
                batch = runner.batch(path, batch_bodies)
            per_request = batch.seconds / requests * 1000
            sql_ms = sum(seconds for _, seconds in timings) / requests * 1000
            print(
                f"\n{kind}: {batch.rate:.1f} requests/s, {per_request:.2f} ms a request: "
                f"{sql_ms:.2f} ms in {len(timings) / requests:.1f} round trips to the "
                f"database (statements and commit), {per_request - sql_ms:.2f} ms in Python"
            )
            per_statement: dict[str, list[float]] = {}
            for sql, seconds in timings:
                key = re.sub(r'"s\d+_x\d+"', '"sN"', " ".join(sql.split()))[:100]
                per_statement.setdefault(key, []).append(seconds)
            ranked = sorted(per_statement.items(), key=lambda item: -sum(item[1]))
            for sql, samples in ranked:
                print(
                    f"  {len(samples) / requests:>4.2f}x {sum(samples) / requests * 1000:>6.3f} ms"
                    f"  {sql}"
                )
    finally:
        del connection._commit

    batch_bodies = bodies.make("profile-cprofile", requests)
    profiler = cProfile.Profile()
    profiler.enable()
    batch = runner.batch(INGEST_PATH, batch_bodies)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(PROFILE_FUNCTIONS, 40)
    print(
        f"\ncProfile of {requests} ingest requests ({batch.seconds / requests * 1000:.2f} ms "
        "a request with the profiler on), cumulative, the project's code and main steps:"
    )
    text = out.getvalue()
    print(text[text.index("   ncalls") :].replace(SITE, "").replace(str(ROOT) + "/", ""))
    areas: dict[str, float] = {}
    for (filename, _, _), (_, _, own_seconds, _, _) in stats.stats.items():
        area = profile_area(filename)
        areas[area] = areas.get(area, 0.0) + own_seconds
    total = sum(areas.values())
    print("Own time by area (profiler on), per request:")
    ranked = sorted(areas.items(), key=lambda item: -item[1])
    shown = [(area, seconds) for area, seconds in ranked if seconds >= 0.01 * total]
    shown.append(("the rest", total - sum(seconds for _, seconds in shown)))
    for area, seconds in shown:
        print(f"  {seconds / requests * 1000:>6.2f} ms  {seconds / total:>4.0%}  {area}")


def profile_area(filename: str) -> str:
    if filename.startswith(SITE):
        package = filename[len(SITE) :].split("/")[0]
        if package == "django":
            part = filename[len(SITE) :].split("/")[1]
            return "django.db (ORM, backend)" if part == "db" else f"django ({part})"
        return "psycopg (mostly waiting for PostgreSQL)" if package == "psycopg" else package
    if filename.startswith(str(ROOT)):
        return "project code"
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins and C functions"
    return "python stdlib"


# ---- main -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument(
        "--requests", type=int, default=300, help="requests per endpoint per round (default 300)"
    )
    parser.add_argument(
        "--chunk",
        type=int,
        default=50,
        help="requests in a row to one endpoint before switching to the other (default 50)",
    )
    parser.add_argument(
        "--keep-db",
        action="store_true",
        help="leave the bench database (and its rows) in place afterwards; "
        "by default it is dropped",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of the rounds: queries, SQL time and a cProfile of ingest requests",
    )
    args = parser.parse_args(argv)
    if min(args.rounds, args.requests, args.chunk) < 1:
        parser.error("--rounds, --requests and --chunk must be at least 1")

    url = bench_database_url()
    database = f"PostgreSQL {where(url)}"
    created = database_create(url)
    print(
        f"bench database {where(url)}: {'created' if created else 'reused'}, "
        "migrating and emptying the bench tables",
        flush=True,
    )
    ready = False
    try:
        django_setup(url)
        ready = True
        token = fixtures_prepare()
        runner = Runner(token)
        bodies = Bodies()
        checked_round(runner, bodies, "warmup", WARMUP, WARMUP, ingest_first=True)
        if args.profile:
            profile(runner, bodies, args.requests)
            return 0
        print(
            f"{args.rounds} rounds x {args.requests} requests to {INGEST_PATH} and to "
            f"{BARE_PATH}, alternating every {args.chunk}; django.test.Client (middleware and "
            "WSGI handler, in-process)",
            flush=True,
        )
        rounds = []
        for number in range(args.rounds):
            rounds.append(
                checked_round(
                    runner,
                    bodies,
                    f"r{number}",
                    args.requests,
                    args.chunk,
                    ingest_first=number % 2 == 0,
                )
            )
            print(f"  round {number + 1}: ratio {rounds[-1].ratio:.2f}", flush=True)
        report(rounds, requests=args.requests, database=database)
    finally:
        if ready:
            from django.db import connections

            connections.close_all()
        if not args.keep_db:
            database_drop(url)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        sys.exit(f"bench failed: {error}")
