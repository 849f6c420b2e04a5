"""Facebook Page and Instagram connectors against a fake Graph API, in Meta's wire formats."""

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

from connectors.base import PermanentError, PublishResult, ReplyTarget, TransientError
from connectors.models import ChannelAccount
from connectors.platforms.meta import FacebookConnector, InstagramConnector
from connectors.registry import connector_for
from tests.connectors.fakes import FakePlatform, Reply

# The Graph API version the connectors call unless an account pins another: the latest
# in Meta's changelog when it was chosen (see connectors/platforms/meta.py).
GRAPH = "/v26.0"
DAY = timedelta(days=1)

pytestmark = pytest.mark.django_db

APP_SECRET = "meta-app-secret-4f1c2d"
VERIFY_TOKEN = "northwind-verify-7a9b"
PAGE_ID = "1353269864728879"
PAGE_TOKEN = "EAAGpage-token"
POST_ID = f"{PAGE_ID}_2422865137769341"
COMMENT_ID = "2422865137769341_2422868031102385"
PERMALINK = "https://www.facebook.com/1353269864728879/posts/2422865137769341/"
IG_USER_ID = "17841405309211844"
IG_TOKEN = "IGQWR-user-token"
IG_COMMENT_ID = "17865799348089039"
KEY = uuid.UUID("00000000-0000-4000-8000-000000000002")


@pytest.fixture
def fake():
    with FakePlatform() as server:
        yield server


def facebook_channel(base_url: str = "https://graph.facebook.com", **settings) -> ChannelAccount:
    channel = ChannelAccount.objects.create(
        name="northwind-fb",
        platform="facebook",
        settings={"page_id": PAGE_ID, "base_url": base_url, "timeout": 0.5, **settings},
    )
    channel.set_secrets(
        {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "page_access_token": PAGE_TOKEN}
    )
    channel.save()
    return channel


def instagram_channel(base_url: str = "https://graph.facebook.com", **settings) -> ChannelAccount:
    channel = ChannelAccount.objects.create(
        name="northwind-ig",
        platform="instagram",
        settings={
            "ig_user_id": IG_USER_ID,
            "username": "northwindbank",
            "base_url": base_url,
            "timeout": 0.5,
            **settings,
        },
    )
    channel.set_secrets(
        {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "access_token": IG_TOKEN}
    )
    channel.save()
    return channel


@pytest.fixture
def fb(fake) -> FacebookConnector:
    connector = connector_for(facebook_channel(fake.url))
    assert isinstance(connector, FacebookConnector)
    return connector


@pytest.fixture
def ig(fake) -> InstagramConnector:
    connector = connector_for(instagram_channel(fake.url))
    assert isinstance(connector, InstagramConnector)
    return connector


