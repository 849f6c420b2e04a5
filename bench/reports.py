"""`make bench`: the latency report over 1,000,000 tickets in 30 days and the command-center
wall's refresh, on PostgreSQL, each beside a baseline measured in the same run.

The data is made in the database with generate_series (a minute or two for a million):
tickets spread evenly over the last 30 days on six channels, each with its customer's
post and its response cycle (stage times drawn from exponential distributions, 30%
regulated with a legal stage), and the last hour's tickets still waiting. Requests go
through the whole Django stack in this process (django.test.Client: middleware,
session, the view) with DEBUG off; server time is measured around each request.

- latency report: `GET /api/v1/metrics/latency/` over the 30 days with each `group_by`,
  and the reports page (`/reports/`: stages, series per day, the breaches list).
  Baseline: `SELECT COUNT(*)` of the same cycles, run on the same connection.
- wall refresh: `GET /wall/panel/` as the TV polls it. Baseline: the bare layout page
  (session, user, roles and the template, no data). The wall's usual-rate figures are
  cached for minutes; the first refresh after they expire is reported apart ("cold").

See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    POSTGRES_SCHEMES,
    BenchError,
    database_create,
    database_drop,
    django_setup,
    where,
)

GOALS = {"report": 1000.0, "wall": 100.0}
DATABASE_NAME = "servicedesk_bench_reports"
CHANNELS = (
    ("x-main", "x"),
    ("facebook-page", "facebook"),
    ("instagram", "instagram"),
    ("mastodon", "mastodon"),
    ("bluesky", "bluesky"),
    ("youtube", "youtube"),
)
AGENTS = 30
LAWYERS = 6
GROUPS = (None, "stage", "channel", "agent", "reviewer", "regulated", "template")


def bench_url() -> str:
    """DATABASE_URL's PostgreSQL server (else the local default) with our own database."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(POSTGRES_SCHEMES):
        url = DEFAULT_DATABASE_URL
    return urlunsplit(urlsplit(url)._replace(path="/" + DATABASE_NAME))


def bare_page(request):
    from django.shortcuts import render

    from tickets.ui import html_view

    return html_view()(lambda req: render(req, "base.html", {}))(request)


def bench_urlconf():
    import types

    from django.urls import include, path

    module = types.ModuleType("bench_reports_urls")
    module.urlpatterns = [
        path("bench/bare-page/", bare_page),
        path("", include("servicedesk.urls")),
    ]
    return module


# ---- data ------------------------------------------------------------------------------

