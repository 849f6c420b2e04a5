"""Deliveries processed a batch at a time give what processing them one by one gives.

Workers claim pending deliveries in batches and write a batch's new conversations
together; everything else goes through the ticket services one event at a time. These
tests feed the same deliveries to two accounts — one processed as each arrives, one
left to pile up and processed as one batch — and compare what an agent would see.
"""

from __future__ import annotations

import json
import random
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from connectors.models import ChannelAccount, RawDelivery
from connectors.platforms.generic import sign
from connectors.services import (
    channel_add,
    deliveries_drain,
    delivery_claim,
    delivery_due,
    delivery_store_webhook,
)
from connectors.services.deliveries import DELIVERY_LEASE_SECONDS
from connectors.tasks import delivery_process_task, delivery_sweep_task
from servicedesk.audit import audit_verify
from servicedesk.models import AuditEvent
from tests.connectors.test_x import (
    customer_user,
    delivery,
    make_channel,
    tweet,
    wire,
)
from tickets.models import Customer, Mention, Ticket
from tickets.services import mention_ingest

pytestmark = pytest.mark.django_db

URL = "/connectors/generic/webhook/"
NOW = timezone.now()


def post(external_id: str, text: str, *, author: str = "u-1", minutes: int = 30, **extra) -> dict:
    return {
        "external_id": external_id,
        "author": {"external_id": author, "handle": f"h{author}", "display_name": f"N {author}"},
        "text": text,
        "posted_at": (NOW - timedelta(minutes=minutes)).isoformat(),
        **extra,
    }


# Deliveries as a forum sends them: new posts, a redelivery, an edit, a follow-up in a
# thread, a bad entry among good ones, a deletion, a thread started and answered within
# one delivery, a reply to a post we never saw.
DELIVERIES = [
    [post("a", "What's your mortgage rate?"), post("b", "Love the new app", author="u-2")],
    [post("a", "What's your mortgage rate?")],
    [post("a", "What's your HELOC rate?")],
    [post("c", "Hello? Anyone?", in_reply_to_external_id="a", minutes=20)],
    [post("d", "card declined"), {"external_id": "broken"}, post("e", "thanks!", author="u-3")],
    [post("b", "", author="u-2", deleted=True)],
    [
        post("f", "My transfer is stuck", author="u-4"),
        post("g", "It's urgent, fraud?", author="u-4", in_reply_to_external_id="f"),
    ],
    [post("h", "About that loan", author="u-5", in_reply_to_external_id="unknown-1")],
    [post("i", "Are you open today?", author="u-2")],
]


def store(channel: ChannelAccount, mentions: list[dict]) -> None:
    """A delivery stored as the webhook stores it, no worker woken: they pile up."""
    body = json.dumps({"mentions": mentions}).encode()
    delivery_store_webhook(channels=[channel], body=body, headers={})


def deliver(mentions: list[dict], secret: str) -> None:
    body = json.dumps({"mentions": mentions}).encode()
    response = Client().post(
        URL,
        data=body,
        content_type="application/json",
        HTTP_X_SERVICEDESK_SIGNATURE=sign(secret, body),
    )
    assert response.status_code == 200, response.content


def seen_by_an_agent(channel: ChannelAccount) -> dict:
    """The channel's conversations as an agent sees them: per post, its text, earlier
    texts, deletion and which posts share its ticket; per ticket, its triage."""
    mentions = list(Mention.objects.filter(channel=channel).select_related("ticket", "customer"))
    threads = {}
    for mention in mentions:
        threads.setdefault(mention.ticket_id, []).append(mention.external_id)
    return {
        mention.external_id: {
            "text": mention.text,
            "earlier": [entry["text"] for entry in mention.edit_history],
            "deleted": mention.deleted_at is not None,
            "thread": sorted(threads[mention.ticket_id]),
            "customer": (mention.customer.handle, mention.customer.display_name),
            "screening": mention.screening,
            "ticket": {
                "state": mention.ticket.state,
                "priority": mention.ticket.priority,
                "sentiment": mention.ticket.sentiment,
                "regulated": mention.ticket.regulated,
                "reasons": mention.ticket.regulated_reasons,
                "pii": mention.ticket.pii_flags,
                "posted_at": mention.ticket.posted_at,
                "deadline": mention.ticket.deadline,
            },
        }
        for mention in mentions
    }