def wire(payload: dict) -> bytes:
    """JSON as Meta sends it: non-ASCII as \\uXXXX and '/' escaped as '\\/'."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def meta_signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def page_delivery(*entries: dict) -> dict:
    return {"entry": list(entries), "object": "page"}


def page_entry(*values: dict, page_id: str = PAGE_ID, time_: int = 1795186970) -> dict:
    return {
        "id": page_id,
        "time": time_,
        "changes": [{"field": "feed", "value": value} for value in values],
    }


def fb_comment(**overrides) -> dict:
    value = {
        "from": {"id": "24242424242424242", "name": "Zoë Müller"},
        "post": {
            "status_type": "added_photos",
            "is_published": True,
            "updated_time": "2026-11-20T15:02:41+0000",
            "permalink_url": PERMALINK,
            "promotion_status": "inactive",
            "id": POST_ID,
        },
        "message": "Why was my card declined at the till? Third time this week.",
        "post_id": POST_ID,
        "comment_id": COMMENT_ID,
        "created_time": 1795186961,
        "item": "comment",
        "parent_id": POST_ID,
        "verb": "add",
    }
    value.update(overrides)
    return value


def graph_error(code: int, message: str, *, subcode: int | None = None, **extra) -> dict:
    error = {"message": message, "type": "OAuthException", "code": code, **extra}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "AQx7Yh3kP2m"
    return {"error": error}


def comment_target(**extra) -> ReplyTarget:
    return ReplyTarget(
        external_id=COMMENT_ID,
        author_handle="",
        extra={"object": "comment", "post_id": POST_ID, "post_url": PERMALINK, **extra},
    )


# ---- verification and signatures ----------------------------------------------------
def test_handshake_echoes_the_challenge_for_the_right_token():
    connector = connector_for(facebook_channel())
    request = RequestFactory().get(
        "/connectors/meta/webhook/",
        {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN},
    )

    response = connector.handshake(request)

    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


def test_handshake_refuses_a_wrong_token_with_403():
    connector = connector_for(instagram_channel())
    request = RequestFactory().get(
        "/connectors/meta/webhook/",
        {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "guess"},
    )

    response = connector.handshake(request)

    assert response.status_code == 403
    assert b"1158201444" not in response.content


def test_handshake_ignores_requests_without_hub_mode():
    connector = connector_for(facebook_channel())
    assert connector.handshake(RequestFactory().get("/connectors/meta/webhook/")) is None


def test_verify_accepts_hex_signature_over_escaped_non_ascii_bytes():
    connector = connector_for(facebook_channel())
    body = wire(page_delivery(page_entry(fb_comment(message="Café crème \u20ac5 \U0001f621"))))
    assert b"\\u00e9" in body and b"\\/" in body

    assert connector.verify(body, {"x-hub-signature-256": meta_signature(body)})
    # Decoding and re-encoding changes the bytes Meta signed.
    reencoded = json.dumps(json.loads(body), ensure_ascii=False).encode()
    assert not connector.verify(reencoded, {"x-hub-signature-256": meta_signature(body)})


def test_verify_rejects_forged_missing_base64_and_sha1_signatures():
    connector = connector_for(facebook_channel())
    body = wire(page_delivery(page_entry(fb_comment())))
    mac = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).digest()
    sha1 = "sha1=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha1).hexdigest()

    assert not connector.verify(body, {})
    assert not connector.verify(body, {"x-hub-signature-256": meta_signature(body, "guess")})
    assert not connector.verify(
        body, {"x-hub-signature-256": "sha256=" + base64.b64encode(mac).decode()}
    )
    assert not connector.verify(body, {"x-hub-signature": sha1})
    assert not connector.verify(body + b"\n", {"x-hub-signature-256": meta_signature(body)})


def test_kept_headers_include_the_signatures():
    assert {"x-hub-signature-256", "x-hub-signature", "content-type"} <= set(
        FacebookConnector.kept_headers
    )


# ---- Facebook parsing ---------------------------------------------------------------
def test_parse_facebook_comment_add():
    connector = connector_for(facebook_channel())

    (event,) = connector.parse(wire(page_delivery(page_entry(fb_comment()))), {})

    assert event.kind == "post"
    assert event.external_id == COMMENT_ID
    assert event.author == {
        "external_id": "24242424242424242",
        "handle": "",
        "display_name": "Zoë Müller",
    }
    assert event.text == "Why was my card declined at the till? Third time this week."
    assert event.posted_at == datetime.fromtimestamp(1795186961, tz=UTC)
    assert event.in_reply_to_external_id == POST_ID
    assert event.url == f"{PERMALINK}?comment_id=2422868031102385"
    assert event.is_own is False
    assert event.extra["object"] == "comment"
    assert event.extra["post_id"] == POST_ID
    assert event.raw["changes"][0]["value"]["comment_id"] == COMMENT_ID


def test_parse_facebook_reply_to_a_comment_points_at_the_parent_comment():
    connector = connector_for(facebook_channel())
    reply = fb_comment(comment_id="2422865137769341_2422870000000001", parent_id=COMMENT_ID)

    (event,) = connector.parse(wire(page_delivery(page_entry(reply))), {})

    assert event.in_reply_to_external_id == COMMENT_ID


def test_parse_facebook_edit_keeps_the_id_with_the_new_text():
    connector = connector_for(facebook_channel())
    edited = fb_comment(verb="edited", message="Card declined again, 4th time!")

    (event,) = connector.parse(wire(page_delivery(page_entry(edited))), {})

    assert (event.kind, event.external_id) == ("post", COMMENT_ID)
    assert event.text == "Card declined again, 4th time!"


def test_parse_facebook_remove_is_a_delete():
    connector = connector_for(facebook_channel())
    removed = {
        "from": {"id": "24242424242424242"},
        "parent_id": POST_ID,
        "comment_id": COMMENT_ID,
        "created_time": 1795187100,
        "item": "comment",
        "post_id": POST_ID,
        "verb": "remove",
    }

    (event,) = connector.parse(wire(page_delivery(page_entry(removed))), {})

    assert (event.kind, event.external_id) == ("delete", COMMENT_ID)


def test_parse_facebook_marks_the_pages_own_comment_and_ignores_reactions():
    connector = connector_for(facebook_channel())
    own = fb_comment(
        comment_id="2422865137769341_2422871111111111",
        **{"from": {"id": PAGE_ID, "name": "Northwind Bank"}},
        message="Sorry Zoë, please DM us.",
    )
    reaction = {
        "from": {"id": "24242424242424242", "name": "Zoë Müller"},
        "post_id": POST_ID,
        "created_time": 1795187000,
        "item": "reaction",
        "parent_id": POST_ID,
        "reaction_type": "angry",
        "verb": "add",
    }

    events = connector.parse(wire(page_delivery(page_entry(own, reaction))), {})

    assert [(e.external_id, e.is_own) for e in events] == [
        ("2422865137769341_2422871111111111", True)
    ]


def test_parse_facebook_visitor_post():
    connector = connector_for(facebook_channel())
    visitor_post = {
        "from": {"id": "24242424242424242", "name": "Zoë Müller"},
        "message": "Is the Oxford Street branch open on Sunday?",
        "post_id": f"{PAGE_ID}_2500000000000001",
        "created_time": 1795186000,
        "item": "status",
        "published": 1,
        "verb": "add",
    }

    (event,) = connector.parse(wire(page_delivery(page_entry(visitor_post))), {})

    assert event.external_id == f"{PAGE_ID}_2500000000000001"
    assert event.in_reply_to_external_id == ""
    assert event.extra["object"] == "post"
    assert event.url == f"https://www.facebook.com/{PAGE_ID}_2500000000000001"


def test_parse_multi_entry_delivery_keeps_good_entries_and_reports_the_broken_one():
    connector = connector_for(facebook_channel())
    first = page_entry(fb_comment(comment_id="2422865137769341_1"))
    broken = {"id": PAGE_ID, "time": 1795186971, "changes": {"field": "feed"}}
    bad_time = page_entry(fb_comment(comment_id="2422865137769341_2", created_time="yesterday"))
    last = page_entry(fb_comment(comment_id="2422865137769341_3"))
    other_page = page_entry(fb_comment(comment_id="9_9"), page_id="999999")

    events = connector.parse(wire(page_delivery(first, broken, bad_time, last, other_page)), {})

    assert [e.external_id for e in events] == ["2422865137769341_1", "2422865137769341_3"]
    assert len(connector.entry_errors) == 2
    assert "entry[1]" in connector.entry_errors[0].reason
    assert "entry[2]" in connector.entry_errors[1].reason


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"object": "page", "entry": {}}',
        wire({"object": "instagram", "entry": []}),
    ],
)
def test_parse_facebook_rejects_bodies_of_the_wrong_shape(body):
    with pytest.raises(PermanentError):
        connector_for(facebook_channel()).parse(body, {})


# ---- Facebook publishing ------------------------------------------------------------
def test_facebook_publish_posts_a_comment_reply(fake, fb):
    fake.route(
        "POST",
        f"{GRAPH}/{COMMENT_ID}/comments",
        Reply(200, {"id": "2422865137769341_2422879999999999"}),
    )

    result = fb.publish(
        text="Sorry Zoë, we've sent you a DM.", target=comment_target(), idempotency_key=KEY
    )

    assert result == PublishResult(
        external_id="2422865137769341_2422879999999999",
        url=f"{PERMALINK}?comment_id=2422879999999999",
    )
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {
        "message": "Sorry Zoë, we've sent you a DM.",
        "access_token": PAGE_TOKEN,
    }
    assert request.query == {}  # the token never travels in the URL


def test_facebook_publish_honours_the_api_version_setting(fake):
    connector = connector_for(facebook_channel(fake.url, api_version="v23.0"))
    fake.route("POST", f"/v23.0/{POST_ID}/comments", Reply(200, {"id": "2422865137769341_5"}))

    result = connector.publish(
        text="Hi",
        target=ReplyTarget(external_id=POST_ID, extra={"object": "post"}),
        idempotency_key=KEY,
    )

    assert result.external_id == "2422865137769341_5"


def test_facebook_rate_limit_is_transient_with_the_buc_estimate(fake, fb):
    usage = {
        PAGE_ID: [
            {
                "type": "pages",
                "call_count": 100,
                "total_cputime": 12,
                "total_time": 30,
                "estimated_time_to_regain_access": 12,
            }
        ]
    }
    fake.route(
        "POST",
        f"{GRAPH}/{COMMENT_ID}/comments",
        Reply(
            400,
            graph_error(32, "(#32) Page request limit reached"),
            headers={"X-Business-Use-Case-Usage": json.dumps(usage)},
        ),
    )

    with pytest.raises(TransientError) as caught:
        fb.publish(text="Hi", target=comment_target(), idempotency_key=KEY)

    assert caught.value.retry_after == 720
    assert "Page request limit reached" in caught.value.reason


def test_facebook_http_429_uses_retry_after(fake, fb):
    fake.route(
        "POST",
        f"{GRAPH}/{COMMENT_ID}/comments",
        Reply(429, body=b"Too Many Requests", headers={"Retry-After": "90"}),
    )

    with pytest.raises(TransientError) as caught:
        fb.publish(text="Hi", target=comment_target(), idempotency_key=KEY)

    assert caught.value.retry_after == 90


def test_facebook_server_error_is_transient_and_ambiguous(fake, fb):
    fake.route(
        "POST",
        f"{GRAPH}/{COMMENT_ID}/comments",
        Reply(
            500,
            graph_error(
                2,
                "An unexpected error has occurred. Please retry your request later.",
                is_transient=True,
            ),
        ),
    )

    with pytest.raises(TransientError) as caught:
        fb.publish(text="Hi", target=comment_target(), idempotency_key=KEY)

    assert caught.value.ambiguous is True


def test_facebook_timeout_is_transient_and_ambiguous(fake, fb):
    fake.route("POST", f"{GRAPH}/{COMMENT_ID}/comments", Reply(200, {"id": "1_2"}, delay=3))
    started = time.monotonic()

    with pytest.raises(TransientError) as caught:
        fb.publish(text="Hi", target=comment_target(), idempotency_key=KEY)

    assert caught.value.ambiguous is True
    assert time.monotonic() - started < 2.5


def test_facebook_deleted_comment_is_permanent_with_the_graph_message(fake, fb):
    message = (
        f"Unsupported post request. Object with ID '{COMMENT_ID}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read "
        "the Graph API documentation at https://developers.facebook.com/docs/graph-api"
    )
    fake.route(
        "POST",
        f"{GRAPH}/{COMMENT_ID}/comments",
        Reply(
            400,
            {
                "error": {
                    "message": message,
                    "type": "GraphMethodException",
                    "code": 100,
                    "error_subcode": 33,
                    "fbtrace_id": "AQx7Yh3kP2m",
                }
            },
        ),
    )

    with pytest.raises(PermanentError) as caught:
        fb.publish(text="Hi", target=comment_target(), idempotency_key=KEY)

    assert f"Object with ID '{COMMENT_ID}' does not exist" in caught.value.reason
    assert "100/33" in caught.value.reason


def test_facebook_expired_token_is_permanent(fake, fb):
    fake.route(
        "POST",
        f"{GRAPH}/{COMMENT_ID}/comments",
        Reply(
            400,
            graph_error(
                190,
                "Error validating access token: Session has expired on Friday, 20-Nov-26 "
                "07:00:00 PST.",
                subcode=463,
            ),
        ),
    )

    with pytest.raises(PermanentError) as caught:
        fb.publish(text="Hi", target=comment_target(), idempotency_key=KEY)

    assert "Session has expired" in caught.value.reason


def test_facebook_missing_permission_is_permanent(fake, fb):
    fake.route(
        "POST",
        f"{GRAPH}/{COMMENT_ID}/comments",
        Reply(403, graph_error(200, "(#200) Permissions error")),
    )
    with pytest.raises(PermanentError) as caught:
        fb.publish(text="Hi", target=comment_target(), idempotency_key=KEY)
    assert "Permissions error" in caught.value.reason


def graph_time(moment: datetime) -> str:
    """`2026-11-20T15:02:41+0000`, as the Graph API writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def comments_page(*comments: dict, after: str | None = None) -> dict:
    now = graph_time(datetime.now(UTC))
    comments = tuple(
        {**comment, "created_time": comment.get("created_time", now)} for comment in comments
    )
    body: dict = {"data": list(comments)}
    if after:
        body["paging"] = {
            "cursors": {"before": "QVFIUk1", "after": after},
            "next": f"https://graph.facebook.com{GRAPH}/{COMMENT_ID}/comments?after={after}",
        }
    return body


