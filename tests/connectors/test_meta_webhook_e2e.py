"""Meta end to end: the hub handshake, a signed Page feed delivery becomes a ticket, edits
and removals update it, and a batch for two Pages reaches both."""

from __future__ import annotations

import pytest

from connectors.models import ChannelAccount, RawDelivery
from tests.conftest import CommitClient
from tests.connectors.fakes import FakePlatform, Reply
from tests.connectors.test_meta import (
    COMMENT_ID,
    GRAPH,
    VERIFY_TOKEN,
    facebook_channel,
    fb_comment,
    meta_signature,
    page_delivery,
    page_entry,
    wire,
)
from tickets.models import Mention

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake():
    with FakePlatform() as server:
        yield server


URL = "/connectors/meta/webhook/"


def _deliver(body: bytes, signature: str | None = None):
    return CommitClient().post(
        URL,
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=meta_signature(body) if signature is None else signature,
    )


def test_meta_hub_verification_echoes_the_challenge_only_for_our_token():
    facebook_channel()
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}

    good = CommitClient().get(URL, {**query, "hub.verify_token": VERIFY_TOKEN})
    bad = CommitClient().get(URL, {**query, "hub.verify_token": "guess"})

    assert good.status_code == 200
    assert good.content == b"1158201444"
    assert bad.status_code == 403


def test_meta_comment_becomes_a_ticket_then_edit_and_remove_update_it():
    channel = facebook_channel()

    added = _deliver(wire(page_delivery(page_entry(fb_comment()))))
    edited = _deliver(
        wire(
            page_delivery(page_entry(fb_comment(verb="edited", message="What APR on a car loan?")))
        )
    )
    removed = _deliver(wire(page_delivery(page_entry(fb_comment(verb="remove")))))

    assert [added.status_code, edited.status_code, removed.status_code] == [200, 200, 200]
    mention = Mention.objects.get()
    assert (mention.channel, mention.external_id) == (channel, COMMENT_ID)
    assert mention.text == "What APR on a car loan?"
    assert mention.edit_history[0]["text"].startswith("Why was my card declined")
    assert mention.deleted_at is not None
    assert mention.ticket.regulated is True


def test_meta_forged_signature_is_refused():
    facebook_channel()
    body = wire(page_delivery(page_entry(fb_comment())))

    response = _deliver(body, signature=meta_signature(body, secret="wrong"))

    assert response.status_code == 403
    assert RawDelivery.objects.count() == 0


def test_meta_batch_for_two_pages_reaches_both():
    first = facebook_channel()
    second = ChannelAccount(
        name="northwind-fb-careers",
        platform="facebook",
        settings={**first.settings, "page_id": "9900990099009900"},
    )
    second.set_secrets(first.secrets)
    second.save()
    other_comment = fb_comment(comment_id="777_888", message="Do you have openings?")
    body = wire(
        page_delivery(
            page_entry(fb_comment()),
            page_entry(other_comment, page_id="9900990099009900"),
        )
    )

    response = _deliver(body)

    assert response.status_code == 200
    assert len(response.json()["delivery_ids"]) == 2
    assert {(m.channel.name, m.external_id) for m in Mention.objects.all()} == {
        ("northwind-fb", COMMENT_ID),
        ("northwind-fb-careers", "777_888"),
    }


def test_meta_instagram_mention_waits_for_the_graph_api_when_it_is_down(fake):
    from datetime import timedelta

    from django.utils import timezone

    from connectors.services import delivery_due, delivery_process
    from connectors.services.deliveries import DELIVERY_RETRY_SECONDS
    from tests.connectors.test_meta import IG_USER_ID, ig_delivery, instagram_channel

    instagram_channel(fake.url)
    mention = {
        "field": "mentions",
        "value": {"media_id": "17918195224117851", "comment_id": "17894227972186120"},
    }
    fake.route(
        "GET",
        f"{GRAPH}/{IG_USER_ID}",
        Reply(503, {"error": {"message": "Service temporarily unavailable", "code": 2}}),
        Reply(
            200,
            {
                "mentioned_comment": {
                    "timestamp": "2026-11-20T15:10:02+0000",
                    "text": "@northwindbank what's the APR on the travel card?",
                    "username": "kim.rivers",
                    "id": "17894227972186120",
                },
                "id": IG_USER_ID,
            },
        ),
    )

    response = _deliver(wire(ig_delivery(mention)))

    delivery = RawDelivery.objects.get()
    assert response.status_code == 200
    assert delivery.status == "pending"
    assert delivery.error.startswith("will retry")
    assert Mention.objects.count() == 0
    assert delivery_due() == []  # not before its retry time
    later = timezone.now() + timedelta(seconds=DELIVERY_RETRY_SECONDS + 1)
    assert delivery_due(now=later) == [delivery.pk]
    delivery_process(delivery_id=delivery.pk)
    assert RawDelivery.objects.get().status == "processed"
    assert Mention.objects.get().text == "@northwindbank what's the APR on the travel card?"


def test_meta_instagram_mention_is_failed_when_the_graph_api_stays_down(fake):
    from connectors.services import delivery_process
    from tests.connectors.test_meta import IG_USER_ID, ig_delivery, instagram_channel

    instagram_channel(fake.url)
    mention = {
        "field": "mentions",
        "value": {"media_id": "17918195224117851", "comment_id": "17894227972186120"},
    }
    down = Reply(503, {"error": {"message": "Service temporarily unavailable", "code": 2}})
    fake.route("GET", f"{GRAPH}/{IG_USER_ID}", down)

    _deliver(wire(ig_delivery(mention)))
    for _ in range(4):  # the sweep's later tries, all while the Graph API is down
        delivery_process(delivery_id=RawDelivery.objects.get().pk)

    delivery = RawDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 5)
    assert delivery.error.startswith("gave up after 5 attempts")
    assert Mention.objects.count() == 0