SEED_SQL = """
SELECT setseed(0.20260301);

INSERT INTO tickets_customer (id, platform, external_id, handle, display_name, created_at)
SELECT g, 'x', 'c' || g, 'customer' || g, '', now() FROM generate_series(1, %(customers)s) g;

CREATE TEMP TABLE bench_rows ON COMMIT DROP AS
SELECT g AS id,
       now() - interval '1 second' * (g::float8 / %(tickets)s * %(days)s * 86400) AS posted,
       CASE WHEN g %% 10 = 0 THEN 900 ELSE 3600 END AS window_s,
       (g %% 10) < 3 AS regulated,
       random() * 30 AS connector,
       -ln(1 - random()) * 400 AS queue,
       -ln(1 - random()) * 300 AS drafting,
       -ln(1 - random()) * 1200 AS legal,
       random() * 120 AS sending,
       random() * 5 AS publishing
FROM generate_series(1, %(tickets)s) g;

INSERT INTO tickets_ticket (
    id, channel_id, customer_id, state, priority, sentiment, regulated, regulated_reasons,
    pii_flags, assignee_id, posted_at, deadline, received_at, close_reason, updated_at
)
SELECT r.id,
       %(channel0)s + r.id %% %(channels)s,
       1 + r.id %% %(customers)s,
       CASE WHEN r.posted < now() - interval '1 hour' THEN 'closed'
            WHEN r.id %% 5 < 2 THEN 'open'
            WHEN r.id %% 5 < 4 THEN 'in_progress'
            ELSE 'in_legal_review' END,
       CASE WHEN r.window_s = 900 THEN 'high' ELSE 'normal' END,
       CASE r.id %% 5 WHEN 0 THEN 'negative' WHEN 1 THEN 'neutral' WHEN 2 THEN 'neutral'
            ELSE 'positive' END,
       r.regulated, '[]', '[]',
       CASE WHEN r.posted < now() - interval '1 hour' OR r.id %% 5 >= 2
            THEN %(agent0)s + r.id %% %(agents)s END,
       r.posted,
       r.posted + interval '1 second' * r.window_s,
       r.posted + interval '1 second' * r.connector,
       '', now()
FROM bench_rows r;

UPDATE tickets_ticket SET submitted_at = now() - interval '1 second' * (id %% 1800)
WHERE state = 'in_legal_review';

INSERT INTO tickets_mention (
    id, channel_id, external_id, customer_id, ticket_id, text, url, posted_at, received_at,
    in_reply_to_external_id, raw, screening, edit_history, reply_context
)
SELECT r.id, %(channel0)s + r.id %% %(channels)s, 'post-' || r.id, 1 + r.id %% %(customers)s,
       r.id,
       CASE r.id %% 4 WHEN 0 THEN '@NorthwindBank what is your mortgage rate?'
                      WHEN 1 THEN '@NorthwindBank my card was declined again'
                      WHEN 2 THEN '@NorthwindBank the app keeps logging me out'
                      ELSE '@NorthwindBank thanks for the quick help!' END,
       '', r.posted, r.posted + interval '1 second' * r.connector, '', '{}', '{}', '[]', '{}'
FROM bench_rows r;

INSERT INTO tickets_responsecycle (
    ticket_id, number, channel_id, mention_id, priority, outcome, regulated, from_template,
    agent_id, reviewer_id, posted_at, deadline, received_at, claimed_at, submitted_at,
    decided_at, sent_at, replied_at, window_seconds, response_seconds, within_window,
    connector_seconds, queue_seconds, drafting_seconds, legal_seconds, sending_seconds,
    publishing_seconds, legal_wait_seconds, reviews
)
SELECT c.id, 1, %(channel0)s + c.id %% %(channels)s, c.id,
       CASE WHEN c.window_s = 900 THEN 'high' ELSE 'normal' END,
       CASE WHEN c.answered THEN 'answered' ELSE 'pending' END,
       c.regulated, NOT c.regulated AND c.id %% 4 = 1,
       CASE WHEN c.answered THEN %(agent0)s + c.id %% %(agents)s END,
       CASE WHEN c.answered AND c.regulated THEN %(lawyer0)s + c.id %% %(lawyers)s END,
       c.posted, c.posted + interval '1 second' * c.window_s,
       c.posted + interval '1 second' * c.connector,
       CASE WHEN c.answered THEN c.posted + interval '1 second' * (c.connector + c.queue) END,
       CASE WHEN c.answered AND c.regulated
            THEN c.posted + interval '1 second' * (c.connector + c.queue + c.drafting) END,
       CASE WHEN c.answered AND c.regulated THEN c.posted + interval '1 second' *
            (c.connector + c.queue + c.drafting + c.legal) END,
       CASE WHEN c.answered THEN c.posted + interval '1 second' * (c.total - c.publishing) END,
       CASE WHEN c.answered THEN c.posted + interval '1 second' * c.total END,
       c.window_s,
       CASE WHEN c.answered THEN c.total END,
       CASE WHEN c.answered THEN c.total <= c.window_s END,
       c.connector,
       CASE WHEN c.answered THEN c.queue END,
       CASE WHEN c.answered THEN c.drafting END,
       CASE WHEN c.answered AND c.regulated THEN c.legal END,
       CASE WHEN c.answered AND c.regulated THEN c.sending END,
       CASE WHEN c.answered THEN c.publishing END,
       CASE WHEN c.answered AND c.regulated THEN c.legal END,
       CASE WHEN c.answered AND c.regulated THEN 1 ELSE 0 END
FROM (
    SELECT r.*,
           r.posted < now() - interval '1 hour' AS answered,
           r.connector + r.queue + r.drafting + r.publishing
             + CASE WHEN r.regulated THEN r.legal + r.sending ELSE 0 END AS total
    FROM bench_rows r
) c;
"""