def test_facebook_find_own_reply_finds_the_pages_comment(fake, fb):
    fake.route(
        "GET",
        f"{GRAPH}/{COMMENT_ID}/comments",
        Reply(
            200,
            comments_page(
                {
                    "from": {"id": "24242424242424242", "name": "Zoë Müller"},
                    "message": "Sorry Zoë, please DM us.",
                    "id": "2422865137769341_7",
                },
                {
                    "from": {"id": PAGE_ID, "name": "Northwind Bank"},
                    "message": "Something else",
                    "id": "2422865137769341_8",
                },
                after="QVFIUjZA",
            ),
        ),
        Reply(
            200,
            comments_page(
                {
                    "from": {"id": PAGE_ID, "name": "Northwind Bank"},
                    "message": "Sorry Zoë, please DM us.",
                    "id": "2422865137769341_9",
                },
            ),
        ),
    )

    result = fb.find_own_reply(
        text="Sorry Zoë, please DM us.",
        target=comment_target(),
        idempotency_key=KEY,
        since=datetime.now(UTC) - timedelta(minutes=1),
    )

    assert result is not None and result.external_id == "2422865137769341_9"
    first, second = fake.requests
    assert first.arg("access_token") == PAGE_TOKEN
    assert first.arg("filter") == "stream"
    assert set(first.arg("fields").split(",")) == {"from", "message", "id", "created_time"}
    assert second.arg("after") == "QVFIUjZA"


