"""`make bench`: the desk's pages at scale, 10,000,000 mentions and 1,000,000 open tickets.

The database `servicedesk_scale` is built once, in the database, with set-based SQL
(INSERT … SELECT over generate_series and over the rows already made), and kept: the next
run measures it again without making it (`--rebuild` makes it anew, `--drop` drops it at
the end). The history covers 60 days: the older half closed, the last 30 days two
tickets open in three; each ticket has its customer, its first post and follow-ups (the
rest of the mentions), a reply, its revision and a lawyer's review when regulated, its
audit events and its response cycle; the latency record's per-day sums are built as the
refresh builds them. Then VACUUM ANALYZE (this server runs no autovacuum).

Then, through the whole Django stack in this process (django.test.Client, DEBUG off), for
each page: the SQL it runs (CaptureQueriesContext), an EXPLAIN of every SELECT (is there a
Seq Scan on mentions, tickets or replies?), EXPLAIN (ANALYZE, BUFFERS) of the heaviest,
and the server time of repeated requests against the targets. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402 (ROOT must be on sys.path first)
    DEFAULT_DATABASE_URL,
    POSTGRES_SCHEMES,
    BenchError,
    database_create,
    database_drop,
    django_setup,
    where,
)
from bench.pages import bench_urlconf  # noqa: E402
from bench.webhooks import percentile  # noqa: E402

DATABASE_NAME = "servicedesk_scale"
INFO_TABLE = "bench_scale_info"  # written last: its row says the data is complete
DAYS = 60
RECENT_DAYS = 30  # two tickets in three posted since then are still open
CHANNELS = (
    ("x-main", "x"),
    ("facebook-page", "facebook"),
    ("instagram", "instagram"),
    ("mastodon", "mastodon"),
    ("bluesky", "bluesky"),
    ("youtube", "youtube"),
)
AGENTS = 40
LAWYERS = 6
# Tables that must never be read whole by a page: a Seq Scan on one of them is flagged.
INDEXED_TABLES = ("tickets_mention", "tickets_ticket", "tickets_reply")
# Big too, reported when scanned (the latency report reads a period's cycles in table
# order on purpose: see tickets/reports/latency.py).
LARGE_TABLES = (
    "tickets_customer",
    "tickets_responsecycle",
    "tickets_replyrevision",
    "approvals_legalreview",
    "servicedesk_auditevent",
)
BULK_TABLES = (
    "tickets_customer",
    "tickets_ticket",
    "tickets_mention",
    "tickets_reply",
    "tickets_replyrevision",
    "approvals_legalreview",
    "servicedesk_auditevent",
    "tickets_responsecycle",
)
FILTERED_FLAG = 100_000
TARGETS = {"inbox p50": 50.0, "inbox p99": 150.0, "report": 1000.0, "wall": 100.0}

# The posts: pages.py's texts, the card number masked by its screening's span.
TEXTS = (
    "@NorthwindBank what is your mortgage rate for a first home?",
    "@NorthwindBank my card 4111 1111 1111 1111 was declined again",
    "@NorthwindBank the app keeps logging me out",
    "@NorthwindBank thanks for the quick help yesterday!",
    "@NorthwindBank can I refinance my car loan with you?",
    "@NorthwindBank waiting 40 minutes on hold and still no answer",
)
PII = '[{"kind": "card_number", "masked": "•••1111", "start": 23, "end": 42}]'


def scale_url(name: str) -> str:
    """DATABASE_URL's PostgreSQL server (else the local default), this database."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(POSTGRES_SCHEMES):
        url = DEFAULT_DATABASE_URL
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


# ---- the data ------------------------------------------------------------------------------