def deliveries_of(channel: ChannelAccount) -> list[tuple[str, int, str]]:
    return [
        (d.status, d.mentions_created, d.error)
        for d in RawDelivery.objects.filter(channel=channel).order_by("pk")
    ]


def test_a_batch_gives_what_one_by_one_gives():
    one_by_one = channel_add(platform="generic", name="forum-a", values={"secret": "sa"})
    batched = channel_add(platform="generic", name="forum-b", values={"secret": "sb"})

    for mentions in DELIVERIES:  # each processed as it arrives (tasks run in-process)
        deliver(mentions, "sa")
    for mentions in DELIVERIES:
        store(batched, mentions)
    assert RawDelivery.objects.filter(channel=batched, status="pending").count() == 9
    processed = deliveries_drain()

    assert processed == 9
    assert seen_by_an_agent(batched) == seen_by_an_agent(one_by_one)
    assert deliveries_of(batched) == deliveries_of(one_by_one)
    expected_threads = {"a": ["a", "c"], "f": ["f", "g"], "h": ["h"]}
    for external_id, thread in expected_threads.items():
        assert seen_by_an_agent(batched)[external_id]["thread"] == thread
    assert seen_by_an_agent(batched)["a"]["earlier"] == ["What's your mortgage rate?"]
    assert seen_by_an_agent(batched)["b"]["deleted"] is True
    assert Ticket.objects.filter(channel=batched).count() == 7  # a, b, d, e, f, h, i
    assert audit_verify().ok


def test_a_new_post_in_a_batch_makes_the_ticket_and_audit_the_ticket_service_makes():
    forum = channel_add(platform="generic", name="forum", values={"secret": "s"})
    text = "Is the APR on the car loan fixed? This is urgent!"
    store(forum, [post("batch-1", text, author="u-9")])
    deliveries_drain()
    by_service = mention_ingest(
        channel=forum,
        external_id="service-1",
        author={"external_id": "u-9", "handle": "hu-9", "display_name": "N u-9"},
        text=text,
        posted_at=NOW - timedelta(minutes=30),
    )

    batch = Mention.objects.select_related("ticket").get(external_id="batch-1")
    service = by_service.mention

    def ticket_fields(ticket: Ticket) -> dict:
        skipped = {"id", "received_at", "updated_at"}
        return {
            f.attname: getattr(ticket, f.attname)
            for f in Ticket._meta.concrete_fields
            if f.attname not in skipped
        }

    assert ticket_fields(batch.ticket) == ticket_fields(service.ticket)
    assert (batch.text, batch.screening, batch.customer_id, batch.posted_at) == (
        service.text,
        service.screening,
        service.customer_id,
        service.posted_at,
    )
    triage = {event.ticket_id: event for event in AuditEvent.objects.filter(action="ticket.triage")}
    for mention in (batch, service):
        event = triage[mention.ticket_id]
        assert (event.from_state, event.to_state, event.object_type) == ("new", "open", "ticket")
        assert event.data["mention_id"] == mention.pk
    ignored = {"mention_id"}
    assert {k: v for k, v in triage[batch.ticket_id].data.items() if k not in ignored} == {
        k: v for k, v in triage[service.ticket_id].data.items() if k not in ignored
    }
    assert Customer.objects.filter(external_id="u-9").count() == 1
    assert audit_verify().ok