def test_facebook_find_own_reply_ignores_our_same_words_from_before_the_first_attempt(fake, fb):
    first_attempt = datetime.now(UTC) - timedelta(minutes=1)
    earlier = {
        "from": {"id": PAGE_ID, "name": "Northwind Bank"},
        "message": "Please DM us.",
        "id": "2422865137769341_4",
        "created_time": graph_time(first_attempt - timedelta(days=1)),
    }
    ours = {
        **earlier,
        "id": "2422865137769341_11",
        "created_time": graph_time(first_attempt + timedelta(seconds=2)),
    }
    fake.route("GET", f"{GRAPH}/{COMMENT_ID}/comments", Reply(200, comments_page(earlier)))
    fake.route("GET", f"{GRAPH}/{POST_ID}/comments", Reply(200, comments_page(ours, earlier)))

    found = fb.find_own_reply(
        text="Please DM us.", target=comment_target(), idempotency_key=KEY, since=first_attempt
    )

    assert found is not None and found.external_id == "2422865137769341_11"


def test_facebook_find_own_reply_returns_none_when_absent(fake, fb):
    fake.route("GET", f"{GRAPH}/{COMMENT_ID}/comments", Reply(200, comments_page()))
    fake.route("GET", f"{GRAPH}/{POST_ID}/comments", Reply(200, comments_page()))

    since = datetime.now(UTC) - timedelta(minutes=1)
    found = fb.find_own_reply(text="Hi", target=comment_target(), idempotency_key=KEY, since=since)
    assert found is None
    assert [r.path for r in fake.requests] == [
        f"{GRAPH}/{COMMENT_ID}/comments",
        f"{GRAPH}/{POST_ID}/comments",
    ]


