"""A burst: 10,000 mentions in well under a minute, over real HTTP, to the real stack.

gunicorn (production settings, two workers) takes signed webhook deliveries from a few
client threads: X Account Activity deliveries (`tweet_create_events`) and generic
webhook deliveries (`{"mentions": [...]}`), MENTIONS_PER_DELIVERY posts each, the
customers' post times spread over the last ten minutes in no particular order, and some
deliveries sent twice (a platform retrying). A real Celery worker turns them into
tickets through Redis and PostgreSQL. Then, as a user would check:

- none lost: every post sent is a mention, on its own ticket;
- none duplicated: exactly 10,000 mentions and tickets, however often a post was sent;
- deadlines right: each ticket's deadline is the customer's own post time plus the
  window of its platform and priority (the WindowPolicy table);
- the agents' queue right: GET /api/v1/tickets/ lists all 10,000, soonest deadline
  first, page after page.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.db.models import Count, Sum
from rest_framework.authtoken.models import Token

from connectors.models import ChannelAccount, RawDelivery
from connectors.services import channel_add
from tests.connectors.test_x import BRAND_ID, CONSUMER_SECRET, customer_user, tweet, x_signature
from tests.factories import UserFactory
from tests.reliability.wire import SECRET, generic_headers
from tests.workers import celery_worker_with, gunicorn_server
from tickets.models import Mention, Ticket, WindowPolicy

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

MENTIONS = 10_000
MENTIONS_PER_DELIVERY = 25
RESENT = 40  # deliveries a platform sends a second time
SENDERS = 4
SEND_WITHIN = 60.0  # seconds: "10,000 mentions in a minute"
# About 35 s on a quiet 2-core machine (the solo worker: a second worker process only
# contends for the same cores and the audit chain); generous for a busy one.
PROCESS_TIMEOUT = 150.0
PAGE = 500  # the API's largest page

URGENT = "@NorthwindBank urgent: I am locked out of my account since this morning"
ROUTINE = "@NorthwindBank what time does the branch on Main St open on Saturday?"


def _x_created_at(moment: datetime) -> str:
    return moment.strftime("%a %b %d %H:%M:%S +0000 %Y")


def _x_delivery(posts: list[tuple[str, datetime, str, int]]) -> tuple[str, bytes, dict]:
    tweets = []
    for external_id, posted_at, text, customer in posts:
        user = customer_user(id=10**15 + customer, id_str=str(10**15 + customer))
        user["screen_name"] = f"cust{customer}"
        tweets.append(
            tweet(
                id=int(external_id),
                id_str=external_id,
                text=text,
                created_at=_x_created_at(posted_at),
                timestamp_ms=str(int(posted_at.timestamp() * 1000)),
                user=user,
                edit_history={"initial_tweet_id": external_id, "edit_tweet_ids": [external_id]},
            )
        )
    body = json.dumps(
        {"for_user_id": BRAND_ID, "user_has_blocked": False, "tweet_create_events": tweets},
        separators=(",", ":"),
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "x-twitter-webhooks-signature": x_signature(CONSUMER_SECRET, body),
    }
    return "/connectors/x/webhook/", body, headers


def _generic_delivery(posts: list[tuple[str, datetime, str, int]]) -> tuple[str, bytes, dict]:
    mentions = [
        {
            "external_id": external_id,
            "author": {"external_id": f"c{customer}", "handle": f"c{customer}"},
            "text": text,
            "url": f"https://forum.example/p/{external_id}",
            "posted_at": posted_at.isoformat(),
        }
        for external_id, posted_at, text, customer in posts
    ]
    body = json.dumps({"mentions": mentions}).encode()
    return "/connectors/generic/webhook/", body, generic_headers(body)


def _burst(now: datetime) -> tuple[list[tuple[str, bytes, dict]], dict[tuple[str, str], datetime]]:
    """The requests to send (originals shuffled, then the re-sent ones among the later
    half) and every post's (platform, external id) → the time the customer posted it."""
    rng = random.Random(7)
    posted: dict[tuple[str, str], datetime] = {}
    requests = []
    for platform, build in (("x", _x_delivery), ("generic", _generic_delivery)):
        posts = []
        for n in range(MENTIONS // 2):
            # X gives whole seconds; the generic webhook takes what the partner sends.
            moment = now - timedelta(seconds=rng.uniform(0, 600))
            if platform == "x":
                moment = moment.replace(microsecond=0)
                external_id = str(1_870_000_000_000_000_000 + n)
            else:
                external_id = f"forum-{n}"
            posts.append((external_id, moment, URGENT if n % 5 == 0 else ROUTINE, n % 3000))
            posted[(platform, external_id)] = moment
        requests += [
            build(posts[start : start + MENTIONS_PER_DELIVERY])
            for start in range(0, len(posts), MENTIONS_PER_DELIVERY)
        ]
    rng.shuffle(requests)
    resent = rng.sample(requests[: len(requests) // 2], RESENT)
    later = requests[len(requests) // 2 :] + resent
    rng.shuffle(later)
    return requests[: len(requests) // 2] + later, posted


def _send(base_url: str, requests: list[tuple[str, bytes, dict]]) -> list[int]:
    """Send from SENDERS threads, each its share in order; the statuses, in order."""
    statuses: list[int | None] = [None] * len(requests)
    errors: list[BaseException] = []

    def sender(offset: int) -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=30) as client:
                for index in range(offset, len(requests), SENDERS):
                    path, body, headers = requests[index]
                    statuses[index] = client.post(path, content=body, headers=headers).status_code
        except BaseException as exc:  # reported below, with the statuses
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SEND_WITHIN * 2)
    assert not errors, errors
    return statuses


def _inbox(base_url: str, token: str) -> tuple[int, list[dict]]:
    rows, count = [], None
    with httpx.Client(base_url=base_url, timeout=60) as client:
        headers = {"Authorization": f"Token {token}"}
        while count is None or len(rows) < count:
            page = client.get(
                "/api/v1/tickets/", params={"limit": PAGE, "offset": len(rows)}, headers=headers
            )
            assert page.status_code == 200, page.text
            count = page.json()["count"]
            rows += page.json()["results"]
            if not page.json()["results"]:
                break
    return count, rows


def test_burst_of_10000_mentions_none_lost_none_doubled_deadlines_and_queue_in_order(
    tmp_path, database, broker
):
    channel_add(platform="generic", name="partner-forum", values={"secret": SECRET})
    channel_add(
        platform="x",
        name="northwind-x",
        values={"user_id": BRAND_ID, "handle": "NorthwindBank", "consumer_secret": CONSUMER_SECRET},
    )
    agent = UserFactory(username="alice", roles=["agent"])
    token = Token.objects.create(user=agent).key
    requests, posted = _burst(datetime.now(UTC))
    assert len(posted) == MENTIONS
    deliveries = MENTIONS // MENTIONS_PER_DELIVERY + RESENT

    with (
        gunicorn_server(database, tmp_path / "web.log", workers=2) as web,
        celery_worker_with(database, tmp_path / "worker.log") as worker,
    ):
        started = time.monotonic()
        statuses = _send(web.url, requests)
        sent_in = time.monotonic() - started
        assert statuses == [200] * deliveries
        assert sent_in < SEND_WITHIN
        worker.wait_for(
            lambda: RawDelivery.objects.filter(status="pending").count() == 0,
            "the worker to process the burst",
            timeout=PROCESS_TIMEOUT,
        )
        count, inbox = _inbox(web.url, token)

    # None lost, none doubled.
    stored = RawDelivery.objects.aggregate(n=Count("id"), created=Sum("mentions_created"))
    assert stored == {"n": deliveries, "created": MENTIONS}
    assert set(RawDelivery.objects.values_list("status", flat=True)) == {"processed"}
    platform_of = dict(ChannelAccount.objects.values_list("pk", "platform"))
    mentions = {
        (platform_of[channel_id], external_id): (ticket_id, posted_at)
        for channel_id, external_id, ticket_id, posted_at in Mention.objects.values_list(
            "channel_id", "external_id", "ticket_id", "posted_at"
        )
    }
    assert set(mentions) == set(posted)
    assert Mention.objects.count() == MENTIONS
    assert Ticket.objects.count() == MENTIONS
    assert len({ticket_id for ticket_id, _ in mentions.values()}) == MENTIONS
    assert all(when == posted[key] for key, (_, when) in mentions.items())

    # Deadlines: the customer's own post time plus the window of platform and priority.
    windows = {
        (platform, priority): timedelta(minutes=minutes)
        for platform, priority, minutes in WindowPolicy.objects.values_list(
            "platform", "priority", "first_response_minutes"
        )
    }
    tickets = list(
        Ticket.objects.values_list("pk", "channel_id", "priority", "posted_at", "deadline")
    )
    wrong = [
        pk
        for pk, channel_id, priority, posted_at, deadline in tickets
        if deadline != posted_at + windows[(platform_of[channel_id], priority)]
    ]
    assert wrong == []
    by_priority = Ticket.objects.values("priority").annotate(n=Count("id")).order_by("priority")
    assert {row["priority"]: row["n"] for row in by_priority} == {
        "high": MENTIONS // 5,
        "normal": MENTIONS - MENTIONS // 5,
    }

    # The agents' queue: everything, soonest deadline first (ties by ticket number).
    deadline_of = {pk: deadline for pk, _, _, _, deadline in tickets}
    assert count == MENTIONS
    assert len(inbox) == MENTIONS
    listed = [row["id"] for row in inbox]
    assert listed == sorted(deadline_of, key=lambda pk: (deadline_of[pk], pk))
    assert [datetime.fromisoformat(row["deadline"]) for row in inbox] == [
        deadline_of[pk] for pk in listed
    ]
