"""The X connector against a fake X API on 127.0.0.1, fed X's exact wire formats."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone

from connectors.base import (
    DuplicatePost,
    EntryError,
    PermanentError,
    PublishResult,
    ReplyTarget,
    TransientError,
)
from connectors.models import ChannelAccount, OutboundMessage
from connectors.outbox import outbox_deliver
from connectors.platforms.x import XConnector
from connectors.registry import connector_for
from tests.connectors.fakes import FakePlatform, Reply

pytestmark = pytest.mark.django_db

BRAND_ID = "1460011235813213455"  # > 2^53: only ever handled as a string
CUSTOMER_ID = "1337000000000000001"
CONSUMER_SECRET = "x-consumer-secret-0123456789abcdef"
CLIENT_SECRET = "x-oauth2-client-secret-fedcba"
CUSTOMER_TWEET = "1861234567890123456"
KEY = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest.fixture
def fake():
    with FakePlatform() as server:
        yield server


def make_channel(base_url: str = "https://api.x.com", **settings) -> ChannelAccount:
    channel = ChannelAccount.objects.create(
        name="northwind-x",
        platform="x",
        settings={
            "user_id": BRAND_ID,
            "handle": "NorthwindBank",
            "base_url": base_url,
            "timeout": 0.5,
            **settings,
        },
    )
    channel.set_secrets(
        {
            "consumer_secret": CONSUMER_SECRET,
            "access_token": "oauth2-user-token",
            "bearer_token": "app-only-bearer",
        }
    )
    channel.save()
    return channel


@pytest.fixture
def x(fake) -> XConnector:
    connector = connector_for(make_channel(fake.url))
    assert isinstance(connector, XConnector)
    return connector


def wire(payload: dict) -> bytes:
    """JSON as X sends it: non-ASCII as \\uXXXX and '/' escaped as '\\/'."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def x_signature(secret: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(mac).decode()


def customer_user(**overrides) -> dict:
    user = {
        "id": int(CUSTOMER_ID),
        "id_str": CUSTOMER_ID,
        "name": "Zoë Müller",
        "screen_name": "zoe_m",
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
    user.update(overrides)
    return user


def tweet(**overrides) -> dict:
    """A v1.1 Tweet object as Account Activity delivers it."""
    body = {
        "created_at": "Fri Nov 20 15:02:41 +0000 2026",
        "id": int(CUSTOMER_TWEET),
        "id_str": CUSTOMER_TWEET,
        "text": "@NorthwindBank my card was charged twice &amp; nobody answers &lt;3 hours",
        "display_text_range": [15, 75],
        "source": '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>',
        "truncated": False,
        "in_reply_to_status_id": None,
        "in_reply_to_status_id_str": None,
        "in_reply_to_user_id": int(BRAND_ID),
        "in_reply_to_user_id_str": BRAND_ID,
        "in_reply_to_screen_name": "NorthwindBank",
        "user": customer_user(),
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
                    "screen_name": "NorthwindBank",
                    "name": "Northwind Bank",
                    "id": int(BRAND_ID),
                    "id_str": BRAND_ID,
                    "indices": [0, 14],
                }
            ],
            "symbols": [],
        },
        "favorited": False,
        "retweeted": False,
        "filter_level": "low",
        "lang": "en",
        "timestamp_ms": "1795186961000",
        "edit_history": {"initial_tweet_id": CUSTOMER_TWEET, "edit_tweet_ids": [CUSTOMER_TWEET]},
        "edit_controls": {"editable_until_ms": 1795188761000, "edits_remaining": 5},
        "editable": True,
    }
    body.update(overrides)
    return body


def delivery(*tweets: dict, for_user_id: str = BRAND_ID, **arrays) -> dict:
    payload = {"for_user_id": for_user_id, "user_has_blocked": False}
    if tweets:
        payload["tweet_create_events"] = list(tweets)
    payload.update(arrays)
    return payload


def target(tweet_id: str = CUSTOMER_TWEET) -> ReplyTarget:
    return ReplyTarget(external_id=tweet_id, author_handle="zoe_m")