# ---- Instagram ----------------------------------------------------------------------
def ig_delivery(*changes: dict, account: str = IG_USER_ID, time_: int = 1795186999) -> dict:
    return {
        "entry": [{"id": account, "time": time_, "changes": list(changes)}],
        "object": "instagram",
    }


def ig_comment(**overrides) -> dict:
    value = {
        "from": {"id": "6202718259844567", "username": "zoe.mueller"},
        "media": {"id": "18023345678901234", "media_product_type": "FEED"},
        "id": IG_COMMENT_ID,
        "text": "@northwindbank my transfer has been pending for 3 days 😡",
    }
    value.update(overrides)
    return {"field": "comments", "value": value}


def test_parse_instagram_comment_uses_the_entry_time():
    connector = connector_for(instagram_channel())

    (event,) = connector.parse(wire(ig_delivery(ig_comment())), {})

    assert event.kind == "post"
    assert event.external_id == IG_COMMENT_ID
    assert event.author == {
        "external_id": "6202718259844567",
        "handle": "zoe.mueller",
        "display_name": "zoe.mueller",
    }
    assert event.text == "@northwindbank my transfer has been pending for 3 days 😡"
    assert event.posted_at == datetime.fromtimestamp(1795186999, tz=UTC)
    assert event.is_own is False
    assert event.extra["media_id"] == "18023345678901234"
    assert event.in_reply_to_external_id == ""


