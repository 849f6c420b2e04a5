"""X end to end: CRC, a signed Account Activity delivery becomes a ticket, and the
agent's reply goes out through the outbox to the (fake) X API in the same thread."""

from __future__ import annotations

import pytest

from connectors.models import ChannelAccount, RawDelivery
from tests.conftest import CommitClient
from tests.connectors.fakes import FakePlatform, Reply
from tests.connectors.test_x import (
    BRAND_ID,
    CONSUMER_SECRET,
    CUSTOMER_TWEET,
    delivery,
    make_channel,
    tweet,
    wire,
    x_signature,
)
from tickets.models import Mention, Ticket

pytestmark = pytest.mark.django_db

URL = "/connectors/x/webhook/"


@pytest.fixture
def fake():
    with FakePlatform() as server:
        yield server


def _deliver(body: bytes, signature: str | None = None):
    signature = x_signature(CONSUMER_SECRET, body) if signature is None else signature
    return CommitClient().post(
        URL, data=body, content_type="application/json", HTTP_X_TWITTER_WEBHOOKS_SIGNATURE=signature
    )


def test_x_crc_challenge_is_answered(fake):
    make_channel(fake.url)

    response = CommitClient().get(URL, {"crc_token": "challenge-123"})

    assert response.status_code == 200
    assert response.json()["response_token"] == x_signature(CONSUMER_SECRET, b"challenge-123")


def test_x_delivery_becomes_a_ticket_and_the_reply_lands_in_the_thread(fake, api, agent):
    channel = make_channel(fake.url)
    fake.route("POST", "/2/tweets", Reply(201, {"data": {"id": "1861234567899000001"}}))

    response = _deliver(wire(delivery(tweet())))

    assert response.status_code == 200
    mention = Mention.objects.get()
    assert (mention.channel, mention.external_id) == (channel, CUSTOMER_TWEET)
    assert mention.text.startswith("@NorthwindBank my card was charged twice & nobody")
    ticket_id = mention.ticket_id
    client = api(agent)
    client.post(f"/api/v1/tickets/{ticket_id}/claim/")
    reply = client.post(
        f"/api/v1/tickets/{ticket_id}/replies/", {"body": "Sorry! Please DM us."}, format="json"
    ).json()
    client.post(f"/api/v1/replies/{reply['id']}/send/")

    sent = client.get(f"/api/v1/replies/{reply['id']}/").json()
    assert sent["state"] == "sent"
    assert sent["external_id"] == "1861234567899000001"
    (request,) = [r for r in fake.requests if r.method == "POST"]
    assert request.json()["reply"] == {"in_reply_to_tweet_id": CUSTOMER_TWEET}
    assert Ticket.objects.get(pk=ticket_id).state == "replied"


def test_x_forged_delivery_is_refused_and_nothing_is_stored(fake):
    make_channel(fake.url)
    body = wire(delivery(tweet()))

    response = _deliver(body, signature=x_signature("not-the-secret", body))

    assert response.status_code == 403
    assert RawDelivery.objects.count() == 0
    assert Mention.objects.count() == 0


def test_x_brands_own_tweet_never_becomes_a_ticket(fake):
    make_channel(fake.url)
    own = tweet(user={"id_str": BRAND_ID, "screen_name": "NorthwindBank", "name": "Northwind Bank"})

    response = _deliver(wire(delivery(own)))

    assert response.status_code == 200
    assert RawDelivery.objects.get().status == "processed"
    assert Ticket.objects.count() == 0


def test_x_delivery_goes_to_the_account_it_is_for(fake):
    first = make_channel(fake.url)
    # A second brand account subscribed to the same app (same consumer secret).
    second = ChannelAccount(
        name="northwind-x-help",
        platform="x",
        settings={**first.settings, "user_id": "999000111222333444"},
    )
    second.set_secrets(first.secrets)
    second.save()
    body = wire(delivery(tweet(), for_user_id="999000111222333444"))

    response = _deliver(body)

    assert response.status_code == 200
    assert Mention.objects.get().channel.name == "northwind-x-help"