# ---- CRC and signatures -------------------------------------------------------------
def test_crc_answers_with_base64_hmac_of_the_token():
    connector = connector_for(make_channel())
    request = RequestFactory().get("/connectors/x/webhook/", {"crc_token": "Mjc3MTE0NDQ4Ng=="})

    response = connector.handshake(request)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    expected = base64.b64encode(
        hmac.new(CONSUMER_SECRET.encode(), b"Mjc3MTE0NDQ4Ng==", hashlib.sha256).digest()
    ).decode()
    assert json.loads(response.content) == {"response_token": f"sha256={expected}"}


def test_crc_without_token_is_not_a_handshake():
    connector = connector_for(make_channel())
    assert connector.handshake(RequestFactory().get("/connectors/x/webhook/")) is None


def test_verify_accepts_signature_over_raw_non_ascii_bytes():
    connector = connector_for(make_channel())
    body = wire(delivery(tweet(text="Zoë says: the app \u2764\ufe0f https://t.co/abc")))
    assert b"\\u00eb" in body and b"\\/" in body  # exactly as X puts it on the wire

    assert connector.verify(
        body, {"x-twitter-webhooks-signature": x_signature(CONSUMER_SECRET, body)}
    )
    # Re-serialising changes the bytes: a signature must be checked over what was received.
    reencoded = json.dumps(json.loads(body)).encode()
    signature = x_signature(CONSUMER_SECRET, body)
    assert not connector.verify(reencoded, {"x-twitter-webhooks-signature": signature})


def test_verify_accepts_raw_utf8_bytes():
    connector = connector_for(make_channel())
    body = '{"for_user_id":"1","note":"café \\/ 東京"}'.encode()
    assert connector.verify(
        body, {"x-twitter-webhooks-signature": x_signature(CONSUMER_SECRET, body)}
    )


def test_verify_rejects_forged_missing_and_hex_signatures():
    connector = connector_for(make_channel())
    body = wire(delivery(tweet()))
    hex_digest = hmac.new(CONSUMER_SECRET.encode(), body, hashlib.sha256).hexdigest()

    assert not connector.verify(body, {})
    assert not connector.verify(body, {"x-twitter-webhooks-signature": x_signature("guess", body)})
    assert not connector.verify(body, {"x-twitter-webhooks-signature": f"sha256={hex_digest}"})
    assert not connector.verify(
        body + b" ", {"x-twitter-webhooks-signature": x_signature(CONSUMER_SECRET, body)}
    )
    assert not connector.verify(body, {"x-twitter-webhooks-signature": "sha256=ünïcode"})


def test_verify_accepts_oauth2_signature_only_with_client_secret():
    channel = make_channel()
    body = wire(delivery(tweet()))
    header = {"x-twitter-webhooks-signature-oauth2": x_signature(CLIENT_SECRET, body)}
    assert not connector_for(channel).verify(body, header)

    channel.set_secrets({"consumer_secret": CONSUMER_SECRET, "client_secret": CLIENT_SECRET})
    channel.save()
    assert connector_for(channel).verify(body, header)


def test_kept_headers_include_both_signatures():
    assert "x-twitter-webhooks-signature" in XConnector.kept_headers
    assert "x-twitter-webhooks-signature-oauth2" in XConnector.kept_headers
    assert "authorization" not in XConnector.kept_headers


# ---- parsing ------------------------------------------------------------------------
def test_parse_reply_tweet_reads_ids_author_time_and_unescapes_text():
    connector = connector_for(make_channel())
    reply = tweet(
        in_reply_to_status_id=1861000000000000001,
        in_reply_to_status_id_str="1861000000000000001",
    )

    (event,) = connector.parse(wire(delivery(reply)), {})

    assert event.kind == "post"
    assert event.external_id == CUSTOMER_TWEET
    assert event.author == {
        "external_id": CUSTOMER_ID,
        "handle": "zoe_m",
        "display_name": "Zoë Müller",
    }
    assert event.text == "@NorthwindBank my card was charged twice & nobody answers <3 hours"
    assert event.posted_at == datetime(2026, 11, 20, 15, 2, 41, tzinfo=UTC)
    assert event.in_reply_to_external_id == "1861000000000000001"
    assert event.url == f"https://x.com/zoe_m/status/{CUSTOMER_TWEET}"
    assert event.is_own is False
    assert event.raw["id_str"] == CUSTOMER_TWEET
    assert connector.entry_errors == []