# Each step is one statement over every row; %(name)s are the sizes and ids below. A
# ticket's time, channel, customer, state and stage times follow from its id, so the
# mentions and the rows after them need no lookup of the ticket.
TICKETS_SQL = """
SELECT setseed(0.20260707);
INSERT INTO tickets_customer (id, platform, external_id, handle, display_name, created_at)
SELECT c, (%(platforms)s::text[])[1 + (c - 1) %% 6], 'c' || c, 'customer_' || c,
       'Customer ' || c, %(now)s::timestamptz - interval '90 days'
FROM generate_series(1::bigint, %(customers)s::bigint) c;
INSERT INTO tickets_ticket (
    id, channel_id, customer_id, state, priority, sentiment, regulated, regulated_reasons,
    pii_flags, assignee_id, posted_at, deadline, received_at, claimed_at, submitted_at,
    approved_at, sent_at, replied_at, closed_at, close_reason, updated_at
)
SELECT id, channel_id, customer_id, state, priority, sentiment, regulated,
       CASE WHEN regulated THEN '[{"source": "inbound", "category": "lending"}]'
            ELSE '[]' END::jsonb,
       CASE WHEN id %% 6 = 1 THEN '["card_number"]' ELSE '[]' END::jsonb,
       CASE WHEN state = 'open' THEN NULL ELSE %(agent0)s + id %% %(agents)s END,
       posted, posted + window_s * interval '1 second',
       posted + connector * interval '1 second',
       CASE WHEN state <> 'open' THEN posted + (connector + queue) * interval '1 second' END,
       CASE WHEN regulated AND state IN ('in_legal_review', 'approved', 'sending',
                                         'send_failed', 'closed', 'replied')
            THEN posted + (connector + queue + drafting) * interval '1 second' END,
       CASE WHEN regulated AND state IN ('approved', 'sending', 'send_failed', 'closed',
                                         'replied')
            THEN posted + (connector + queue + drafting + legal) * interval '1 second' END,
       CASE WHEN state IN ('closed', 'replied')
            THEN posted + (total - publishing) * interval '1 second' END,
       CASE WHEN state IN ('closed', 'replied') THEN posted + total * interval '1 second' END,
       CASE WHEN state IN ('closed', 'ignored')
            THEN posted + (total + 600) * interval '1 second' END,
       CASE WHEN state = 'ignored' THEN 'spam' ELSE '' END,
       %(now)s::timestamptz
FROM (
    SELECT g AS id,
           %(channel0)s + g %% 6 AS channel_id,
           1 + g %% 6 + 6 * ((g * 40503) %% (%(customers)s / 6)) AS customer_id,
           CASE WHEN g > %(tickets)s - %(recent)s AND g %% 3 <> 0
                     OR posted > %(now)s::timestamptz - interval '6 hours'
                THEN CASE WHEN (g * 7) %% 100 < 50 THEN 'open'
                          WHEN (g * 7) %% 100 < 85 THEN 'in_progress'
                          WHEN (g * 7) %% 100 < 95 THEN 'in_legal_review'
                          WHEN (g * 7) %% 100 < 97 THEN 'approved'
                          WHEN (g * 7) %% 100 < 98 THEN 'sending'
                          ELSE 'send_failed' END
                WHEN g %% 20 = 7 THEN 'ignored'
                WHEN g %% 20 = 9 THEN 'replied'
                ELSE 'closed' END AS state,
           CASE WHEN g %% 10 = 0 THEN 'high' ELSE 'normal' END AS priority,
           CASE WHEN g %% 10 = 0 THEN 900 ELSE 3600 END AS window_s,
           CASE g %% 5 WHEN 0 THEN 'negative' WHEN 1 THEN 'neutral' WHEN 2 THEN 'neutral'
                ELSE 'positive' END AS sentiment,
           g %% 10 < 3 AS regulated,
           posted, connector, queue, drafting, legal, publishing,
           connector + queue + drafting + publishing
             + CASE WHEN g %% 10 < 3 THEN legal + sending ELSE 0 END AS total
    FROM (
        SELECT g,
               %(now)s::timestamptz - (%(tickets)s - g) * %(spacing)s * interval '1 second'
                 AS posted,
               random() * 30 AS connector,
               -ln(1 - random()) * 400 AS queue,
               -ln(1 - random()) * 300 AS drafting,
               -ln(1 - random()) * 1200 AS legal,
               random() * 120 AS sending,
               random() * 5 AS publishing
        FROM generate_series(1::bigint, %(tickets)s::bigint) g
    ) r
) t
"""

MENTIONS_SQL = """
INSERT INTO tickets_mention (
    id, channel_id, external_id, customer_id, ticket_id, text, url, posted_at, received_at,
    in_reply_to_external_id, raw, screening, edit_history, reply_context
)
SELECT n, %(channel0)s + t %% 6, 'post-' || n,
       1 + t %% 6 + 6 * ((t * 40503) %% (%(customers)s / 6)), t,
       (%(texts)s::text[])[1 + n %% 6],
       'https://social.example/p/' || n,
       posted, posted + (n %% 30) * interval '1 second',
       CASE WHEN n > %(tickets)s THEN 'post-' || t ELSE '' END,
       '{}',
       CASE WHEN n %% 6 = 1 THEN jsonb_build_object('regulated', false, 'reasons', '[]'::jsonb,
                                                    'pii', %(pii)s::jsonb)
            ELSE jsonb_build_object('regulated', n %% 6 IN (0, 4), 'reasons', '[]'::jsonb,
                                    'pii', '[]'::jsonb) END,
       '[]', '{}'
FROM (
    SELECT n, t,
           least(%(now)s::timestamptz,
                 %(now)s::timestamptz - (%(tickets)s - t) * %(spacing)s * interval '1 second'
                 + CASE WHEN n > %(tickets)s THEN (n * 7919) %% 7200 ELSE 0 END
                   * interval '1 second') AS posted
    FROM (
        SELECT n, CASE WHEN n <= %(tickets)s THEN n
                       ELSE 1 + floor(random() * %(tickets)s)::bigint END AS t
        FROM generate_series(%(first)s::bigint, %(last)s::bigint) n
    ) m
) p
"""