def test_a_batch_updates_a_customers_handle_to_their_latest_post():
    forum = channel_add(platform="generic", name="forum", values={"secret": "s"})
    deliver([post("p1", "hi", author="u-7")], "s")
    renamed = post("p2", "hello again", author="u-7")
    renamed["author"].update(handle="new_handle", display_name="New Name")
    store(forum, [renamed])
    deliveries_drain()

    customer = Customer.objects.get(external_id="u-7")
    assert (customer.handle, customer.display_name) == ("new_handle", "New Name")


def test_a_claimed_delivery_comes_back_only_when_its_lease_ends():
    forum = channel_add(platform="generic", name="forum", values={"secret": "s"})
    store(forum, [post("p1", "hi")])

    (claimed,) = delivery_claim(limit=10)  # ...and its worker dies
    again = delivery_claim(limit=10)
    later = timezone.now() + timedelta(seconds=DELIVERY_LEASE_SECONDS + 1)
    due_later = delivery_due(now=later + timedelta(minutes=1))
    (reclaimed,) = delivery_claim(limit=10, now=later)

    assert again == []
    assert due_later == [claimed.pk]
    assert (reclaimed.pk, reclaimed.attempts) == (claimed.pk, 2)


def test_a_delivery_whose_attempts_all_died_is_failed_for_a_person_to_reprocess():
    forum = channel_add(platform="generic", name="forum", values={"secret": "s"})
    store(forum, [post("p1", "hi")])
    # Claimed five times, and each time its worker died before finishing.
    RawDelivery.objects.update(attempts=5, next_attempt_at=timezone.now())

    claimed = delivery_claim(limit=10)
    swept = delivery_sweep_task.apply().get()
    delivery = RawDelivery.objects.get()

    assert (claimed, swept) == ([], 0)
    assert delivery.status == "failed"
    assert "5 attempts" in delivery.error
    # Someone looks at it and reprocesses it (the admin's action runs this task).
    delivery_process_task.apply(kwargs={"delivery_id": delivery.pk})
    delivery.refresh_from_db()
    assert (delivery.status, delivery.mentions_created) == ("processed", 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_three_workers_draining_redeliveries_at_once_make_each_post_once():
    forum = channel_add(platform="generic", name="forum", values={"secret": "s"})
    posts = [post(f"p{n}", f"question {n}", author=f"u-{n % 4}") for n in range(12)]
    copies = [[p] for p in posts for _ in range(3)]
    random.Random(5).shuffle(copies)
    for mentions in copies:
        store(forum, mentions)
    barrier = threading.Barrier(3)
    counts: list[int] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            counts.append(deliveries_drain(batch=5))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(counts) == 36
    assert Mention.objects.count() == 12
    assert Ticket.objects.count() == 12
    assert set(RawDelivery.objects.values_list("status", flat=True)) == {"processed"}
    assert sum(RawDelivery.objects.values_list("mentions_created", flat=True)) == 12
    assert audit_verify().ok


@pytest.mark.postgres
def test_a_post_the_database_refuses_fails_alone_in_its_batch():
    x = make_channel()
    # X says nothing of a screen name's length; our customer table takes 255 characters.
    too_long = customer_user(id_str="1337000000000000002", screen_name="z" * 300)
    first = wire(
        delivery(
            tweet(id_str="1861234567890000001"),
            tweet(id_str="1861234567890000002", user=too_long),
            tweet(id_str="1861234567890000003"),
        )
    )
    second = wire(delivery(tweet(id_str="1861234567890000004")))
    for body in (first, second):
        delivery_store_webhook(channels=[x], body=body, headers={})

    deliveries_drain()

    first, second = RawDelivery.objects.order_by("pk")
    assert (first.status, first.mentions_created) == ("failed", 2)
    assert "1861234567890000002" in first.error
    assert (second.status, second.mentions_created) == ("processed", 1)
    assert sorted(Mention.objects.values_list("external_id", flat=True)) == [
        "1861234567890000001",
        "1861234567890000003",
        "1861234567890000004",
    ]
    assert audit_verify().ok