def test_parse_long_tweet_uses_extended_full_text():
    connector = connector_for(make_channel())
    full = "@NorthwindBank " + "I have been waiting for my refund for three weeks now. " * 6
    long_tweet = tweet(
        text=full[:140] + "\u2026 https://t.co/Xq1ZnYkLpQ",
        truncated=True,
        display_text_range=[15, 140],
        extended_tweet={
            "full_text": full.strip(),
            "display_text_range": [15, len(full.strip())],
            "entities": {"hashtags": [], "urls": [], "user_mentions": [], "symbols": []},
        },
    )

    (event,) = connector.parse(wire(delivery(long_tweet)), {})

    assert event.text == full.strip()
    assert len(event.text) > 280
    assert event.in_reply_to_external_id == ""


def test_parse_marks_the_brands_own_tweet():
    connector = connector_for(make_channel())
    own = tweet(
        id_str="1861234567890999999",
        text="@zoe_m Sorry to hear that, we've sent you a DM.",
        in_reply_to_status_id_str=CUSTOMER_TWEET,
        user=customer_user(id=int(BRAND_ID), id_str=BRAND_ID, screen_name="NorthwindBank"),
    )

    (event,) = connector.parse(wire(delivery(own)), {})

    assert event.is_own is True
    assert event.url == "https://x.com/NorthwindBank/status/1861234567890999999"


def test_parse_edit_points_to_the_original_post():
    connector = connector_for(make_channel())
    edited = tweet(
        id_str="1861234567890200000",
        text="@NorthwindBank charged twice, card ending 1234",
        edit_history={
            "initial_tweet_id": CUSTOMER_TWEET,
            "edit_tweet_ids": [CUSTOMER_TWEET, "1861234567890200000"],
        },
    )

    (event,) = connector.parse(wire(delivery(edited)), {})

    assert event.external_id == "1861234567890200000"
    assert event.extra["edit_of"] == CUSTOMER_TWEET


def test_parse_skips_deliveries_for_another_subscribed_account():
    connector = connector_for(make_channel())
    assert connector.parse(wire(delivery(tweet(), for_user_id="999")), {}) == []


def test_parse_skips_retweets_and_non_tweet_events():
    connector = connector_for(make_channel())
    retweet = tweet(
        id_str="1861234567890300000",
        text="RT @NorthwindBank: New branch hours",
        retweeted_status=tweet(user=customer_user(id_str=BRAND_ID)),
    )
    body = wire(
        delivery(
            retweet,
            favorite_events=[{"id": "a1", "created_at": "Fri Nov 20 15:02:41 +0000 2026"}],
        )
    )
    assert connector.parse(body, {}) == []
    assert connector.entry_errors == []


def test_parse_delete_event():
    connector = connector_for(make_channel())
    body = wire(
        {
            "for_user_id": BRAND_ID,
            "tweet_delete_events": [
                {
                    "status": {"id": "1861234567890999999", "user_id": BRAND_ID},
                    "timestamp_ms": "1795187000000",
                }
            ],
        }
    )

    (event,) = connector.parse(body, {})

    assert event.kind == "delete"
    assert event.external_id == "1861234567890999999"
    assert event.is_own is True


def test_parse_keeps_good_tweets_and_reports_the_broken_one():
    connector = connector_for(make_channel())
    good_one = tweet(id_str="1861234567890000001")
    broken = tweet(id_str="1861234567890000002", created_at="2026-11-20T15:02:41Z")
    good_two = tweet(id_str="1861234567890000003")

    events = connector.parse(wire(delivery(good_one, broken, good_two)), {})

    assert [e.external_id for e in events] == ["1861234567890000001", "1861234567890000003"]
    assert len(connector.entry_errors) == 1
    assert isinstance(connector.entry_errors[0], EntryError)
    assert "1861234567890000002" in connector.entry_errors[0].reason
    # The list is reset at each parse.
    connector.parse(wire(delivery(good_one)), {})
    assert connector.entry_errors == []