REPLIES_SQL = """
INSERT INTO tickets_reply (
    ticket_id, author_id, state, kind, body, body_sha256, revision, screening,
    idempotency_key, external_id, external_url, failure_reason, template_slots,
    created_at, updated_at, sent_at
)
SELECT id, assignee_id,
       CASE state WHEN 'in_progress' THEN 'draft' WHEN 'in_legal_review' THEN 'in_review'
                  WHEN 'approved' THEN 'approved' WHEN 'sending' THEN 'sending'
                  WHEN 'send_failed' THEN 'failed' ELSE 'sent' END,
       'answer', %(body)s, %(body_sha)s, 1, '{}', gen_random_uuid(),
       CASE WHEN state IN ('closed', 'replied') THEN 'r' || id ELSE '' END, '',
       CASE WHEN state = 'send_failed' THEN 'rate limited' ELSE '' END, '{}',
       coalesce(claimed_at, received_at), coalesce(sent_at, claimed_at, received_at), sent_at
FROM tickets_ticket
WHERE state IN ('in_progress', 'in_legal_review', 'approved', 'sending', 'send_failed')
   OR state IN ('closed', 'replied') AND replied_at IS NOT NULL
ORDER BY id;
INSERT INTO tickets_replyrevision (reply_id, number, body, body_sha256, editor_id, screening,
                                   created_at)
SELECT id, 1, body, body_sha256, author_id, '{}', created_at FROM tickets_reply ORDER BY id;
INSERT INTO approvals_legalreview (reply_id, reviewer_id, decision, comment, body_sha256,
                                   revision, submitted_at, created_at)
SELECT r.id, %(lawyer0)s + t.id %% %(lawyers)s, 'approved', '', r.body_sha256, 1,
       t.submitted_at, t.approved_at
FROM tickets_reply r JOIN tickets_ticket t ON t.id = r.ticket_id
WHERE t.approved_at IS NOT NULL
ORDER BY r.id
"""

# Each ticket's events in the trail: triage, claim, the submission to legal, the
# publication, the closing. The hashes are unique but do not chain (this database is for
# speed, not for verify_audit).
AUDIT_SQL = """
INSERT INTO servicedesk_auditevent (
    seq, created_at, actor_id, actor_name, action, ticket_id, object_type, object_id,
    from_state, to_state, data, prev_hash, hash
)
SELECT t.id * 8 + e.k, e.at,
       CASE WHEN e.k = 0 THEN NULL ELSE t.assignee_id END,
       CASE WHEN e.k = 0 THEN ''
            ELSE 'scale-agent-' || lpad((t.assignee_id - %(agent0)s)::text, 2, '0') END,
       e.action, t.id, 'ticket', t.id, e.from_state, e.to_state,
       CASE WHEN e.k = 0 THEN jsonb_build_object('mention_id', t.id) ELSE '{}'::jsonb END,
       md5('p' || (t.id * 8 + e.k)) || md5('q' || (t.id * 8 + e.k)),
       md5((t.id * 8 + e.k)::text) || md5('h' || (t.id * 8 + e.k))
FROM tickets_ticket t
CROSS JOIN LATERAL (
    VALUES (0, 'ticket.triage', t.received_at, 'new', 'open'),
           (1, 'ticket.claim', t.claimed_at, 'open', 'in_progress'),
           (2, 'reply.submit', t.submitted_at, 'in_progress', 'in_legal_review'),
           (3, 'reply.published', t.replied_at, 'sending', 'replied'),
           (4, 'ticket.close', t.closed_at, 'replied', 'closed')
) AS e(k, action, at, from_state, to_state)
WHERE e.at IS NOT NULL AND (e.k <> 1 OR t.assignee_id IS NOT NULL)
"""

