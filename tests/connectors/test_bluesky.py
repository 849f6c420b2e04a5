"""The Bluesky connector against a fake PDS speaking XRPC."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from connectors.base import PermanentError, ReplyTarget, TransientError
from connectors.models import ChannelAccount
from connectors.platforms.bluesky import BlueskyConnector, rkey_for
from connectors.registry import connector_for
from tests.connectors._bluesky_fake import APP_PASSWORD, DID, HANDLE, TID, FakeBluesky
from tests.connectors.fakes import FakePlatform, Reply

pytestmark = pytest.mark.django_db

LIST = "app.bsky.notification.listNotifications"
CREATE = "com.atproto.repo.createRecord"


@pytest.fixture
def fake():
    with FakePlatform() as platform:
        yield FakeBluesky(platform)


@pytest.fixture
def alice(fake):
    return fake.profile("did:plc:alice7x2mq4c5ztv3n6hy", "alice.bsky.social", "Alice Ng")


@pytest.fixture
def carol(fake):
    return fake.profile("did:web:carol.example", "carol.example")


def make_channel(fake: FakeBluesky, **settings) -> ChannelAccount:
    channel = ChannelAccount(
        name="northwind-bluesky",
        platform="bluesky",
        settings={"base_url": fake.url, "handle": HANDLE, **settings},
    )
    channel.set_secrets({"app_password": APP_PASSWORD})
    channel.save()
    return channel


def connector(fake: FakeBluesky, **settings) -> BlueskyConnector:
    made = connector_for(make_channel(fake, **settings))
    assert isinstance(made, BlueskyConnector)
    return made


def poll_all(conn: BlueskyConnector, cursor: str, limit: int = 20):
    pages = []
    for _ in range(limit):
        page = conn.poll(cursor)
        pages.append(page)
        if page.next_cursor is not None:
            cursor = page.next_cursor
        if page.done:
            return pages, cursor
    raise AssertionError("the poll never finished")


def target_of(event) -> ReplyTarget:
    return ReplyTarget(
        external_id=event.external_id, author_handle=event.author["handle"], extra=event.extra
    )


# ---- polling --------------------------------------------------------------------------
def test_poll_delivers_oldest_first_without_gaps_or_duplicates(fake, alice, carol):
    old = [fake.mention(alice, "old one"), fake.mention(carol, "old two")]
    conn = connector(fake)
    conn.page_size = 3

    first = conn.poll("")
    assert [e.external_id for e in first.events] == [n["uri"] for n in old]
    assert first.done

    reasons = ["mention", "reply", "quote"]
    new = [
        fake.mention(alice if n % 2 else carol, f"new {n}", reason=reasons[n % 3]) for n in range(8)
    ]
    pages, cursor = poll_all(conn, first.next_cursor)

    delivered = [e.external_id for page in pages for e in page.events]
    assert delivered == [n["uri"] for n in new]
    assert [e.text for page in pages for e in page.events] == [f"new {n}" for n in range(8)]
    assert [page.done for page in pages] == [False] * (len(pages) - 1) + [True]
    for page in pages:
        # The stored page reads back to (at least) the events handed over.
        reread = [e.external_id for e in conn.parse(page.raw_body, page.headers)]
        assert {e.external_id for e in page.events} <= set(reread)
        assert json.loads(page.raw_body)["notifications"]
        assert page.headers["ratelimit-policy"] == "3000;w=300"
    for request in fake.calls("GET", LIST):
        assert request.query["reasons"] == reasons
        assert request.arg("limit") == "3"
        assert request.headers["authorization"].startswith("Bearer ")
    assert json.loads(cursor)["seen"] == new[-1]["indexedAt"]

    again = conn.poll(cursor)
    assert (again.events, again.next_cursor, again.done) == ([], None, True)

    latest = fake.mention(carol, "one more")
    later = conn.poll(cursor)
    assert [e.external_id for e in later.events] == [latest["uri"]]
    assert later.done


def test_a_backlog_deeper_than_one_walk_is_worked_from_the_bottom(fake, alice):
    start = fake.mention(alice, "seen")
    conn = connector(fake)
    conn.page_size, conn.max_walk = 2, 2
    cursor = conn.poll("").next_cursor
    assert json.loads(cursor)["seen"] == start["indexedAt"]
    new = [fake.mention(alice, f"backlog {n}") for n in range(9)]
    before = len(fake.calls("GET", LIST))

    pages, cursor = poll_all(conn, cursor, limit=40)

    assert [e.external_id for page in pages for e in page.events] == [n["uri"] for n in new]
    # Five pages of backlog, walked at most two deep at a time: the walk resumes where it
    # stopped instead of starting over from the newest page each time.
    assert len(fake.calls("GET", LIST)) - before <= 22
    assert conn.poll(cursor).events == []


def test_a_resumed_walk_survives_new_items_arriving_meanwhile(fake, alice, carol):
    fake.mention(alice, "seen")
    conn = connector(fake)
    conn.page_size, conn.max_walk = 2, 2
    cursor = conn.poll("").next_cursor
    backlog = [fake.mention(alice, f"b{n}") for n in range(6)]
    delivered = []
    for step in range(40):
        page = conn.poll(cursor)
        delivered += [e.external_id for e in page.events]
        cursor = page.next_cursor or cursor
        if step == 2:
            backlog.append(fake.mention(carol, "arrived mid-way"))
        if page.done:
            break
    assert delivered == [n["uri"] for n in backlog]


def test_a_hand_set_timestamp_cursor_takes_what_came_after_it(fake, alice):
    before = fake.mention(alice, "before")
    after = fake.mention(alice, "after")
    page = connector(fake).poll(before["indexedAt"])
    assert [e.external_id for e in page.events] == [after["uri"]]


def test_notifications_become_events(fake, alice, carol):
    fake.honour_reasons = False  # a PDS that ignores the filter: we still only take posts
    top = fake.mention(alice, "@northwind.bsky.social my card is blocked")
    top_record = fake.records[top["uri"]]
    reply = fake.add_post(carol, "same here", reply_to=top_record)
    nested = fake.add_post(alice, "Cafe\u0301 card still blocked", reply_to=reply)
    nested_n = fake.notify(alice, nested, "reply")
    fake.notify(carol, fake.add_post(carol, "liked"), "like")
    fake.notify(carol, fake.add_post(carol, "followed"), "follow")
    ours = fake.notify(fake.brand, fake.add_post(fake.brand, "we answered"), "mention")
    future = fake.add_post(carol, "from the future", createdAt="2031-01-01T00:00:00.000Z")
    future_n = fake.notify(carol, future, "quote")
    no_date = fake.add_post(carol, "no date")
    del no_date["value"]["createdAt"]
    no_date_n = fake.notify(carol, no_date, "mention")

    conn = connector(fake)
    conn.session()  # signed in: our DID is known
    events = conn.poll("").events

    assert [e.external_id for e in events] == [
        n["uri"] for n in (top, nested_n, ours, future_n, no_date_n)
    ]
    first, second, own, late, undated = events
    assert first.kind == "post"
    assert first.author == {
        "external_id": alice["did"],
        "handle": "alice.bsky.social",
        "display_name": "Alice Ng",
    }
    assert first.text == "@northwind.bsky.social my card is blocked"
    rkey = top["uri"].rsplit("/", 1)[-1]
    assert first.url == f"https://bsky.app/profile/alice.bsky.social/post/{rkey}"
    assert first.posted_at == datetime.fromisoformat(top["record"]["createdAt"])
    assert first.in_reply_to_external_id == ""
    assert first.extra == {
        "uri": top["uri"],
        "cid": top["cid"],
        "root": {"uri": top["uri"], "cid": top["cid"]},
        "reason": "mention",
    }
    assert second.text == "Caf\u00e9 card still blocked"
    assert second.in_reply_to_external_id == reply["uri"]
    assert second.extra["root"] == {"uri": top["uri"], "cid": top["cid"]}
    assert second.extra["cid"] == nested["cid"]
    assert [e.is_own for e in events] == [False, False, True, False, False]
    assert own.author["external_id"] == DID
    assert late.posted_at == datetime.fromisoformat(future_n["indexedAt"])
    assert undated.posted_at == datetime.fromisoformat(no_date_n["indexedAt"])
    assert carol.get("displayName") is None and late.author["display_name"] == ""
    assert all(e.posted_at.tzinfo is not None for e in events)


def test_own_posts_are_recognised_by_a_later_connector_without_signing_in(fake, alice):
    fake.mention(alice, "help")
    fake.notify(fake.brand, fake.add_post(fake.brand, "ours"), "mention")
    page = connector(fake).poll("")
    later = BlueskyConnector(ChannelAccount.objects.get(name="northwind-bluesky"))
    assert [e.is_own for e in later.parse(page.raw_body, page.headers)] == [False, True]
    assert len(fake.calls("POST", "com.atproto.server.createSession")) == 1


# ---- publishing -----------------------------------------------------------------------
def test_publish_replies_in_the_thread_with_root_and_parent(fake, alice, carol):
    top = fake.mention(alice, "my card is blocked")
    reply = fake.add_post(carol, "same", reply_to=fake.records[top["uri"]])
    fake.notify(alice, fake.add_post(alice, "still blocked", reply_to=reply), "reply")
    conn = connector(fake)
    [_, event] = conn.poll("").events
    assert event.text == "still blocked"
    key = uuid.uuid4()
    text = "Sorry! Unblock it in the app: https://northwind.example/cards."

    result = conn.publish(text=text, target=target_of(event), idempotency_key=key)

    [request] = fake.calls("POST", CREATE)
    body = request.json()
    rkey = rkey_for(key)
    assert TID.match(rkey)
    assert {k: body[k] for k in ("repo", "collection", "rkey")} == {
        "repo": DID,
        "collection": "app.bsky.feed.post",
        "rkey": rkey,
    }
    record = body["record"]
    assert record["$type"] == "app.bsky.feed.post"
    assert record["text"] == text
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["createdAt"])
    assert abs(datetime.fromisoformat(record["createdAt"]) - datetime.now(UTC)).seconds < 60
    assert record["reply"] == {
        "root": {"uri": top["uri"], "cid": top["cid"]},
        "parent": {"uri": event.external_id, "cid": event.extra["cid"]},
    }
    url = "https://northwind.example/cards"
    start = len(text[: text.index(url)].encode())
    assert record["facets"] == [
        {
            "index": {"byteStart": start, "byteEnd": start + len(url)},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}],
        }
    ]
    assert request.headers["authorization"] == f"Bearer {conn.session()['accessJwt']}"
    assert result.external_id == f"at://{DID}/app.bsky.feed.post/{rkey}"
    assert result.url == f"https://bsky.app/profile/{HANDLE}/post/{rkey}"
    assert fake.records[result.external_id]["value"]["text"] == text


def test_a_reply_to_a_top_level_mention_uses_it_as_root(fake, alice):
    top = fake.mention(alice, "hello")
    conn = connector(fake)
    [event] = conn.poll("").events
    conn.publish(text="hi", target=target_of(event), idempotency_key=uuid.uuid4())
    [request] = fake.calls("POST", CREATE)
    ref = {"uri": top["uri"], "cid": top["cid"]}
    assert request.json()["record"]["reply"] == {"root": ref, "parent": ref}
    assert "facets" not in request.json()["record"]


def test_publishing_again_with_the_same_key_returns_the_first_post(fake, alice):
    fake.mention(alice, "hello")
    conn = connector(fake)
    [event] = conn.poll("").events
    key = uuid.uuid4()
    first = conn.publish(text="hi", target=target_of(event), idempotency_key=key)
    second = conn.publish(text="hi", target=target_of(event), idempotency_key=key)
    assert first == second
    assert len(fake.calls("POST", CREATE)) == 2
    assert [uri for uri in fake.records if uri.startswith(f"at://{DID}/")] == [first.external_id]


def test_find_own_reply_finds_the_earlier_reply_and_none_otherwise(fake, alice):
    fake.mention(alice, "hello")
    conn = connector(fake)
    [event] = conn.poll("").events
    key = uuid.uuid4()
    since = timezone.now()
    target = target_of(event)
    assert conn.find_own_reply(text="hi", target=target, idempotency_key=key, since=since) is None
    posted = conn.publish(text="hi", target=target, idempotency_key=key)
    fresh = BlueskyConnector(ChannelAccount.objects.get(name="northwind-bluesky"))
    found = fresh.find_own_reply(text="hi", target=target, idempotency_key=key, since=since)
    other = uuid.uuid4()
    missing = fresh.find_own_reply(text="hi", target=target, idempotency_key=other, since=since)
    assert (found, missing) == (posted, None)
    [lookup, *_] = fake.calls("GET", "com.atproto.repo.getRecord")
    assert (lookup.arg("repo"), lookup.arg("collection")) == (DID, "app.bsky.feed.post")


def test_the_record_key_is_a_valid_tid_fixed_by_the_idempotency_key():
    key = uuid.uuid4()
    assert rkey_for(key) == rkey_for(uuid.UUID(str(key)))
    assert len({rkey_for(uuid.uuid4()) for _ in range(200)}) == 200
    for _ in range(50):
        rkey = rkey_for(uuid.uuid4())
        assert TID.match(rkey)
        value = 0
        for char in rkey:
            value = value * 32 + "234567abcdefghijklmnopqrstuvwxyz".index(char)
        moment = datetime.fromtimestamp((value >> 10) / 1_000_000, UTC)
        assert moment.year == 2023


# ---- sessions -------------------------------------------------------------------------
def test_an_expired_session_is_refreshed_and_the_call_made_once_more(fake, alice):
    conn = connector(fake)
    conn.poll("")
    stale = conn.session()["accessJwt"]
    fake.expire_access_tokens()
    mention = fake.mention(alice, "help")

    page = conn.poll("")

    assert [e.external_id for e in page.events] == [mention["uri"]]
    assert len(fake.calls("POST", "com.atproto.server.createSession")) == 1
    [refresh] = fake.calls("POST", "com.atproto.server.refreshSession")
    assert refresh.headers["authorization"].startswith("Bearer ")
    assert refresh.headers["authorization"] != f"Bearer {stale}"
    tokens = [r.headers["authorization"] for r in fake.calls("GET", LIST)]
    assert tokens[1] == f"Bearer {stale}" and tokens[2] != tokens[1]
    assert len(tokens) == 3

    # The renewed session is kept with the channel: the next connector just uses it.
    channel = ChannelAccount.objects.get(name="northwind-bluesky")
    BlueskyConnector(channel).poll("")
    assert len(fake.calls("POST", "com.atproto.server.createSession")) == 1
    assert fake.calls("GET", LIST)[-1].headers["authorization"] == tokens[2]
    assert json.loads(channel.secrets["session"])["did"] == DID


def test_a_spent_refresh_token_means_signing_in_again(fake, alice):
    conn = connector(fake)
    conn.poll("")
    fake.expire_access_tokens()
    fake.expire_refresh_tokens()
    fake.mention(alice, "help")
    assert len(conn.poll("").events) == 1
    assert len(fake.calls("POST", "com.atproto.server.createSession")) == 2


def test_an_expired_session_while_publishing_is_renewed_and_posts_once(fake, alice):
    fake.mention(alice, "hello")
    conn = connector(fake)
    [event] = conn.poll("").events
    fake.expire_access_tokens()
    result = conn.publish(text="hi", target=target_of(event), idempotency_key=uuid.uuid4())
    assert result.external_id in fake.records
    assert len(fake.calls("POST", CREATE)) == 2


def test_a_wrong_app_password_is_permanent(fake):
    channel = make_channel(fake)
    channel.set_secrets({"app_password": "wrong"})
    channel.save()
    with pytest.raises(PermanentError, match="Invalid identifier or password"):
        BlueskyConnector(channel).poll("")


# ---- errors ---------------------------------------------------------------------------
def test_rate_limit_gives_a_transient_error_with_the_wait(fake):
    reset = int(time.time()) + 90
    fake.fail_next(
        "GET",
        LIST,
        Reply(
            429,
            {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
            headers={"ratelimit-reset": str(reset), "ratelimit-remaining": "0"},
        ),
    )
    with pytest.raises(TransientError) as caught:
        connector(fake).poll("")
    assert 80 < caught.value.retry_after <= 90
    assert "Rate Limit Exceeded" in caught.value.reason


def test_a_server_error_while_posting_is_ambiguous(fake, alice):
    fake.mention(alice, "hello")
    conn = connector(fake)
    [event] = conn.poll("").events
    fake.fail_next("POST", CREATE, Reply(500, {"error": "InternalServerError", "message": "boom"}))
    with pytest.raises(TransientError) as caught:
        conn.publish(text="hi", target=target_of(event), idempotency_key=uuid.uuid4())
    assert caught.value.ambiguous


def test_a_server_error_while_polling_is_not_ambiguous(fake):
    conn = connector(fake)
    conn.session()
    fake.fail_next("GET", LIST, Reply(502, body=b"<html>Bad Gateway</html>"))
    with pytest.raises(TransientError) as caught:
        conn.poll("")
    assert not caught.value.ambiguous


def test_a_timeout_while_posting_is_ambiguous_and_quick(fake, alice):
    fake.mention(alice, "hello")
    conn = connector(fake, timeout="0.3")
    [event] = conn.poll("").events
    fake.fail_next("POST", CREATE, Reply(200, {"uri": "x", "cid": "y"}, delay=5))
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        conn.publish(text="hi", target=target_of(event), idempotency_key=uuid.uuid4())
    assert time.monotonic() - started < 3
    assert caught.value.ambiguous


def test_a_reply_that_is_too_long_is_permanent_with_the_platforms_words(fake, alice):
    fake.mention(alice, "hello")
    conn = connector(fake)
    [event] = conn.poll("").events
    with pytest.raises(PermanentError, match="must not be longer than 300 graphemes"):
        conn.publish(text="x" * 301, target=target_of(event), idempotency_key=uuid.uuid4())
    assert conn.max_reply_chars == 300


def test_a_target_without_its_cid_is_refused_before_calling(fake):
    conn = connector(fake)
    target = ReplyTarget(external_id="at://did:plc:x/app.bsky.feed.post/3k", extra={})
    with pytest.raises(PermanentError):
        conn.publish(text="hi", target=target, idempotency_key=uuid.uuid4())
    assert fake.calls("POST", CREATE) == []


def test_settings_name_what_an_account_needs():
    spec = {item.key: item for item in BlueskyConnector.settings_spec}
    assert spec["handle"].required and not spec["handle"].secret
    assert spec["app_password"].required and spec["app_password"].secret
    assert not spec["base_url"].required
    assert {"poll_interval"} <= set(spec)
    assert BlueskyConnector.polls


# ---- through the services -------------------------------------------------------------
def test_polled_pages_are_stored_and_become_mentions_once(fake, alice, carol, monkeypatch):
    from connectors.models import DeliveryStatus, RawDelivery
    from connectors.services import channel_poll, delivery_process
    from tickets.models import Mention

    channel = make_channel(fake)
    fake.mention(alice, "before we connected")
    channel_poll(channel_id=channel.pk)
    new = [fake.mention(carol if n % 2 else alice, f"card problem {n}") for n in range(7)]
    fake.notify(fake.brand, fake.add_post(fake.brand, "ours"), "mention")
    monkeypatch.setattr(BlueskyConnector, "page_size", 3)  # a backlog of several pages
    result = channel_poll(channel_id=channel.pk)
    for delivery_id in RawDelivery.objects.filter(channel=channel).values_list("id", flat=True):
        delivery_process(delivery_id=delivery_id)

    assert result.events == 8
    stored = Mention.objects.filter(channel=channel).order_by("posted_at", "id")
    assert [m.text for m in stored] == ["before we connected"] + [
        f"card problem {n}" for n in range(7)
    ]
    assert {m.external_id for m in stored} >= {n["uri"] for n in new}
    assert set(RawDelivery.objects.filter(channel=channel).values_list("status", flat=True)) == {
        DeliveryStatus.PROCESSED
    }


def test_a_session_renewed_by_another_worker_is_taken_up_without_signing_in(fake, alice):
    channel = make_channel(fake)
    first = BlueskyConnector(channel)
    first.poll("")
    second = BlueskyConnector(ChannelAccount.objects.get(pk=channel.pk))
    second.poll("")  # the session first stored: both workers hold the same one
    fake.expire_access_tokens()
    fake.mention(alice, "help")

    assert len(first.poll("").events) == 1  # first refreshes (the refresh token is spent)
    assert len(second.poll("").events) == 1  # second takes the renewed one from the channel

    assert len(fake.calls("POST", "com.atproto.server.createSession")) == 1
    assert len(fake.calls("POST", "com.atproto.server.refreshSession")) == 1


def test_a_stored_session_that_is_stale_too_is_renewed(fake, alice):
    channel = make_channel(fake)
    first = BlueskyConnector(channel)
    first.poll("")
    second = BlueskyConnector(ChannelAccount.objects.get(pk=channel.pk))
    second.poll("")
    fake.expire_access_tokens()
    first.poll("")  # renews and stores a new session
    fake.expire_access_tokens()  # ...which expires as well
    fake.mention(alice, "help")

    assert len(second.poll("").events) == 1
    assert len(fake.calls("POST", "com.atproto.server.createSession")) == 1