@pytest.mark.parametrize(
    "body",
    [b"<html>502 Bad Gateway</html>", b"[1, 2]", b'{"tweet_create_events": {"id_str": "1"}}'],
)
def test_parse_rejects_bodies_of_the_wrong_shape(body):
    connector = connector_for(make_channel())
    with pytest.raises(PermanentError):
        connector.parse(body, {})


# ---- publishing ---------------------------------------------------------------------
def test_publish_posts_the_reply_with_the_user_token(fake, x):
    fake.route(
        "POST",
        "/2/tweets",
        Reply(
            201,
            {
                "data": {
                    "id": "1861234567899000001",
                    "text": "@zoe_m We're sorry, Zoë: please DM us.",
                    "edit_history_tweet_ids": ["1861234567899000001"],
                }
            },
        ),
    )

    result = x.publish(text="We're sorry, Zoë: please DM us.", target=target(), idempotency_key=KEY)

    assert result == PublishResult(
        external_id="1861234567899000001",
        url="https://x.com/NorthwindBank/status/1861234567899000001",
    )
    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", "/2/tweets")
    assert request.headers["authorization"] == "Bearer oauth2-user-token"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "text": "We're sorry, Zoë: please DM us.",
        "reply": {"in_reply_to_tweet_id": CUSTOMER_TWEET},
    }


def test_publish_rate_limited_waits_until_the_reset(fake, x):
    reset = int(time.time()) + 120
    fake.route(
        "POST",
        "/2/tweets",
        Reply(
            429,
            {
                "title": "Too Many Requests",
                "detail": "Too Many Requests",
                "type": "about:blank",
                "status": 429,
            },
            headers={
                "x-rate-limit-limit": "100",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset),
            },
        ),
    )

    with pytest.raises(TransientError) as caught:
        x.publish(text="Hello", target=target(), idempotency_key=KEY)

    assert 115 <= caught.value.retry_after <= 121
    assert caught.value.ambiguous is False


def test_publish_daily_cap_waits_for_the_24_hour_reset(fake, x):
    now = int(time.time())
    fake.route(
        "POST",
        "/2/tweets",
        Reply(
            429,
            {"errors": [{"code": 88, "message": "Rate limit exceeded"}]},
            headers={
                "x-rate-limit-remaining": "97",
                "x-rate-limit-reset": str(now + 300),
                "x-user-limit-24hour-limit": "17",
                "x-user-limit-24hour-remaining": "0",
                "x-user-limit-24hour-reset": str(now + 7200),
            },
        ),
    )

    with pytest.raises(TransientError) as caught:
        x.publish(text="Hello", target=target(), idempotency_key=KEY)

    assert 7190 <= caught.value.retry_after <= 7201
    assert "Rate limit exceeded" in caught.value.reason


def test_publish_server_error_is_transient_and_ambiguous(fake, x):
    fake.route("POST", "/2/tweets", Reply(503, body=b"Service Unavailable"))

    with pytest.raises(TransientError) as caught:
        x.publish(text="Hello", target=target(), idempotency_key=KEY)

    assert caught.value.ambiguous is True


def test_publish_timeout_is_transient_and_ambiguous(fake, x):
    fake.route("POST", "/2/tweets", Reply(201, {"data": {"id": "1"}}, delay=3))
    started = time.monotonic()

    with pytest.raises(TransientError) as caught:
        x.publish(text="Hello", target=target(), idempotency_key=KEY)

    assert caught.value.ambiguous is True
    assert time.monotonic() - started < 2.5  # the channel's 0.5 s timeout, not X's pace


def test_publish_unreachable_host_is_transient_but_not_ambiguous(fake):
    with FakePlatform() as gone:
        url = gone.url
    connector = connector_for(make_channel(url))

    with pytest.raises(TransientError) as caught:
        connector.publish(text="Hello", target=target(), idempotency_key=KEY)

    assert caught.value.ambiguous is False