CYCLES_SQL = """
INSERT INTO tickets_responsecycle (
    ticket_id, number, channel_id, mention_id, priority, outcome, regulated, from_template,
    agent_id, reviewer_id, posted_at, deadline, received_at, claimed_at, submitted_at,
    decided_at, sent_at, replied_at, window_seconds, response_seconds, within_window,
    connector_seconds, queue_seconds, drafting_seconds, legal_seconds, sending_seconds,
    publishing_seconds, legal_wait_seconds, reviews
)
SELECT id, 1, channel_id, id, priority,
       CASE WHEN replied_at IS NOT NULL THEN 'answered'
            WHEN state = 'ignored' THEN 'ignored' ELSE 'pending' END,
       regulated, false, assignee_id,
       CASE WHEN approved_at IS NOT NULL THEN %(lawyer0)s + id %% %(lawyers)s END,
       posted_at, deadline, received_at, claimed_at, submitted_at, approved_at, sent_at,
       replied_at, dl - po, re - po, re - po <= dl - po, rc - po,
       CASE WHEN re IS NOT NULL THEN cl - rc END,
       CASE WHEN re IS NOT NULL THEN coalesce(su, se) - cl END,
       ap - su,
       CASE WHEN re IS NOT NULL THEN se - ap END,
       re - se,
       CASE WHEN re IS NOT NULL THEN ap - su END,
       CASE WHEN re IS NOT NULL AND ap IS NOT NULL THEN 1 ELSE 0 END
FROM (
    SELECT t.*,
           extract(epoch FROM posted_at)::float8 AS po,
           extract(epoch FROM deadline)::float8 AS dl,
           extract(epoch FROM received_at)::float8 AS rc,
           extract(epoch FROM claimed_at)::float8 AS cl,
           extract(epoch FROM submitted_at)::float8 AS su,
           extract(epoch FROM approved_at)::float8 AS ap,
           extract(epoch FROM sent_at)::float8 AS se,
           extract(epoch FROM replied_at)::float8 AS re
    FROM tickets_ticket t
) t
"""


@dataclass
class Sizes:
    tickets: int  # all of them
    open: int  # about: the last RECENT_DAYS, two in three
    mentions: int
    customers: int

    @classmethod
    def for_open(cls, open_tickets: int, mentions: int) -> Sizes:
        recent = open_tickets * 3 // 2
        tickets = recent * DAYS // RECENT_DAYS
        customers = max(6, tickets // 2 // 6 * 6)
        return cls(tickets, open_tickets, mentions, customers)


class Steps:
    """Runs the statements, printing each with its time and the total so far."""

    def __init__(self):
        self.began = time.perf_counter()

    def run(self, label: str, statements: str | list[str], params: dict | None = None):
        from django.db import connection

        started = time.perf_counter()
        print(f"  {label} ...", end="", flush=True)
        if isinstance(statements, str):
            statements = [statements]
        with connection.cursor() as cursor:
            for statement in statements:
                for part in statement.split(";\n"):
                    if part.strip():
                        cursor.execute(part, params)
        now = time.perf_counter()
        print(f" {now - started:.0f} s (total {now - self.began:.0f} s)", flush=True)


def indexes_drop(tables) -> list[str]:
    """Drop the secondary indexes and unique constraints of these tables (one bulk build
    each afterwards beats millions of inserts into them); returns the SQL to recreate
    them. Primary keys stay; foreign keys stay and are not checked during the load."""
    from django.db import connection

    again: list[str] = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'u'",
                [table],
            )
            for name, definition in cursor.fetchall():
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
                again.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            cursor.execute(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
                "FROM pg_index i WHERE i.indrelid = %s::regclass AND NOT i.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
                [table],
            )
            for name, definition in cursor.fetchall():
                cursor.execute(f"DROP INDEX {name}")
                again.append(definition)
    return again