def test_parse_instagram_reply_and_own_echo():
    connector = connector_for(instagram_channel())
    reply = ig_comment(id="17865799348089040", parent_id=IG_COMMENT_ID)
    echo = ig_comment(
        id="17865799348089041",
        parent_id=IG_COMMENT_ID,
        text="@zoe.mueller Sorry! Please DM us.",
        **{"from": {"id": IG_USER_ID, "username": "northwindbank"}},
    )

    reply_event, echo_event = connector.parse(wire(ig_delivery(reply, echo)), {})

    assert reply_event.in_reply_to_external_id == IG_COMMENT_ID
    assert reply_event.extra["parent_id"] == IG_COMMENT_ID
    assert reply_event.is_own is False
    assert echo_event.is_own is True


def test_parse_instagram_field_and_value_directly_on_the_entry():
    connector = connector_for(instagram_channel())
    change = ig_comment()
    body = wire(
        {
            "entry": [{"id": IG_USER_ID, "time": 1795186999, **change}],
            "object": "instagram",
        }
    )

    (event,) = connector.parse(body, {})

    assert event.external_id == IG_COMMENT_ID


def test_parse_instagram_mention_fetches_the_comment_text(fake, ig):
    fake.route(
        "GET",
        f"{GRAPH}/{IG_USER_ID}",
        Reply(
            200,
            {
                "mentioned_comment": {
                    "timestamp": "2026-11-20T15:10:02+0000",
                    "text": "@northwindbank is the app down again?",
                    "username": "kim.rivers",
                    "id": "17894227972186120",
                },
                "id": IG_USER_ID,
            },
        ),
    )
    mention = {
        "field": "mentions",
        "value": {"media_id": "17918195224117851", "comment_id": "17894227972186120"},
    }

    (event,) = ig.parse(wire(ig_delivery(mention)), {})

    assert event.external_id == "17894227972186120"
    assert event.text == "@northwindbank is the app down again?"
    assert event.author["handle"] == "kim.rivers"
    assert event.posted_at == datetime(2026, 11, 20, 15, 10, 2, tzinfo=UTC)
    assert event.extra == {
        "kind": "mention",
        "media_id": "17918195224117851",
        "comment_id": "17894227972186120",
    }
    (request,) = fake.requests
    assert request.arg("fields") == (
        "mentioned_comment.comment_id(17894227972186120){text,username,timestamp}"
    )
    assert request.arg("access_token") == IG_TOKEN


def test_parse_instagram_unreadable_mention_is_an_entry_error_only(fake, ig):
    fake.route(
        "GET",
        f"{GRAPH}/{IG_USER_ID}",
        Reply(400, graph_error(100, "(#100) Comments are disabled on this media", subcode=2108006)),
    )
    mention = {
        "field": "mentions",
        "value": {"media_id": "17918195224117851", "comment_id": "17894227972186120"},
    }

    events = ig.parse(wire(ig_delivery(mention, ig_comment())), {})

    assert [e.external_id for e in events] == [IG_COMMENT_ID]
    (error,) = ig.entry_errors
    assert "Comments are disabled" in error.reason


def test_instagram_publish_replies_to_the_comment(fake, ig):
    fake.route("POST", f"{GRAPH}/{IG_COMMENT_ID}/replies", Reply(200, {"id": "17873440459141021"}))
    target = ReplyTarget(external_id=IG_COMMENT_ID, extra={"kind": "comment", "parent_id": ""})

    result = ig.publish(text="Sorry! Please DM us 🙏", target=target, idempotency_key=KEY)

    assert result.external_id == "17873440459141021"
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.form() == {"message": "Sorry! Please DM us 🙏", "access_token": IG_TOKEN}


def test_instagram_publish_answers_a_reply_under_its_top_level_comment(fake, ig):
    fake.route("POST", f"{GRAPH}/{IG_COMMENT_ID}/replies", Reply(200, {"id": "17873440459141022"}))
    target = ReplyTarget(
        external_id="17865799348089040", extra={"kind": "comment", "parent_id": IG_COMMENT_ID}
    )

    result = ig.publish(text="On it.", target=target, idempotency_key=KEY)

    assert result.external_id == "17873440459141022"
    assert fake.requests[0].path == f"{GRAPH}/{IG_COMMENT_ID}/replies"