def prepare(tickets: int, days: int) -> None:
    from datetime import timedelta

    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection, transaction

    from connectors.models import ChannelAccount
    from servicedesk.models import AuditChainHead, AuditEvent
    from tickets.models import (
        Customer,
        Escalation,
        Mention,
        ResponseCycle,
        SupervisionState,
        Ticket,
    )

    call_command("migrate", interactive=False, verbosity=0)
    tables = [
        model._meta.db_table
        for model in (
            ResponseCycle,
            Escalation,
            Mention,
            Ticket,
            Customer,
            AuditEvent,
            AuditChainHead,
            SupervisionState,
        )
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    ChannelAccount.objects.all().delete()
    channels = [
        ChannelAccount.objects.create(name=name, platform=platform, is_active=True)
        for name, platform in CHANNELS
    ]
    roles = {name: Group.objects.get(name=name) for name in ("agent", "legal", "supervisor")}
    User.objects.filter(username__startswith="bench-").delete()
    agents = [User.objects.create(username=f"bench-agent-{n:02d}") for n in range(AGENTS)]
    lawyers = [User.objects.create(username=f"bench-lawyer-{n}") for n in range(LAWYERS)]
    for user in agents:
        user.groups.add(roles["agent"])
    for user in lawyers:
        user.groups.add(roles["legal"])
    supervisor = User.objects.create(username="bench-supervisor")
    supervisor.groups.add(roles["supervisor"])
    # Consecutive ids: the SQL picks one by offset.
    assert [u.pk for u in agents] == list(range(agents[0].pk, agents[0].pk + AGENTS))
    assert [u.pk for u in lawyers] == list(range(lawyers[0].pk, lawyers[0].pk + LAWYERS))
    assert [c.pk for c in channels] == list(range(channels[0].pk, channels[0].pk + len(CHANNELS)))
    params = {
        "tickets": tickets,
        "customers": max(tickets // 5, 1),
        "days": days,
        "channel0": channels[0].pk,
        "channels": len(CHANNELS),
        "agent0": agents[0].pk,
        "agents": AGENTS,
        "lawyer0": lawyers[0].pk,
        "lawyers": LAWYERS,
    }
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in SEED_SQL.split(";\n"):
            if statement.strip():
                cursor.execute(statement, params)
        for table in ("tickets_customer", "tickets_ticket", "tickets_mention"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
    # What the latency record's refresh keeps: the sums of every day.
    from django.utils import timezone

    from tickets.cycles import latency_days_rebuild

    first = ResponseCycle.objects.order_by("posted_at").values_list("posted_at", flat=True)[0]
    today = timezone.localdate()
    days = {today - timedelta(days=n) for n in range((today - timezone.localdate(first)).days + 1)}
    with transaction.atomic():
        latency_days_rebuild(days)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"  made {tickets:,} tickets in {time.perf_counter() - started:.0f} s")


def check_data(tickets: int) -> None:
    from tickets.models import ResponseCycle, Ticket

    cycles = ResponseCycle.objects.count()
    if Ticket.objects.count() != tickets or cycles != tickets:
        raise BenchError(f"expected {tickets:,} tickets and cycles, found {cycles:,} cycles")


# ---- measuring ---------------------------------------------------------------------------


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def get(client, path: str) -> None:
    response = client.get(path)
    if response.status_code != 200:
        raise BenchError(f"{path} answered {response.status_code}")
    if hasattr(response, "streaming_content"):
        for _ in response.streaming_content:
            pass


def count_baseline(since, until) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM tickets_responsecycle WHERE posted_at >= %s AND posted_at < %s",
            [since, until],
        )
        cursor.fetchone()


def queries(client, path: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        get(client, path)
    return len(captured)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--wall-requests", type=int, default=40, help="per round")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--reuse-db", action="store_true", help="skip making the data")
    args = parser.parse_args()

    url = bench_url()
    print(
        f"reports bench: {args.tickets:,} tickets over {args.days} days on PostgreSQL {where(url)}"
    )
    database_create(url)
    # The bench's session stands for a supervisor who entered their second factor.
    os.environ["REQUIRE_2FA"] = "0"
    results: dict[str, list[float]] = {}
    query_counts: dict[str, int] = {}
    try:
        django_setup(url)
        from django.contrib.auth.models import User
        from django.core.cache import cache
        from django.test import Client
        from django.test.utils import override_settings

        from tickets.clock import db_now
        from tickets.reports.wall import wall_warm

        with override_settings(ROOT_URLCONF=bench_urlconf()):
            if args.reuse_db:
                from django.core.management import call_command

                call_command("migrate", interactive=False, verbosity=0)
            else:
                prepare(args.tickets, args.days)
            check_data(args.tickets)
            client = Client()
            client.force_login(User.objects.get(username="bench-supervisor"))
            now = db_now()
            from datetime import timedelta

            since, until = now - timedelta(days=args.days), now + timedelta(seconds=1)
            period = urlencode({"since": since.isoformat(), "until": until.isoformat()})
            report_paths = {
                f"report group_by={group or '-'}": "/api/v1/metrics/latency/?"
                + period
                + (f"&group_by={group}" if group else "")
                for group in GROUPS
            }
            report_paths["reports page"] = f"/reports/?{period}&group_by=stage&interval=day"
            for name, path in report_paths.items():
                query_counts[name] = queries(client, path)  # also warms the caches
            wall_warm()  # what beat does ahead of each hour
            query_counts["wall refresh"] = queries(client, "/wall/panel/")
            query_counts["bare page"] = queries(client, "/bench/bare-page/")
            for _ in range(5):
                get(client, "/wall/panel/")
                get(client, "/bench/bare-page/")
            for number in range(args.rounds):
                order = list(report_paths.items())
                if number % 2:
                    order.reverse()
                line = []
                for name, path in order:
                    results.setdefault(name, []).append(timed(lambda p=path: get(client, p)))
                    results.setdefault(f"baseline for {name}", []).append(
                        timed(lambda: count_baseline(since, until))
                    )
                wall, bare = [], []
                for index in range(args.wall_requests):
                    pair = [
                        ("wall", lambda: get(client, "/wall/panel/")),
                        ("bare", lambda: get(client, "/bench/bare-page/")),
                    ]
                    if (index + number) % 2:
                        pair.reverse()
                    for kind, call in pair:
                        (wall if kind == "wall" else bare).append(timed(call))
                # The minute turns: earlier minutes and today's share are counted again
                # (the usual rates stay: beat computes them ahead of each hour).
                cache.clear()
                wall_warm()
                turn = timed(lambda: get(client, "/wall/panel/"))
                # Nothing cached at all (a new deployment before beat ran).
                cache.clear()
                cold = timed(lambda: get(client, "/wall/panel/"))
                wall_warm()
                results.setdefault("wall refresh", []).append(statistics.median(wall))
                results.setdefault("bare page", []).append(statistics.median(bare))
                results.setdefault("wall refresh, minute turns", []).append(turn)
                results.setdefault("wall refresh, nothing cached", []).append(cold)
                line.append(
                    f"report page {results['reports page'][-1]:.0f} ms, "
                    f"COUNT(*) {results['baseline for reports page'][-1]:.0f} ms, "
                    f"wall p50 {statistics.median(wall):.1f} ms, bare p50 "
                    f"{statistics.median(bare):.1f} ms, minute turns {turn:.0f} ms, "
                    f"nothing cached {cold:.0f} ms"
                )
                print(f"  round {number + 1}: " + "; ".join(line))
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            database_drop(url)

    print(
        f"\n  {'figure (median of rounds)':<34} {'ms':>8} {'baseline ms':>12} {'ratio':>7} "
        f"{'queries':>8}"
    )
    verdicts = []
    for name in report_paths:
        value = statistics.median(results[name])
        base = statistics.median(results[f"baseline for {name}"])
        print(
            f"  {name:<34} {value:>8.1f} {base:>12.1f} {value / base:>7.1f} {query_counts[name]:>8}"
        )
        verdicts.append(("report", name, value))
    bare = statistics.median(results["bare page"])
    for name in ("wall refresh", "wall refresh, minute turns", "wall refresh, nothing cached"):
        value = statistics.median(results[name])
        count = query_counts["wall refresh"]
        print(f"  {name:<34} {value:>8.1f} {bare:>12.1f} {value / bare:>7.1f} {count:>8}")
    print(f"  {'(baseline: bare page)':<34} {bare:>8.1f}")
    print(
        "\n  report baseline: SELECT COUNT(*) of the same cycles; wall baseline: the bare "
        "layout page."
    )
    worst = max(verdicts, key=lambda item: item[2])
    print(
        f"latency report, 30 days, {args.tickets:,} tickets: slowest {worst[1]} "
        f"{worst[2]:.0f} ms (goal <= {GOALS['report']:.0f} ms): "
        + ("MEETS GOAL" if worst[2] <= GOALS["report"] else "BELOW GOAL")
    )
    wall = statistics.median(results["wall refresh"])
    print(
        f"wall refresh: {wall:.1f} ms (goal <= {GOALS['wall']:.0f} ms): "
        + ("MEETS GOAL" if wall <= GOALS["wall"] else "BELOW GOAL")
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        sys.exit(1)