def test_publish_to_a_deleted_tweet_is_permanent_with_xs_message(fake, x):
    fake.route(
        "POST",
        "/2/tweets",
        Reply(
            403,
            {
                "detail": (
                    "You attempted to reply to a Tweet that is deleted or not visible to you."
                ),
                "type": "about:blank",
                "title": "Forbidden",
                "status": 403,
            },
        ),
    )

    with pytest.raises(PermanentError) as caught:
        x.publish(text="Hello", target=target(), idempotency_key=KEY)

    assert "deleted or not visible to you" in caught.value.reason


def test_publish_bad_token_is_permanent(fake, x):
    fake.route(
        "POST",
        "/2/tweets",
        Reply(
            401,
            {
                "title": "Unauthorized",
                "type": "about:blank",
                "status": 401,
                "detail": "Unauthorized",
            },
        ),
    )
    with pytest.raises(PermanentError) as caught:
        x.publish(text="Hello", target=target(), idempotency_key=KEY)
    assert "401" in caught.value.reason


DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}


def timeline(*posts: dict, next_token: str | None = None) -> dict:
    meta = {"result_count": len(posts)}
    if posts:
        meta.update(newest_id=posts[0]["id"], oldest_id=posts[-1]["id"])
    if next_token:
        meta["next_token"] = next_token
    return {"data": list(posts), "meta": meta} if posts else {"meta": meta}


def our_post(post_id: str, text: str, replied_to: str, created_at: datetime | None = None) -> dict:
    created_at = created_at or datetime.now(UTC)
    return {
        "id": post_id,
        "text": text,
        "created_at": created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "edit_history_tweet_ids": [post_id],
        "conversation_id": replied_to,
        "in_reply_to_user_id": CUSTOMER_ID,
        "referenced_tweets": [{"type": "replied_to", "id": replied_to}],
    }


def test_publish_duplicate_content_is_refused_as_a_duplicate_post(fake, x):
    fake.route("POST", "/2/tweets", Reply(403, DUPLICATE))

    with pytest.raises(DuplicatePost) as caught:
        x.publish(text="Fixed & refunded.", target=target(), idempotency_key=KEY)

    assert "duplicate content" in caught.value.reason
    assert [r.method for r in fake.requests] == ["POST"]  # the outbox looks, not publish


def test_find_own_reply_finds_our_reply_to_this_post_only(fake, x):
    other_post = "1861234567890777777"
    fake.route(
        "GET",
        f"/2/users/{BRAND_ID}/tweets",
        Reply(
            200,
            timeline(
                our_post("1861234567899000010", "@kim Please DM us your details.", other_post),
                our_post("1861234567899000009", "@zoe_m Something else entirely.", CUSTOMER_TWEET),
                {
                    "id": "1861234567899000008",
                    "text": "Please DM us your details.",
                    "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "edit_history_tweet_ids": ["1861234567899000008"],
                },
                next_token="7140dibdnow9c7btw4b0dvl0jrn1eqs1qzbt0wbp9wubu",
            ),
        ),
        Reply(
            200,
            timeline(
                our_post("1861234567899000005", "@zoe_m Please DM us your details.", CUSTOMER_TWEET)
            ),
        ),
    )

    result = x.find_own_reply(
        text="Please DM us your details.",
        target=target(),
        idempotency_key=KEY,
        since=datetime.now(UTC) - timedelta(minutes=1),
    )

    assert result == PublishResult(
        external_id="1861234567899000005",
        url="https://x.com/NorthwindBank/status/1861234567899000005",
    )
    first, second = fake.requests
    assert first.arg("tweet.fields").split(",")[:1] == ["referenced_tweets"]
    assert "created_at" in first.arg("tweet.fields").split(",")
    assert first.arg("pagination_token") is None
    assert second.arg("pagination_token") == "7140dibdnow9c7btw4b0dvl0jrn1eqs1qzbt0wbp9wubu"