def test_instagram_publish_answers_a_mention_through_the_mentions_edge(fake, ig):
    fake.route("POST", f"{GRAPH}/{IG_USER_ID}/mentions", Reply(200, {"id": "17873440459141023"}))
    target = ReplyTarget(
        external_id="17894227972186120",
        extra={
            "kind": "mention",
            "media_id": "17918195224117851",
            "comment_id": "17894227972186120",
        },
    )

    result = ig.publish(text="We're looking into it.", target=target, idempotency_key=KEY)

    assert result.external_id == "17873440459141023"
    assert fake.requests[0].form() == {
        "media_id": "17918195224117851",
        "comment_id": "17894227972186120",
        "message": "We're looking into it.",
        "access_token": IG_TOKEN,
    }


def test_instagram_rate_limit_is_transient(fake, ig):
    fake.route(
        "POST",
        f"{GRAPH}/{IG_COMMENT_ID}/replies",
        Reply(400, graph_error(80002, "There have been too many calls to this Instagram account.")),
    )
    target = ReplyTarget(external_id=IG_COMMENT_ID, extra={"kind": "comment"})

    with pytest.raises(TransientError) as caught:
        ig.publish(text="Hi", target=target, idempotency_key=KEY)

    assert "too many calls" in caught.value.reason
    assert caught.value.ambiguous is False


def test_instagram_find_own_reply_finds_ours_since_the_first_attempt_and_none_otherwise(fake, ig):
    first_attempt = datetime.now(UTC) - timedelta(minutes=1)
    ours = {
        "id": "17873440459141031",
        "text": "Please DM us.",
        "username": "northwindbank",
        "from": {"id": IG_USER_ID, "username": "northwindbank"},
        "timestamp": graph_time(first_attempt + timedelta(seconds=2)),
    }
    replies = {
        "data": [
            {
                "id": "17873440459141030",
                "text": "Please DM us.",
                "username": "someone.else",
                "from": {"id": "555", "username": "someone.else"},
                "timestamp": graph_time(first_attempt),
            },
            # The same words from us the day before: an earlier answer, not this one.
            {**ours, "id": "17873440459141029", "timestamp": graph_time(first_attempt - DAY)},
            ours,
        ]
    }
    fake.route("GET", f"{GRAPH}/{IG_COMMENT_ID}/replies", Reply(200, replies))
    target = ReplyTarget(external_id=IG_COMMENT_ID, extra={"kind": "comment"})

    def find(text: str, since: datetime):
        return ig.find_own_reply(text=text, target=target, idempotency_key=KEY, since=since)

    found = find("Please DM us.", first_attempt)
    missing = find("Something we never said", first_attempt)
    too_late = find("Please DM us.", first_attempt + timedelta(minutes=1))

    assert found is not None and found.external_id == "17873440459141031"
    assert (missing, too_late) == (None, None)
    assert fake.requests[0].arg("access_token") == IG_TOKEN
    assert {"id", "text", "username", "timestamp"} <= set(fake.requests[0].arg("fields").split(","))


def test_settings_and_limits():
    fb_specs = {spec.key: spec for spec in FacebookConnector.settings_spec}
    ig_specs = {spec.key: spec for spec in InstagramConnector.settings_spec}
    for specs in (fb_specs, ig_specs):
        assert specs["app_secret"].required and specs["app_secret"].secret
        assert specs["verify_token"].required and specs["verify_token"].secret
    assert fb_specs["page_id"].required and fb_specs["page_access_token"].secret
    assert ig_specs["ig_user_id"].required and ig_specs["access_token"].secret
    assert (FacebookConnector.max_reply_chars, InstagramConnector.max_reply_chars) == (8000, 2200)


def test_graph_calls_never_log_the_access_token(fake, fb, caplog):
    fake.route("GET", f"{GRAPH}/{COMMENT_ID}/comments", Reply(200, comments_page()))
    fake.route("GET", f"{GRAPH}/{POST_ID}/comments", Reply(200, comments_page()))

    with caplog.at_level("INFO", logger="httpx"):
        fb.find_own_reply(
            text="Hi", target=comment_target(), idempotency_key=KEY, since=datetime.now(UTC)
        )

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"{GRAPH}/{COMMENT_ID}/comments" in logged  # the request is logged...
    assert PAGE_TOKEN not in logged  # ...without its token
    assert "access_token=***" in logged
