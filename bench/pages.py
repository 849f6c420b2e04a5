"""`make bench`: the inbox and legal-queue pages with 100,000 open tickets on PostgreSQL,
beside a bare logged-in page in the same run.

Each round requests the inbox (as an agent), the legal queue (as a lawyer) and the
baseline (the layout with nothing in it, as the agent) N times each, in alternating
chunks. Server time is measured around Django's test client (the whole stack in this
process: middleware, session, the view, the template). The number of queries per page
is counted at 1,000 and at the full count of tickets: it must not change. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402
    BenchError,
    bench_database_url,
    database_create,
    database_drop,
    django_setup,
    where,
)

GOALS = {"p50": 50.0, "p99": 150.0}
BATCH = 5000
IN_REVIEW_SHARE = 50  # one ticket in 50 has a reply waiting for legal
TEXTS = (
    "@NorthwindBank what is your mortgage rate for a first home?",
    "@NorthwindBank my card 4111 1111 1111 1111 was declined again",
    "@NorthwindBank the app keeps logging me out",
    "@NorthwindBank thanks for the quick help yesterday!",
)


# The baseline page: the same layout, session and navigation, with no data in it.
def bare_page(request):
    from django.shortcuts import render

    from tickets.ui import html_view

    return html_view()(lambda req: render(req, "base.html", {}))(request)


def bench_urlconf():
    """Every real route plus the baseline page (a module object: this file runs as
    __main__, so Django could not import it by name)."""
    import types

    from django.urls import include, path

    module = types.ModuleType("bench_pages_urls")
    module.urlpatterns = [
        path("bench/bare-page/", bare_page),
        path("", include("servicedesk.urls")),
    ]
    return module


def seed(total: int, start: int = 0) -> None:
    """Open tickets `start`..`total`, each with its customer and first post (with a
    screening), one in IN_REVIEW_SHARE with a reply in legal review."""
    import uuid

    from django.contrib.auth.models import User

    from connectors.models import ChannelAccount
    from tickets.models import Customer, Mention, Reply, Ticket

    channel = ChannelAccount.objects.get(name="bench")
    agent = User.objects.get(username="bench-agent")
    now = datetime.now(UTC)
    for offset in range(start, total, BATCH):
        numbers = range(offset, min(offset + BATCH, total))
        customers = Customer.objects.bulk_create(
            Customer(platform="simulated", external_id=f"p{n}", handle=f"customer_{n}")
            for n in numbers
        )
        tickets = []
        for n, customer in zip(numbers, customers, strict=True):
            in_review = n % IN_REVIEW_SHARE == 0
            # Posts over the last hour, windows of 15 minutes to 24 hours: deadlines spread
            # as on a real desk (unique to the microsecond, like the platforms' timestamps).
            posted = now - timedelta(seconds=(n * 7919) % 3600, microseconds=n)
            ticket = Ticket(
                channel=channel,
                customer=customer,
                regulated=in_review,
                assignee=agent if in_review or n % 3 == 0 else None,
                posted_at=posted,
                received_at=posted,
                deadline=posted + timedelta(minutes=15 + (n * 104729) % 1425),
                submitted_at=now if in_review else None,
            )
            # Bulk rows skip the state machine: the bench's own database, set directly.
            ticket.__dict__["state"] = (
                "in_legal_review" if in_review else "in_progress" if n % 3 == 0 else "open"
            )
            tickets.append(ticket)
        tickets = Ticket.objects.bulk_create(tickets)
        Mention.objects.bulk_create(
            Mention(
                channel=channel,
                external_id=f"post-{ticket.customer.external_id}",
                customer=ticket.customer,
                ticket=ticket,
                text=TEXTS[n % len(TEXTS)],
                posted_at=ticket.posted_at,
                received_at=ticket.received_at,
                screening={
                    "regulated": n % len(TEXTS) == 0,
                    "reasons": [],
                    "pii": [{"kind": "card_number", "masked": "•••1111", "start": 23, "end": 42}]
                    if n % len(TEXTS) == 1
                    else [],
                },
            )
            for n, ticket in zip(numbers, tickets, strict=True)
        )
        Reply.objects.bulk_create(
            Reply(
                ticket=ticket,
                author=agent,
                state="in_review",
                body="Please DM us and a specialist will call you.",
                body_sha256="0" * 64,
                idempotency_key=uuid.uuid4(),
            )
            for ticket in tickets
            if ticket.state == "in_legal_review"
        )


def prepare(total: int) -> None:
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection

    from connectors.models import ChannelAccount
    from servicedesk.models import AuditChainHead, AuditEvent
    from tickets.models import Customer, Mention, Reply, ReplyRevision, Ticket

    call_command("migrate", interactive=False, verbosity=0)
    tables = [
        model._meta.db_table
        for model in (ReplyRevision, Reply, Mention, Ticket, Customer, AuditEvent, AuditChainHead)
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    for username, role in (("bench-agent", "agent"), ("bench-lawyer", "legal")):
        user, _ = User.objects.get_or_create(username=username)
        user.groups.set([Group.objects.get(name=role)])
    ChannelAccount.objects.update_or_create(
        name="bench", defaults={"platform": "simulated", "is_active": True}
    )


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def clients():
    from django.contrib.auth.models import User
    from django.test import Client

    agent, lawyer = Client(), Client()
    agent.force_login(User.objects.get(username="bench-agent"))
    lawyer.force_login(User.objects.get(username="bench-lawyer"))
    return {
        "inbox": (agent, "/inbox/"),
        "legal queue": (lawyer, "/legal/"),
        "bare page": (agent, "/bench/bare-page/"),
    }


def queries_per_page(pages) -> dict[str, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for name, (client, path) in pages.items():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        if response.status_code != 200:
            raise BenchError(f"{path} answered {response.status_code}")
        counts[name] = len(captured)
    return counts


def measure(pages, requests: int, chunk: int, flip: bool) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in pages}
    order = list(pages)
    if flip:
        order.reverse()
    done = 0
    while done < requests:
        for name in order:
            client, path = pages[name]
            for _ in range(min(chunk, requests - done)):
                started = time.perf_counter()
                response = client.get(path)
                times[name].append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise BenchError(f"{path} answered {response.status_code}")
        done += chunk
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100, help="per page per round")
    parser.add_argument("--chunk", type=int, default=20)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    url = bench_database_url().replace("_bench", "_pages_bench")
    print(f"pages bench: {args.tickets:,} open tickets on PostgreSQL {where(url)}")
    database_create(url)
    try:
        django_setup(url)
        from django.test.utils import override_settings

        with override_settings(ROOT_URLCONF=bench_urlconf()):
            prepare(args.tickets)
            small = min(1000, args.tickets)
            seed(small)
            analyze()
            pages = clients()
            queries_small = queries_per_page(pages)
            started = time.perf_counter()
            seed(args.tickets, start=small)
            analyze()
            print(f"  seeded in {time.perf_counter() - started:.0f} s")
            queries_full = queries_per_page(pages)
            measure(pages, 10, 5, False)  # warm-up
            rounds = []
            for number in range(args.rounds):
                times = measure(pages, args.requests, args.chunk, flip=number % 2 == 1)
                rounds.append(times)
                print(
                    f"  round {number + 1}: "
                    + "  ".join(
                        f"{name} p50 {statistics.median(values):.1f} ms"
                        for name, values in times.items()
                    )
                )
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            database_drop(url)

    print(f"\n  {'page':<12} {'p50 ms':>8} {'p99 ms':>8} {'x bare p50':>11} {'queries':>8}")
    bare = [value for times in rounds for value in times["bare page"]]
    bare_p50 = statistics.median(bare)
    verdicts = []
    for name in pages:
        values = [value for times in rounds for value in times[name]]
        p50, p99 = statistics.median(values), percentile(values, 0.99)
        same = "" if queries_small[name] == queries_full[name] else " (GREW)"
        print(
            f"  {name:<12} {p50:>8.1f} {p99:>8.1f} {p50 / bare_p50:>11.2f} "
            f"{queries_full[name]:>8}{same}"
        )
        if name != "bare page":
            ok = p50 <= GOALS["p50"] and p99 <= GOALS["p99"] and not same
            verdicts.append(
                f"{name}: p50 {p50:.1f} ms (goal <= {GOALS['p50']:.0f}), p99 {p99:.1f} ms "
                f"(goal <= {GOALS['p99']:.0f}), queries {queries_small[name]} at "
                f"{min(1000, args.tickets):,} tickets and {queries_full[name]} at "
                f"{args.tickets:,}: {'MEETS GOAL' if ok else 'BELOW GOAL'}"
            )
    print()
    for line in verdicts:
        print(line)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        sys.exit(1)