def test_find_own_reply_ignores_the_same_words_posted_before_the_first_attempt(fake, x):
    first_attempt = datetime.now(UTC) - timedelta(minutes=1)
    earlier = first_attempt - timedelta(hours=2)
    fake.route(
        "GET",
        f"/2/users/{BRAND_ID}/tweets",
        Reply(
            200,
            timeline(
                our_post("1861234567899000012", "@zoe_m Thanks!", CUSTOMER_TWEET, earlier),
            ),
        ),
    )

    found = x.find_own_reply(
        text="Thanks!", target=target(), idempotency_key=KEY, since=first_attempt
    )

    assert found is None


def test_find_own_reply_returns_none_when_absent(fake, x):
    fake.route(
        "GET",
        f"/2/users/{BRAND_ID}/tweets",
        Reply(200, timeline(our_post("1861234567899000011", "@zoe_m Hello!", "1"))),
    )

    since = datetime.now(UTC) - timedelta(minutes=1)
    assert (
        x.find_own_reply(text="Hello!", target=target(), idempotency_key=KEY, since=since) is None
    )
    assert len(fake.requests) == 1


def _sent_reply(api, agent, text: str) -> int:
    """The customer's post on the X channel, claimed, answered with `text` and sent: the
    first publish attempt runs at once (eager tasks), against the fake X."""
    client = api(agent)
    ticket = client.post(
        "/api/v1/mentions/",
        {
            "channel": "northwind-x",
            "external_id": CUSTOMER_TWEET,
            "author": {"external_id": CUSTOMER_ID, "handle": "zoe_m"},
            "text": "@NorthwindBank was I charged twice?",
            "posted_at": datetime.now(UTC).isoformat(),
        },
        format="json",
    ).json()["ticket_id"]
    client.post(f"/api/v1/tickets/{ticket}/claim/")
    reply = client.post(f"/api/v1/tickets/{ticket}/replies/", {"body": text}, format="json")
    assert client.post(f"/api/v1/replies/{reply.json()['id']}/send/").status_code == 202
    return reply.json()["id"]


def test_outbox_duplicate_content_after_a_lost_answer_is_our_own_post(fake, x, api, agent):
    # The first POST creates the post but answers after the client gave up; the retry
    # is refused as duplicate content, and the timeline (late to show it at first)
    # then lists our post: it is this reply's, not a second one.
    posted = our_post("1861234567899000020", "@zoe_m Refunded.", CUSTOMER_TWEET)
    fake.route(
        "POST",
        "/2/tweets",
        Reply(201, {"data": {"id": posted["id"], "text": "Refunded."}}, delay=2),
        Reply(403, DUPLICATE),
    )
    fake.route(
        "GET", f"/2/users/{BRAND_ID}/tweets", Reply(200, timeline()), Reply(200, timeline(posted))
    )

    reply_id = _sent_reply(api, agent, "Refunded.")
    OutboundMessage.objects.filter(reply_id=reply_id).update(next_attempt_at=timezone.now())
    outbox_deliver(reply_id=reply_id)

    reply = api(agent).get(f"/api/v1/replies/{reply_id}/").json()
    assert (reply["state"], reply["external_id"]) == ("sent", posted["id"])
    assert len(fake.requests_to("POST", "/2/tweets")) == 2


def test_outbox_duplicate_content_of_an_older_reply_fails_asking_to_reword(fake, x, api, agent):
    older = our_post(
        "1861234567899000021",
        "@zoe_m Thanks for your patience!",
        CUSTOMER_TWEET,
        datetime.now(UTC) - timedelta(hours=2),
    )
    fake.route("POST", "/2/tweets", Reply(403, DUPLICATE))
    fake.route("GET", f"/2/users/{BRAND_ID}/tweets", Reply(200, timeline(older)))

    reply_id = _sent_reply(api, agent, "Thanks for your patience!")

    reply = api(agent).get(f"/api/v1/replies/{reply_id}/").json()
    assert reply["state"] == "failed"
    assert reply["external_id"] == ""
    assert "reword it" in reply["failure_reason"]


def test_settings_spec_names_what_x_needs():
    specs = {spec.key: spec for spec in XConnector.settings_spec}
    assert specs["consumer_secret"].required and specs["consumer_secret"].secret
    assert specs["user_id"].required and not specs["user_id"].secret
    assert specs["access_token"].secret and specs["bearer_token"].secret
    assert XConnector.max_reply_chars == 280
