"""The Mastodon connector against a fake instance speaking Mastodon's wire format."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import PermanentError, ReplyTarget, TransientError
from connectors.models import ChannelAccount
from connectors.platforms.mastodon import MastodonConnector
from connectors.registry import connector_for
from connectors.text import html_to_text
from tests.connectors._mastodon_fake import TOKEN, FakeMastodon, iso, rails_json
from tests.connectors.fakes import FakePlatform, Reply

pytestmark = pytest.mark.django_db

RICH_HTML = (
    '<p><span class="h-card" translate="no"><a href="https://bank.social/@northwind" '
    'class="u-url mention">@<span>northwind</span></a></span> my card &amp; PIN don&#39;t '
    "work &lt;3 &quot;again&quot;</p><p>Tried twice<br />still nothing "
    '<a href="https://status.example.com/incidents/2026/11/20/cards" rel="nofollow noopener" '
    'target="_blank"><span class="invisible">https://</span><span class="ellipsis">'
    'status.example.com/incidents/</span><span class="invisible">2026/11/20/cards</span></a> '
    '<a href="https://bank.social/tags/fail" class="mention hashtag" rel="tag">#<span>fail'
    "</span></a> :blobcatangry:</p>"
)
RICH_TEXT = (
    '@northwind my card & PIN don\'t work <3 "again"\n\n'
    "Tried twice\nstill nothing https://status.example.com/incidents/2026/11/20/cards "
    "#fail :blobcatangry:"
)


@pytest.fixture
def fake():
    with FakePlatform() as platform:
        yield FakeMastodon(platform)


@pytest.fixture
def alice(fake):
    return fake.add_account("110000000000000042", "alice@mstdn.example", "Alice Ng")


@pytest.fixture
def carol(fake):
    return fake.add_account("110000000000000077", "carol", "")


def make_channel(fake: FakeMastodon, **settings) -> ChannelAccount:
    channel = ChannelAccount(
        name="northwind-mastodon",
        platform="mastodon",
        settings={"base_url": fake.url, "account_id": fake.brand["id"], **settings},
    )
    channel.set_secrets({"access_token": TOKEN})
    channel.save()
    return channel


def poll_all(connector, cursor: str, limit: int = 10):
    pages = []
    for _ in range(limit):
        page = connector.poll(cursor)
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
def test_poll_walks_forward_oldest_first_without_gaps_or_duplicates(fake, alice, carol):
    seen, _ = fake.mention(alice, "<p>old one</p>")
    expected = []
    for number in range(7):
        author = alice if number % 2 else carol
        _, status = fake.mention(author, f"<p>mention {number}</p>")
        expected.append(status["id"])
        # Other notification types never show up (and never eat into a page).
        fake.notify("favourite", status, carol)
        fake.notify("follow", None, carol)
    connector = connector_for(make_channel(fake))
    assert isinstance(connector, MastodonConnector)
    connector.page_size = 3

    pages, cursor = poll_all(connector, seen)

    assert [e.external_id for page in pages for e in page.events] == expected
    assert [e.text for page in pages for e in page.events] == [f"mention {n}" for n in range(7)]
    assert [len(page.events) for page in pages] == [3, 3, 1]
    assert [page.done for page in pages] == [False, False, True]
    requests = fake.platform.requests_to("GET", "/api/v1/notifications")
    assert [r.arg("min_id") for r in requests] == [seen, pages[0].next_cursor, pages[1].next_cursor]
    for request in requests:
        assert request.query["types[]"] == ["mention", "update"]
        assert request.arg("limit") == "3"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
    # Each page is kept as the instance sent it, and reads back to the same events.
    for page in pages:
        assert b"\\u003cp\\u003e" in page.raw_body
        assert connector.parse(page.raw_body, page.headers) == page.events
        assert page.headers["x-ratelimit-reset"] == "2026-11-20T16:15:00.000000Z"
    assert "link" in pages[0].headers

    # Nothing new: nothing returned, the cursor stays.
    again = connector.poll(cursor)
    assert (again.events, again.next_cursor, again.done) == ([], None, True)

    # A new mention arrives: exactly it.
    newest, status = fake.mention(alice, "<p>one more</p>")
    later = connector.poll(cursor)
    assert [e.external_id for e in later.events] == [status["id"]]
    assert later.next_cursor == newest
    assert later.done


def test_first_poll_takes_the_latest_page_then_walks_forward(fake, alice):
    statuses = [fake.mention(alice, f"<p>n{n}</p>")[1] for n in range(5)]
    connector = MastodonConnector(make_channel(fake))
    connector.page_size = 3

    first = connector.poll("")

    assert [e.external_id for e in first.events] == [s["id"] for s in statuses[2:]]
    assert first.done
    assert fake.platform.requests_to("GET", "/api/v1/notifications")[0].arg("min_id") is None
    notification_id, status = fake.mention(alice, "<p>next</p>")
    second = connector.poll(first.next_cursor)
    assert [e.external_id for e in second.events] == [status["id"]]
    assert second.next_cursor == notification_id


def test_a_mention_becomes_a_plain_text_event(fake, alice):
    _, parent = fake.mention(alice, "<p>first</p>")
    _, status = fake.mention(alice, RICH_HTML, visibility="direct", in_reply_to_id=parent["id"])
    connector = MastodonConnector(make_channel(fake))

    [_, event] = connector.poll("").events

    assert event.kind == "post"
    assert event.external_id == status["id"]
    assert event.text == RICH_TEXT
    assert event.author == {
        "external_id": alice["id"],
        "handle": "alice@mstdn.example",
        "display_name": "Alice Ng",
    }
    assert event.url == f"https://bank.social/@alice@mstdn.example/{status['id']}"
    assert event.posted_at == datetime.fromisoformat(status["created_at"])
    assert event.posted_at.tzinfo is not None
    assert event.in_reply_to_external_id == parent["id"]
    assert event.extra == {"visibility": "direct", "acct": "alice@mstdn.example"}
    assert not event.is_own
    assert event.raw["status"]["id"] == status["id"]


def test_a_content_warning_comes_before_the_text(fake, alice):
    fake.mention(alice, "<p>my loan</p>", spoiler_text="money & stress")
    [event] = MastodonConnector(make_channel(fake)).poll("").events
    assert event.text == "money & stress\n\nmy loan"


def test_own_statuses_are_flagged_and_our_id_is_looked_up_once(fake, alice):
    fake.mention(alice, "<p>help</p>")
    fake.mention(fake.brand, "<p>we posted this</p>")
    channel = make_channel(fake)
    channel.settings.pop("account_id")
    channel.save()
    connector = MastodonConnector(channel)

    page = connector.poll("")
    connector.parse(page.raw_body, page.headers)

    assert [e.is_own for e in page.events] == [False, True]
    assert len(fake.platform.requests_to("GET", "/api/v1/accounts/verify_credentials")) == 1
    channel.refresh_from_db()
    assert channel.settings["account_id"] == fake.brand["id"]
    assert channel.settings["handle"] == "northwind"
    # Saved: a later connector (processing the stored page) needs no lookup.
    MastodonConnector(channel).parse(page.raw_body, page.headers)
    assert len(fake.platform.requests_to("GET", "/api/v1/accounts/verify_credentials")) == 1


def test_an_edit_arrives_as_the_same_post_with_the_new_text(fake, alice, carol):
    _, status = fake.mention(alice, "<p>my card is blocked</p>")
    connector = MastodonConnector(make_channel(fake))
    first = connector.poll("")
    assert [e.text for e in first.events] == ["my card is blocked"]

    fake.edit(status, "<p>my card is blocked &amp; I need a loan</p>")
    fake.notify("update", status, alice)
    # An edit of a status that does not mention us is not ours to answer.
    other = fake.add_status(carol, "<p>unrelated</p>", mentions=[])
    fake.edit(other, "<p>unrelated, edited</p>")
    fake.notify("update", other, carol)
    second = connector.poll(first.next_cursor)

    [edit] = second.events
    assert edit.kind == "post"
    assert edit.external_id == status["id"]
    assert edit.text == "my card is blocked & I need a loan"
    assert edit.extra["edited_at"] == status["edited_at"]


def test_a_status_edited_before_we_saw_it_has_its_new_text(fake, alice):
    _, status = fake.mention(alice, "<p>draft</p>")
    fake.edit(status, "<p>final words</p>")
    [event] = MastodonConnector(make_channel(fake)).poll("").events
    assert (event.external_id, event.text) == (status["id"], "final words")


# ---- publishing -----------------------------------------------------------------------
@pytest.mark.parametrize("visibility", ["direct", "private", "unlisted", "public"])
def test_publish_answers_in_the_thread_with_the_same_visibility(fake, alice, visibility):
    _, status = fake.mention(alice, "<p>help</p>", visibility=visibility)
    connector = MastodonConnector(make_channel(fake))
    [event] = connector.poll("").events
    key = uuid.uuid4()

    result = connector.publish(
        text="Sorry about that & thanks: we sent you a DM.",
        target=target_of(event),
        idempotency_key=key,
    )

    [request] = fake.platform.requests_to("POST", "/api/v1/statuses")
    form = request.form()
    assert {key: form[key] for key in ("status", "in_reply_to_id", "visibility")} == {
        "status": "@alice@mstdn.example Sorry about that & thanks: we sent you a DM.",
        "in_reply_to_id": status["id"],
        "visibility": visibility,
    }
    assert set(form) <= {"status", "in_reply_to_id", "visibility", "sensitive"}
    assert request.headers["idempotency-key"] == str(key)
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    reply = fake.statuses[result.external_id]
    assert reply["in_reply_to_id"] == status["id"]
    assert reply["visibility"] == visibility
    assert result.url == f"https://bank.social/@northwind/{result.external_id}"


def test_publish_does_not_mention_the_customer_twice(fake, alice):
    fake.mention(alice, "<p>help</p>")
    connector = MastodonConnector(make_channel(fake))
    [event] = connector.poll("").events
    connector.publish(
        text="@Alice@mstdn.example we called you.",
        target=target_of(event),
        idempotency_key=uuid.uuid4(),
    )
    [request] = fake.platform.requests_to("POST", "/api/v1/statuses")
    assert request.form()["status"] == "@Alice@mstdn.example we called you."


def test_publish_without_known_visibility_stays_direct(fake, alice):
    _, status = fake.mention(alice, "<p>help</p>", visibility="public")
    connector = MastodonConnector(make_channel(fake))
    target = ReplyTarget(external_id=status["id"], author_handle="alice@mstdn.example")
    connector.publish(text="hi", target=target, idempotency_key=uuid.uuid4())
    [request] = fake.platform.requests_to("POST", "/api/v1/statuses")
    assert request.form()["visibility"] == "direct"


def test_a_repeated_publish_with_the_same_key_posts_once(fake, alice):
    fake.mention(alice, "<p>help</p>")
    connector = MastodonConnector(make_channel(fake))
    [event] = connector.poll("").events
    key = uuid.uuid4()
    first = connector.publish(text="on it", target=target_of(event), idempotency_key=key)
    second = connector.publish(text="on it", target=target_of(event), idempotency_key=key)
    assert first == second
    assert [s for s in fake.statuses.values() if s["account_id"] == fake.brand["id"]] == [
        fake.statuses[first.external_id]
    ]


def test_find_own_reply_finds_our_earlier_reply_and_nothing_else(fake, alice, carol):
    _, status = fake.mention(alice, "<p>help</p>", visibility="direct")
    connector = MastodonConnector(make_channel(fake))
    [event] = connector.poll("").events
    target = target_of(event)
    text = "We are on it.\n\nSee https://bank.example/help & call us."
    key = uuid.uuid4()
    since = fake.clock  # the first attempt begins (by the instance's clock)
    assert (
        connector.find_own_reply(text=text, target=target, idempotency_key=key, since=since) is None
    )

    # Someone else's reply with the very same words is not ours.
    fake.add_status(carol, fake.statuses[status["id"]]["content"], in_reply_to_id=status["id"])
    posted = connector.publish(text=text, target=target, idempotency_key=key)

    fresh = MastodonConnector(ChannelAccount.objects.get(pk=connector.channel.pk))

    def find(words: str):
        return fresh.find_own_reply(text=words, target=target, idempotency_key=key, since=since)

    assert (find(text), find("Other words.")) == (posted, None)


def test_find_own_reply_ignores_our_same_words_from_before_the_first_attempt(fake, alice):
    fake.mention(alice, "<p>thanks for the help yesterday</p>")
    connector = MastodonConnector(make_channel(fake))
    [event] = connector.poll("").events
    target = target_of(event)
    # Yesterday's answer, in the same words, to the same post (its key long expired).
    connector.publish(text="Glad to help!", target=target, idempotency_key=uuid.uuid4())
    since = fake.clock + timedelta(seconds=1)  # today's first attempt, which never got through

    found = connector.find_own_reply(
        text="Glad to help!", target=target, idempotency_key=uuid.uuid4(), since=since
    )

    assert found is None


# ---- errors ---------------------------------------------------------------------------
def test_rate_limit_gives_a_transient_error_with_the_wait(fake, alice):
    reset = datetime.now(UTC) + timedelta(seconds=120)
    fake.fail_next(
        "GET",
        "/api/v1/notifications",
        Reply(
            429,
            body=rails_json({"error": "Too many requests"}),
            headers={"Content-Type": "application/json", "X-RateLimit-Reset": iso(reset)},
        ),
    )
    connector = MastodonConnector(make_channel(fake))
    with pytest.raises(TransientError) as caught:
        connector.poll("")
    assert 100 < caught.value.retry_after <= 122
    assert not caught.value.ambiguous


def test_a_server_error_while_posting_is_ambiguous(fake, alice):
    _, status = fake.mention(alice, "<p>help</p>")
    fake.fail_next("POST", "/api/v1/statuses", Reply(500, {"error": "Internal server error"}))
    connector = MastodonConnector(make_channel(fake))
    target = ReplyTarget(external_id=status["id"], author_handle="alice@mstdn.example")
    with pytest.raises(TransientError) as caught:
        connector.publish(text="hi", target=target, idempotency_key=uuid.uuid4())
    assert caught.value.ambiguous
    assert "500" in caught.value.reason


def test_a_server_error_while_polling_is_transient_and_not_ambiguous(fake):
    fake.fail_next(
        "GET",
        "/api/v1/notifications",
        Reply(503, body=b"<html>busy</html>", headers={"Retry-After": "30"}),
    )
    with pytest.raises(TransientError) as caught:
        MastodonConnector(make_channel(fake)).poll("")
    assert not caught.value.ambiguous
    assert caught.value.retry_after == 30


def test_a_timeout_while_posting_is_ambiguous_and_quick(fake, alice):
    _, status = fake.mention(alice, "<p>help</p>")
    fake.fail_next("POST", "/api/v1/statuses", Reply(200, {"id": "1"}, delay=5))
    connector = MastodonConnector(make_channel(fake, timeout="0.3"))
    target = ReplyTarget(external_id=status["id"], author_handle="alice@mstdn.example")
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        connector.publish(text="hi", target=target, idempotency_key=uuid.uuid4())
    assert time.monotonic() - started < 3
    assert caught.value.ambiguous


def test_a_timeout_while_polling_is_transient(fake):
    fake.fail_next("GET", "/api/v1/notifications", Reply(200, [], delay=5))
    with pytest.raises(TransientError) as caught:
        MastodonConnector(make_channel(fake, timeout="0.3")).poll("")
    assert not caught.value.ambiguous


def test_replying_to_a_deleted_status_is_permanent(fake, alice):
    _, status = fake.mention(alice, "<p>help</p>")
    connector = MastodonConnector(make_channel(fake))
    [event] = connector.poll("").events
    fake.delete(status)
    with pytest.raises(PermanentError, match="Record not found"):
        connector.publish(text="hi", target=target_of(event), idempotency_key=uuid.uuid4())
    with pytest.raises(PermanentError, match="Record not found"):
        connector.find_own_reply(
            text="hi", target=target_of(event), idempotency_key=uuid.uuid4(), since=fake.clock
        )


def _posts(fake) -> list:
    return fake.platform.requests_to("POST", "/api/v1/statuses")


def test_a_reply_too_long_with_the_mention_we_add_is_refused_before_posting(fake, alice):
    fake.mention(alice, "<p>help</p>")
    connector = MastodonConnector(make_channel(fake))
    [event] = connector.poll("").events
    # 495 characters of our own: with "@alice@mstdn.example " (counted "@alice ") it is 502.
    with pytest.raises(PermanentError) as caught:
        connector.publish(text="x" * 495, target=target_of(event), idempotency_key=uuid.uuid4())

    assert caught.value.code == "text_too_long"
    assert "502 characters" in caught.value.reason
    assert "at most 500" in caught.value.reason
    assert _posts(fake) == []  # the instance was never asked


def test_a_reply_at_the_limit_with_the_mention_we_add_is_posted(fake, alice):
    fake.mention(alice, "<p>help</p>")
    connector = MastodonConnector(make_channel(fake))
    [event] = connector.poll("").events

    result = connector.publish(
        text="x" * 493, target=target_of(event), idempotency_key=uuid.uuid4()
    )

    assert result.external_id in fake.statuses
    assert len(_posts(fake)) == 1


def test_links_count_as_23_characters_whatever_their_length(fake, alice):
    fake.mention(alice, "<p>where are the rates?</p>")
    connector = MastodonConnector(make_channel(fake))
    [event] = connector.poll("").events
    link = "https://bank.example/rates/" + "a" * 300 + "?utm_source=mastodon"
    # 7 (the mention) + 440 + 1 + 23 (the link, 347 characters long) + 1 = 472.
    text = "y" * 440 + f" {link}."

    connector.publish(text=text, target=target_of(event), idempotency_key=uuid.uuid4())
    with pytest.raises(PermanentError) as caught:
        connector.publish(
            text="y" * 470 + f" {link}.", target=target_of(event), idempotency_key=uuid.uuid4()
        )

    assert caught.value.code == "text_too_long"
    assert "502 characters" in caught.value.reason
    assert len(_posts(fake)) == 1


def test_max_characters_raises_our_limit_and_the_instance_has_the_last_word(fake, alice):
    fake.mention(alice, "<p>help</p>")
    connector = MastodonConnector(make_channel(fake, max_characters="5000"))
    [event] = connector.poll("").events

    # Our check lets it through; this (fake) instance keeps 500 and answers 422.
    with pytest.raises(PermanentError, match="Text character limit of 500 exceeded"):
        connector.publish(text="x" * 501, target=target_of(event), idempotency_key=uuid.uuid4())
    assert connector.max_reply_chars == 500


def test_a_refused_token_is_permanent(fake):
    channel = make_channel(fake)
    channel.set_secrets({"access_token": "revoked"})
    channel.save()
    with pytest.raises(PermanentError, match="The access token is invalid"):
        MastodonConnector(channel).poll("")


def test_settings_name_what_an_account_needs():
    spec = {item.key: item for item in MastodonConnector.settings_spec}
    assert spec["base_url"].required and not spec["base_url"].secret
    assert spec["access_token"].required and spec["access_token"].secret
    assert {"account_id", "handle", "poll_interval"} <= set(spec)
    assert MastodonConnector.polls


# ---- html_to_text ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>one</p><p>two</p>", "one\n\ntwo"),
        ("<p>one<br>two<br />three</p>", "one\ntwo\nthree"),
        ("<p>a   b\n c</p>", "a b c"),
        ('<p><a href="https://x.example/">the link text</a></p>', "the link text"),
        ("<p>&amp; &lt; &gt; &quot; &#39; &eacute;</p>", "& < > \" ' é"),
        ("<p>Cafe\u0301</p>", "Caf\u00e9"),
        ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
        ("plain text", "plain text"),
        ("", ""),
    ],
)
def test_html_to_text(html, text):
    assert html_to_text(html) == text


# ---- through the services -------------------------------------------------------------
def test_polled_pages_are_stored_and_become_mentions(fake, alice):
    from connectors.services import channel_poll, delivery_process
    from tickets.models import Mention

    _, status = fake.mention(alice, RICH_HTML, visibility="direct")
    fake.mention(fake.brand, "<p>our own post</p>")
    channel = make_channel(fake)

    result = channel_poll(channel_id=channel.pk)
    for delivery_id in result.delivery_ids:
        delivery_process(delivery_id=delivery_id)

    [mention] = Mention.objects.filter(channel=channel)
    assert (mention.external_id, mention.text) == (status["id"], RICH_TEXT)
    assert mention.reply_context == {"visibility": "direct", "acct": "alice@mstdn.example"}
    channel.refresh_from_db()
    assert channel.poll_cursor == fake.notifications[-1]["id"]