def build(sizes: Sizes, *, database: str) -> None:
    """Migrate, make the users and channels, bulk-load every table, rebuild the indexes,
    the per-day sums and the bookmarks, VACUUM ANALYZE; mark the data complete last."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection, transaction

    from connectors.models import ChannelAccount

    print(
        f"building {database}: {sizes.tickets:,} tickets (about {sizes.open:,} open), "
        f"{sizes.mentions:,} mentions, {sizes.customers:,} customers over {DAYS} days",
        flush=True,
    )
    steps = Steps()
    call_command("migrate", interactive=False, verbosity=0)
    print(f"  migrated ... {time.perf_counter() - steps.began:.0f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {INFO_TABLE}")
        cursor.execute(
            "TRUNCATE " + ", ".join(BULK_TABLES) + ", servicedesk_auditchainhead, "
            "tickets_supervisionstate, tickets_latencyday, tickets_escalation, "
            "tickets_notification, tickets_ticketnote, tickets_ticketinvitation, "
            "connectors_channelaccount RESTART IDENTITY CASCADE"
        )
    channels = [
        ChannelAccount.objects.create(name=name, platform=platform, is_active=True)
        for name, platform in CHANNELS
    ]
    roles = {name: Group.objects.get(name=name) for name in ("agent", "legal", "supervisor")}
    User.objects.filter(username__startswith="scale-").delete()
    agents = [User.objects.create(username=f"scale-agent-{n:02d}") for n in range(AGENTS)]
    lawyers = [User.objects.create(username=f"scale-lawyer-{n}") for n in range(LAWYERS)]
    for user in agents:
        user.groups.add(roles["agent"])
    for user in lawyers:
        user.groups.add(roles["legal"])
    User.objects.create(username="scale-supervisor").groups.add(roles["supervisor"])
    # Consecutive ids: the SQL picks one by offset.
    for rows in (agents, lawyers, channels):
        if [row.pk for row in rows] != list(range(rows[0].pk, rows[0].pk + len(rows))):
            raise BenchError("users or channels did not get consecutive ids")
    body = "Thanks for reaching out! Please DM us and a specialist will call you back today."
    params = {
        "tickets": sizes.tickets,
        "recent": sizes.open * 3 // 2,
        "customers": sizes.customers,
        "spacing": DAYS * 86400 / sizes.tickets,
        "platforms": [platform for _, platform in CHANNELS],
        "texts": list(TEXTS),
        "pii": PII,
        "channel0": channels[0].pk,
        "agent0": agents[0].pk,
        "agents": AGENTS,
        "lawyer0": lawyers[0].pk,
        "lawyers": LAWYERS,
        "body": body,
        "body_sha": hashlib.sha256(body.encode()).hexdigest(),
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        params["now"] = cursor.fetchone()[0]
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        superuser = cursor.fetchone()[0]
        if superuser:
            # The rows are consistent by construction: skip the per-row foreign-key checks.
            cursor.execute("SET session_replication_role = replica")
    recreate = indexes_drop(BULK_TABLES)
    steps.run(f"customers and {sizes.tickets:,} tickets", TICKETS_SQL, params)
    chunk = 2_000_000
    for first in range(1, sizes.mentions + 1, chunk):
        last = min(sizes.mentions, first + chunk - 1)
        steps.run(
            f"mentions {first:,}-{last:,}", MENTIONS_SQL, {**params, "first": first, "last": last}
        )
    steps.run("replies, revisions, legal reviews", REPLIES_SQL, params)
    steps.run("audit events", AUDIT_SQL, params)
    steps.run("response cycles", CYCLES_SQL, params)
    steps.run(f"recreating {len(recreate)} indexes and unique constraints", recreate)
    with connection.cursor() as cursor:
        for name in ("session_replication_role", "synchronous_commit", "maintenance_work_mem"):
            cursor.execute(f"RESET {name}")
        for table in BULK_TABLES:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        cursor.execute(
            "INSERT INTO servicedesk_auditchainhead (id, seq, hash) "
            "SELECT 1, seq, hash FROM servicedesk_auditevent ORDER BY seq DESC LIMIT 1"
        )
        # The latency record is up to date with the trail: nothing for a refresh to read.
        cursor.execute(
            "INSERT INTO tickets_supervisionstate (id, cycles_seq, cycles_refreshed_at) "
            "SELECT 1, coalesce(max(seq), 0), now() FROM servicedesk_auditevent"
        )
    steps.run("ANALYZE (for the per-day sums)", "ANALYZE")

    from django.utils import timezone

    from tickets.cycles import latency_days_rebuild

    started = time.perf_counter()
    today = timezone.localdate()
    days = {today - timedelta(days=n) for n in range(DAYS + 2)}
    with transaction.atomic():
        latency_days_rebuild(days)
    print(f"  per-day sums of {len(days)} days ... {time.perf_counter() - started:.0f} s")
    steps.run("VACUUM ANALYZE", "VACUUM ANALYZE")
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {INFO_TABLE} (open_tickets bigint, mentions bigint, "
            "built_at timestamptz DEFAULT now())"
        )
        cursor.execute(
            f"INSERT INTO {INFO_TABLE} (open_tickets, mentions) VALUES (%s, %s)",  # noqa: S608
            [sizes.open, sizes.mentions],
        )
    print(f"  built in {time.perf_counter() - steps.began:.0f} s", flush=True)


def built_sizes() -> tuple[int, int] | None:
    """(open tickets, mentions) the database was built with, or None if incomplete."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [INFO_TABLE])
        if cursor.fetchone()[0] is None:
            return None
        cursor.execute(f"SELECT open_tickets, mentions FROM {INFO_TABLE}")  # noqa: S608
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def table_sizes() -> list[tuple[str, int, str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples::bigint, pg_size_pretty(pg_total_relation_size(oid)) "
            "FROM pg_class WHERE relkind = 'r' AND relname = ANY(%s) ORDER BY reltuples DESC",
            [list(BULK_TABLES)],
        )
        rows = cursor.fetchall()
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        rows.append(("(the whole database)", -1, cursor.fetchone()[0]))
    return rows


# ---- the SQL a page runs, and its plans ------------------------------------------------


@dataclass
class Query:
    sql: str
    ms: float
    settings: dict[str, str]  # what the transaction had set (work_mem, enable_*) then
    plan: str = ""
    scans: list[str] = field(default_factory=list)  # tables read by a Seq Scan
    # (table, rows) of each scan that read and threw away FILTERED_FLAG rows or more:
    # an index walked in the wrong order or on the wrong column is no better than a scan.
    filtered: list[tuple[str, int]] = field(default_factory=list)
    jit: bool = False

    def problems(self) -> list[str]:
        """What is wrong with this plan on the tables that need an index."""
        found = [f"Seq Scan on {table}" for table in self.scans if table in INDEXED_TABLES]
        found += [
            f"{rows:,} rows of {table} read and filtered out"
            for table, rows in self.filtered
            if table in INDEXED_TABLES
        ]
        return found


def captured(client, path: str) -> list[Query]:
    """The statements one request runs, each with its time and the planner settings its
    transaction had changed (the latency report sets work_mem and enable_indexscan for
    its own transaction: its plans must be explained with them)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    changed: list[dict[str, str]] = []

    def note_settings(execute, sql, params, many, context):
        try:
            return execute(sql, params, many, context)
        finally:
            raw = context["connection"].connection
            try:
                rows = raw.execute(
                    "SELECT name, setting FROM pg_settings WHERE source = 'session' "
                    "AND (name LIKE 'enable%' OR name IN ('work_mem', 'jit'))"
                ).fetchall()
            except Exception:  # noqa: BLE001 (an aborted transaction: nothing to note)
                rows = []
            changed.append(dict(rows))

    with CaptureQueriesContext(connection) as capture, connection.execute_wrapper(note_settings):
        get(client, path)
    if len(changed) != len(capture.captured_queries):
        changed = [{}] * len(capture.captured_queries)
    return [
        Query(item["sql"], float(item["time"]) * 1000, settings)
        for item, settings in zip(capture.captured_queries, changed, strict=True)
    ]


def explain(query: Query) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) in a transaction rolled back, with the planner settings
    the query ran with; notes its sequential scans and the rows its scans threw away."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for name, value in query.settings.items():
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query.sql}")
        query.plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    query.scans = sorted(set(re.findall(r"Seq Scan on (\w+)", query.plan)))
    query.jit = "\nJIT:" in query.plan
    table, loops = "", 1
    for line in query.plan.splitlines():
        if "(cost=" in line:  # a plan node: which table it reads, how many times
            node = re.search(r" on (\w+)(?: \w+)?  \(cost=", line)
            table = node.group(1) if node else ""
            ran = re.search(r"loops=(\d+)\)", line)
            loops = int(ran.group(1)) if ran else 0  # 0: "(never executed)"
        elif removed := re.search(r"Rows Removed by Filter: (\d+)", line):
            rows = int(removed.group(1)) * loops
            if rows >= FILTERED_FLAG:
                query.filtered.append((table, rows))


def is_select(sql: str) -> bool:
    text = sql.lstrip().upper()
    return text.startswith(("SELECT", "WITH")) and "SET_CONFIG(" not in text


# ---- timing --------------------------------------------------------------------------------


def get(client, path: str) -> None:
    response = client.get(path)
    if response.status_code != 200:
        raise BenchError(f"{path} answered {response.status_code}")
    if hasattr(response, "streaming_content"):
        for _ in response.streaming_content:
            pass


def timed(client, paths: list[str], requests: int, budget: float) -> list[float]:
    """Server time of up to `requests` requests (taking turns over paths), in ms, within
    `budget` seconds (a slow page gets fewer)."""
    times = []
    ends = time.perf_counter() + budget
    for number in range(requests):
        started = time.perf_counter()
        get(client, paths[number % len(paths)])
        times.append((time.perf_counter() - started) * 1000)
        if time.perf_counter() > ends and len(times) >= 3:
            break
    return times


@dataclass
class Page:
    name: str
    client: object
    paths: list[str]  # timed in turn; the first is the one whose SQL is explained
    target: str  # "inbox", "report", "wall" or "" (the baseline)
    times: list[float] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)


def pages_make(clients, period: str, tickets: dict[str, list[int]]) -> list[Page]:
    agent, supervisor = clients["agent"], clients["supervisor"]
    detail = [f"/tickets/{pk}/" for pk in tickets["sample"]]
    return [
        Page("inbox page /inbox/ (where / lands)", agent, ["/inbox/"], "inbox"),
        Page("ticket page /tickets/<id>/", agent, detail, "inbox"),
        Page("inbox API /api/v1/tickets/", agent, ["/api/v1/tickets/"], "inbox"),
        Page(
            "inbox API, open work only",
            agent,
            [
                "/api/v1/tickets/?state=open,in_progress,in_legal_review,approved,sending,send_failed"
            ],
            "inbox",
        ),
        Page(
            "latency report /reports/ (30 days)",
            supervisor,
            [f"/reports/?{period}&group_by=stage&interval=day"],
            "report",
        ),
        Page(
            "latency API /api/v1/metrics/latency/",
            supervisor,
            [f"/api/v1/metrics/latency/?{period}"],
            "report",
        ),
        Page(
            "latency API, group_by=stage",
            supervisor,
            [f"/api/v1/metrics/latency/?{period}&group_by=stage"],
            "report",
        ),
        Page("wall /wall/", supervisor, ["/wall/"], "wall"),
        Page("wall refresh /wall/panel/", supervisor, ["/wall/panel/"], "wall"),
        Page("wall data /api/v1/metrics/wall/", supervisor, ["/api/v1/metrics/wall/"], "wall"),
        Page("bare page (baseline)", agent, ["/bench/bare-page/"], ""),
    ]


def sample_tickets() -> dict[str, list[int]]:
    """Tickets for the ticket page: open ones (what an agent opens from the inbox) and
    closed ones (a customer's history, a link from a report), with their threads."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM tickets_ticket")
        (top,) = cursor.fetchone()
    rng = random.Random(7)
    candidates = rng.sample(range(1, top + 1), min(top, 400))
    from tickets.models import Ticket

    states = dict(Ticket.objects.filter(pk__in=candidates).values_list("pk", "state"))
    open_ids = [pk for pk in candidates if states.get(pk) not in (None, "closed", "ignored")]
    closed = [pk for pk in candidates if states.get(pk) in ("closed", "ignored")]
    legal = Ticket.objects.filter(state="in_legal_review").order_by("deadline", "id")
    first = list(legal.values_list("pk", flat=True)[:1])
    return {"sample": first + open_ids[:10] + closed[:9]}


def verdict(page: Page) -> tuple[str, str]:
    """(target, verdict) of a page's timings."""
    p50, p99 = statistics.median(page.times), percentile(page.times, 99)
    if page.target == "inbox":
        ok = p50 <= TARGETS["inbox p50"] and p99 <= TARGETS["inbox p99"]
        return "p50 <= 50, p99 <= 150", "MEETS" if ok else "MISSES"
    if page.target == "report":
        return "p50 <= 1000", "MEETS" if p50 <= TARGETS["report"] else "MISSES"
    if page.target == "wall":
        return "p50 <= 100", "MEETS" if p50 <= TARGETS["wall"] else "MISSES"
    return "(baseline)", "-"


def measure(pages: list[Page], args) -> None:
    from django.core.cache import cache

    from tickets.reports.wall import wall_warm

    for page in pages:
        for path in page.paths[:3]:
            get(page.client, path)  # warm: caches, connections, templates
    wall_warm()  # what beat does ahead of each hour
    for page in pages:
        page.queries = captured(page.client, page.paths[0])
    for number in range(args.rounds):
        order = pages if number % 2 == 0 else list(reversed(pages))
        for page in order:
            budget = args.page_seconds / args.rounds
            page.times += timed(page.client, page.paths, args.requests, budget)
        line = ", ".join(
            f"{page.name.split(' ')[0]} {statistics.median(page.times):.0f}" for page in pages[:3]
        )
        print(f"  round {number + 1}: p50 so far (ms): {line}", flush=True)
    cache.clear()
    wall_warm()


def explain_pages(pages: list[Page], plans: int) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) every SELECT of every page and print the heaviest.
    Returns the findings: each plan that reads mentions, tickets or replies whole."""
    findings = []
    for page in pages:
        selects = [query for query in page.queries if is_select(query.sql)]
        heaviest = sorted(selects, key=lambda query: -query.ms)[:plans]
        total = sum(query.ms for query in page.queries)
        print(
            f"\n=== {page.name}: {len(page.queries)} queries, {total:.1f} ms of SQL "
            f"(GET {page.paths[0][:90]})"
        )
        for query in selects:
            explain(query)
            if problems := query.problems():
                sql = " ".join(query.sql.split())
                findings.append(f"{page.name}: {'; '.join(problems)}: {sql[:240]} …")
            elif query.jit:
                findings.append(f"{page.name}: JIT compiled a query ({query.ms:.0f} ms)")
        for rank, query in enumerate(heaviest, 1):
            scans = ", ".join(query.scans) or "none"
            print(
                f"\n--- heaviest #{rank}: {query.ms:.1f} ms when captured; Seq Scans: {scans}"
                + (f"; planner settings: {query.settings}" if query.settings else "")
            )
            print(query.sql if len(query.sql) < 1500 else query.sql[:1500] + " …")
            print(query.plan)
        problems = sorted({problem for q in selects for problem in q.problems()})
        others = sorted({t for q in selects for t in q.scans if t in LARGE_TABLES})
        print(
            f"\nplans of {page.name}: "
            + ("; ".join(problems) if problems else "indexed")
            + (f" (sequential reads of {', '.join(others)})" if others else "")
        )
    return findings


def plans_verdict(page: Page) -> str:
    problems = [p for q in page.queries for p in q.problems()]
    if any(p.startswith("Seq Scan") for p in problems):
        return "SEQ SCAN"
    return "FILTERS" if problems else "indexed"


def report(pages: list[Page], findings: list[str], sizes_text: str) -> None:
    bare = statistics.median(pages[-1].times)
    print(f"\n{sizes_text}; server time through django.test.Client, DEBUG off")
    print(
        f"  {'figure':<38} {'p50 ms':>8} {'p99 ms':>8} {'n':>4} {'x bare':>7} {'queries':>8}"
        f"  {'target (ms)':<22} {'plans':<10} verdict"
    )
    for page in pages:
        p50, p99 = statistics.median(page.times), percentile(page.times, 99)
        target, result = verdict(page)
        plans = plans_verdict(page)
        print(
            f"  {page.name:<38} {p50:>8.1f} {p99:>8.1f} {len(page.times):>4} "
            f"{p50 / bare:>7.1f} {len(page.queries):>8}  {target:<22} {plans:<10} {result}"
        )
    print()
    print(
        "plans: indexed (no Seq Scan on mentions, tickets or replies, and no scan of them "
        f"throws {FILTERED_FLAG:,} rows or more away), FILTERS (an index walked past that "
        "many rows), SEQ SCAN"
    )
    if findings:
        print("Where an index (or a different query) is needed:")
        for line in findings:
            print(f"  {line}")
    else:
        print("No page reads mentions, tickets or replies whole.")


# ---- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tickets", type=int, default=1_000_000, help="open tickets (default 1,000,000)"
    )
    parser.add_argument(
        "--mentions", type=int, default=10_000_000, help="mentions (default 10,000,000)"
    )
    parser.add_argument(
        "--database",
        default=DATABASE_NAME,
        help=f"database name on DATABASE_URL's server (default {DATABASE_NAME})",
    )
    parser.add_argument("--rebuild", action="store_true", help="make the data again")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the pages (3)")
    parser.add_argument("--requests", type=int, default=20, help="requests per page per round (20)")
    parser.add_argument(
        "--page-seconds",
        type=float,
        default=20.0,
        help="time budget per page over all rounds: a slow page gets fewer requests (20)",
    )
    parser.add_argument(
        "--plans", type=int, default=2, help="heaviest queries per page explained with ANALYZE"
    )
    args = parser.parse_args(argv)
    if min(args.tickets, args.rounds, args.requests) < 1 or args.page_seconds <= 0:
        parser.error("--tickets, --rounds and --requests must be at least 1")
    sizes = Sizes.for_open(args.tickets, args.mentions)
    if args.mentions < sizes.tickets:
        parser.error(
            f"--mentions must be at least the number of tickets ({sizes.tickets:,}): "
            "every ticket has its first post"
        )
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.database):
        parser.error("--database: lower-case letters, digits and underscores")

    url = scale_url(args.database)
    created = database_create(url)
    print(f"scale bench on PostgreSQL {where(url)} ({'created' if created else 'present'})")
    # The bench's session stands for a supervisor who entered their second factor.
    os.environ["REQUIRE_2FA"] = "0"
    try:
        django_setup(url)
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.db import connections
        from django.test import Client
        from django.test.utils import override_settings

        from tickets.clock import db_now

        present = None if created else built_sizes()
        wanted = (sizes.open, sizes.mentions)
        if present is not None and present != wanted and not args.rebuild:
            raise BenchError(
                f"{args.database} holds {present[0]:,} open tickets and {present[1]:,} mentions, "
                f"not {wanted[0]:,} and {wanted[1]:,}: pass --rebuild to make it again, or "
                "--database to use another"
            )
        if present is None or args.rebuild:
            if not created:
                # From an empty database: a build that stopped half way (its indexes
                # dropped for the load) leaves nothing behind.
                connections.close_all()
                database_drop(url)
                database_create(url)
            build(sizes, database=args.database)
        else:
            call_command("migrate", interactive=False, verbosity=0)
            print(f"  reusing the data ({present[0]:,} open tickets, {present[1]:,} mentions)")
        for table, rows, size in table_sizes():
            print(f"  {table:<28} {rows:>12,} rows {size:>9}" if rows >= 0 else f"  {table} {size}")

        with override_settings(ROOT_URLCONF=bench_urlconf()):
            clients = {"agent": Client(), "supervisor": Client()}
            clients["agent"].force_login(User.objects.get(username="scale-agent-00"))
            clients["supervisor"].force_login(User.objects.get(username="scale-supervisor"))
            now = db_now()
            period = urlencode(
                {
                    "since": (now - timedelta(days=30)).isoformat(),
                    "until": (now + timedelta(seconds=1)).isoformat(),
                }
            )
            pages = pages_make(clients, period, sample_tickets())
            measure(pages, args)
            findings = explain_pages(pages, args.plans)
        from tickets.models import Ticket

        open_count = Ticket.objects.exclude(state__in=("closed", "ignored", "replied")).count()
        sizes_text = (
            f"{Ticket.objects.count():,} tickets ({open_count:,} open), "
            f"{sizes.mentions:,} mentions, on {where(url)}"
        )
        report(pages, findings, sizes_text)
    finally:
        from django.db import connections

        connections.close_all()
        if args.drop:
            database_drop(url)
            print(f"dropped {args.database}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        sys.exit(1)
