"""The YouTube connector against a fake YouTube Data API on 127.0.0.1 (real HTTP)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache

from connectors.base import PermanentError, ReplyTarget, TransientError
from connectors.models import ChannelAccount
from connectors.platforms.youtube import YouTubeConnector, seconds_until_pacific_midnight
from tests.connectors._fake_youtube import (
    COMMENTS,
    THREADS,
    TOKEN,
    FakeYouTube,
    google_error,
    minutes_ago,
)
from tests.connectors.fakes import FakePlatform, Reply

pytestmark = pytest.mark.django_db

BRAND = "UCnorthwindBank0000000000"
KEY = uuid.UUID("00000000-0000-0000-0000-000000000001")


@pytest.fixture
def fake():
    cache.clear()  # reply counts remembered by an earlier test must not leak in
    with FakePlatform() as platform:
        yield platform
    cache.clear()


@pytest.fixture
def yt(fake):
    return FakeYouTube(fake, brand=BRAND)


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


def make_channel(fake, yt, **settings) -> ChannelAccount:
    channel = ChannelAccount(
        name="yt-northwind",
        platform="youtube",
        settings={"base_url": fake.url, "channel_id": BRAND, "token_url": fake.url + TOKEN}
        | settings,
    )
    channel.set_secrets({"api_key": yt.api_key, "oauth_token": yt.oauth_token})
    channel.save()
    return channel


@pytest.fixture
def connector(fake, yt):
    return YouTubeConnector(make_channel(fake, yt))


def poll_all(connector, cursor=""):
    """Poll until done, as the poll task does: [(events, cursor after)...]."""
    pages = []
    for _ in range(20):
        page = connector.poll(cursor)
        cursor = page.next_cursor if page.next_cursor is not None else cursor
        pages.append((page, cursor))
        if page.done:
            return pages
    raise AssertionError("the poll never finished")


def ids(events):
    return [event.external_id for event in events]


# ---- reading ------------------------------------------------------------------------------


def test_poll_reads_new_comments_oldest_first_across_pages_then_only_new_ones(connector, yt, now):
    made = [yt.comment(f"comment {n}", minutes_ago(now, 50 - n * 10)) for n in range(5)]
    connector.page_size = 2  # five threads over three pages

    page = connector.poll("")

    assert ids(page.events) == made  # oldest first
    assert page.done is True
    first = page.events[0]
    assert first.kind == "post"
    assert first.text == "comment 0"
    assert first.author == {
        "external_id": "UCcustomer1",
        "handle": "@customer1",
        "display_name": "@customer1",
    }
    assert first.url == f"https://www.youtube.com/watch?v=vid-1&lc={made[0]}"
    assert first.posted_at == minutes_ago(now, 50)
    assert first.in_reply_to_external_id == ""
    assert first.extra == {"thread_id": made[0], "video_id": "vid-1"}
    assert first.is_own is False
    calls = yt.requests("GET", THREADS)
    assert len(calls) == 3
    assert calls[0].arg("allThreadsRelatedToChannelId") == BRAND
    assert calls[0].arg("part") == "snippet,replies"
    assert calls[0].arg("order") == "time"
    assert calls[0].arg("maxResults") == "2"
    assert calls[0].arg("key") == yt.api_key
    assert calls[0].arg("pageToken") is None
    assert calls[1].arg("pageToken") and calls[2].arg("pageToken")
    # The raw page holds every answer read, byte for byte.
    stored = json.loads(page.raw_body)
    assert [t["id"] for answer in stored for t in answer["items"]] == made[::-1]

    again = connector.poll(page.next_cursor)
    assert again.events == []
    assert again.done is True
    assert len(yt.requests("GET", THREADS)) == 4  # the newest page showed nothing new

    newer = yt.comment("is the app down?", minutes_ago(now, 1))
    third = connector.poll(page.next_cursor)
    assert ids(third.events) == [newer]
    assert third.events[0].text == "is the app down?"


def test_a_comment_in_the_same_second_as_the_cursor_is_not_lost_or_repeated(connector, yt, now):
    moment = minutes_ago(now, 5)
    first = yt.comment("first", moment)
    page = connector.poll("")
    assert ids(page.events) == [first]

    second = yt.comment("second, same second", moment)
    page2 = connector.poll(page.next_cursor)
    assert ids(page2.events) == [second]
    page3 = connector.poll(page2.next_cursor or page.next_cursor)
    assert page3.events == []


def test_a_long_backlog_is_read_over_several_polls_without_gaps(connector, yt, now):
    made = [yt.comment(f"backlog {n}", minutes_ago(now, 60 - n)) for n in range(7)]
    connector.page_size = 2
    connector.max_pages_per_poll = 1

    pages = poll_all(connector)

    assert len(pages) == 4
    assert [p.done for p, _ in pages] == [False, False, False, True]
    seen = [e for p, _ in pages for e in p.events]
    assert sorted(ids(seen)) == sorted(made)
    assert len(seen) == len(set(ids(seen)))
    final_cursor = pages[-1][1]
    assert connector.poll(final_cursor).events == []

    newer = yt.comment("after the backlog", minutes_ago(now, 0))
    assert ids(connector.poll(final_cursor).events) == [newer]


def test_an_expired_backlog_page_token_rescans_from_the_newest(connector, yt, now):
    made = [yt.comment(f"c{n}", minutes_ago(now, 30 - n)) for n in range(5)]
    connector.page_size = 2
    connector.max_pages_per_poll = 1
    first = connector.poll("")
    assert first.done is False

    yt.token_generation += 1  # every page token handed out is now refused
    pages = poll_all(connector, first.next_cursor)

    seen = set(ids(first.events)) | {e.external_id for p, _ in pages for e in p.events}
    assert seen == set(made)
    assert connector.poll(pages[-1][1]).events == []


def test_own_comments_are_passed_on_marked_as_own(connector, yt, now):
    ours = yt.comment("Welcome to our channel!", minutes_ago(now, 9), author=BRAND, name="@NW")
    theirs = yt.comment("my card was declined", minutes_ago(now, 8))
    our_reply = yt.reply(theirs, "Sorry! Please DM us.", minutes_ago(now, 7), author=BRAND)

    events = {e.external_id: e for e in connector.poll("").events}

    assert events[ours].is_own is True
    assert events[our_reply].is_own is True
    assert events[theirs].is_own is False


def test_replies_inside_threads_point_to_their_thread(connector, yt, now):
    thread = yt.comment("loan question", minutes_ago(now, 20))
    reply = yt.reply(thread, "me too", minutes_ago(now, 10), author="UCother", name="@other")

    events = {e.external_id: e for e in connector.poll("").events}

    assert reply.startswith(f"{thread}.")
    event = events[reply]
    assert event.in_reply_to_external_id == thread
    assert event.extra == {"thread_id": thread, "video_id": "vid-1"}
    assert event.url == f"https://www.youtube.com/watch?v=vid-1&lc={reply}"
    assert event.author["external_id"] == "UCother"
    assert event.posted_at == minutes_ago(now, 10)


def test_replies_beyond_the_thread_preview_are_read_in_full(connector, yt, now):
    thread = yt.comment("busy thread", minutes_ago(now, 60))
    replies = [yt.reply(thread, f"reply {n}", minutes_ago(now, 50 - n)) for n in range(7)]
    yt.shown_replies = 2

    page = connector.poll("")

    assert ids(page.events) == [thread, *replies]
    assert [r.arg("parentId") for r in yt.requests("GET", COMMENTS)] == [thread]

    # A follow-up in the old thread, hidden behind the preview, is still found.
    late = yt.reply(thread, "still waiting for an answer", minutes_ago(now, 1))
    page2 = connector.poll(page.next_cursor)
    assert ids(page2.events) == [late]
    assert page2.events[0].in_reply_to_external_id == thread
    # Nothing changed: the thread is not read again.
    calls = len(yt.requests("GET", COMMENTS))
    assert connector.poll(page2.next_cursor).events == []
    assert len(yt.requests("GET", COMMENTS)) == calls


def test_a_follow_up_reply_in_an_older_thread_is_found(connector, yt, now):
    old = yt.comment("where is my refund", minutes_ago(now, 40))
    yt.comment("newer thread", minutes_ago(now, 30))
    page = connector.poll("")

    follow_up = yt.reply(old, "any news?", minutes_ago(now, 2))
    page2 = connector.poll(page.next_cursor)

    assert ids(page2.events) == [follow_up]


def test_an_edited_comment_comes_again_with_its_new_text(connector, yt, now):
    comment = yt.comment("rate is 5%?", minutes_ago(now, 30))
    other = yt.comment("thanks", minutes_ago(now, 20))
    page = connector.poll("")

    yt.edit(comment, "rate is 5% on my mortgage?", minutes_ago(now, 1))
    page2 = connector.poll(page.next_cursor)

    assert [(e.kind, e.external_id, e.text) for e in page2.events] == [
        ("post", comment, "rate is 5% on my mortgage?")
    ]
    assert page2.events[0].posted_at == minutes_ago(now, 30)
    assert connector.poll(page2.next_cursor).events == []
    assert other not in ids(page2.events)


def test_text_comes_from_text_display_when_text_original_is_missing(connector, yt, now):
    yt.comment("Fees & charges\nare <too> high", minutes_ago(now, 3), with_text_original=False)

    (event,) = connector.poll("").events

    assert event.text == "Fees & charges\nare <too> high"


def test_a_cursor_set_to_a_moment_reads_from_there(connector, yt, now):
    yt.comment("old", minutes_ago(now, 600))
    recent = yt.comment("recent", minutes_ago(now, 30))

    page = connector.poll(minutes_ago(now, 60).strftime("%Y-%m-%dT%H:%M:%SZ"))

    assert ids(page.events) == [recent]


def test_a_stored_page_can_be_read_again(connector, yt, now):
    thread = yt.comment("stored", minutes_ago(now, 9))
    reply = yt.reply(thread, "reply", minutes_ago(now, 8))
    connector.page_size = 1
    yt.comment("second page", minutes_ago(now, 10))

    page = connector.poll("")

    again = connector.parse(page.raw_body, page.headers)
    assert [(e.external_id, e.text) for e in again] == [
        (e.external_id, e.text) for e in page.events
    ]
    assert reply in ids(again)


def test_poll_quota_exhausted_waits_until_midnight_pacific(connector, yt):
    yt.fail_next(
        "GET",
        THREADS,
        google_error(
            403,
            "quotaExceeded",
            "The request cannot be completed because you have exceeded your quota.",
            "youtube.quota",
        ),
    )

    with pytest.raises(TransientError) as caught:
        connector.poll("")

    expected = seconds_until_pacific_midnight()
    assert caught.value.retry_after == pytest.approx(expected, abs=5)
    assert "exceeded your quota" in caught.value.reason


def test_poll_timeout_is_transient_and_quick(fake, yt):
    connector = YouTubeConnector(make_channel(fake, yt, timeout=0.3))
    yt.fail_next("GET", THREADS, Reply(200, {"items": []}, delay=3))

    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        connector.poll("")

    assert time.monotonic() - started < 2
    assert caught.value.ambiguous is False


def test_a_bad_api_key_is_permanent_with_googles_message(fake, yt):
    channel = make_channel(fake, yt)
    channel.set_secrets({"api_key": "wrong"})
    channel.save()

    with pytest.raises(PermanentError) as caught:
        YouTubeConnector(channel).poll("")

    assert "API key not valid" in caught.value.reason


# ---- publishing ---------------------------------------------------------------------------


def target_for(thread: str, reply: str | None = None) -> ReplyTarget:
    return ReplyTarget(
        external_id=reply or thread,
        author_handle="@customer1",
        extra={"thread_id": thread, "video_id": "vid-1"},
    )


def test_publish_sends_the_reply_to_the_thread_and_returns_its_id_and_url(connector, yt, now):
    thread = yt.comment("how do I reset my PIN?", minutes_ago(now, 5))
    answer = yt.reply(thread, "and my password?", minutes_ago(now, 4))

    result = connector.publish(
        text="Hi! You can reset it in the app.",
        target=target_for(thread, answer),
        idempotency_key=KEY,
    )

    (sent,) = yt.requests("POST", COMMENTS)
    assert sent.query == {"part": ["snippet"]}
    assert sent.headers["authorization"] == f"Bearer {yt.oauth_token}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "snippet": {"parentId": thread, "textOriginal": "Hi! You can reset it in the app."}
    }
    posted = yt.threads[thread].replies[-1]
    assert result.external_id == posted.id
    assert result.url == f"https://www.youtube.com/watch?v=vid-1&lc={posted.id}"
    assert posted.author_channel == BRAND


def test_publish_without_thread_context_replies_under_the_top_level_comment(connector, yt, now):
    thread = yt.comment("hello", minutes_ago(now, 5))
    reply = yt.reply(thread, "hello again", minutes_ago(now, 4))

    connector.publish(text="Hi!", target=ReplyTarget(external_id=reply), idempotency_key=KEY)

    assert yt.requests("POST", COMMENTS)[0].json()["snippet"]["parentId"] == thread


def test_publish_rate_limited_is_transient_with_retry_after(connector, yt, now):
    thread = yt.comment("hello", minutes_ago(now, 5))
    yt.fail_next(
        "POST",
        COMMENTS,
        Reply(
            429,
            {
                "error": {
                    "code": 429,
                    "message": "Too many requests",
                    "errors": [
                        {"reason": "rateLimitExceeded", "domain": "youtube.quota", "message": "x"}
                    ],
                }
            },
            headers={"Retry-After": "30"},
        ),
    )

    with pytest.raises(TransientError) as caught:
        connector.publish(text="Hi!", target=target_for(thread), idempotency_key=KEY)

    assert caught.value.retry_after == 30
    assert caught.value.ambiguous is False
    assert yt.threads[thread].replies == []


def test_publish_quota_exhausted_is_transient_until_midnight_pacific(connector, yt, now):
    thread = yt.comment("hello", minutes_ago(now, 5))
    yt.fail_next(
        "POST", COMMENTS, google_error(403, "quotaExceeded", "Quota exceeded.", "youtube.quota")
    )

    with pytest.raises(TransientError) as caught:
        connector.publish(text="Hi!", target=target_for(thread), idempotency_key=KEY)

    pacific = datetime.now(ZoneInfo("America/Los_Angeles"))
    midnight = datetime.combine(
        pacific.date() + timedelta(days=1), datetime.min.time(), tzinfo=pacific.tzinfo
    )
    assert caught.value.retry_after == pytest.approx(
        (midnight.astimezone(UTC) - datetime.now(UTC)).total_seconds(), abs=5
    )
    assert caught.value.ambiguous is False
    assert yt.threads[thread].replies == []


def test_publish_server_error_is_ambiguous_and_find_own_reply_then_finds_it(connector, yt, now):
    thread = yt.comment("hello", minutes_ago(now, 5))
    yt.fail_next("POST", COMMENTS, google_error(500, "processingFailure", "Backend Error"))

    with pytest.raises(TransientError) as caught:
        connector.publish(text="We're on it.", target=target_for(thread), idempotency_key=KEY)

    assert caught.value.ambiguous is True
    found = connector.find_own_reply(
        text="We're on it.", target=target_for(thread), idempotency_key=KEY, since=now
    )
    posted = yt.threads[thread].replies[-1]
    assert found is not None
    assert found.external_id == posted.id
    assert found.url == f"https://www.youtube.com/watch?v=vid-1&lc={posted.id}"


def test_publish_timeout_is_ambiguous_and_quick(fake, yt, now):
    connector = YouTubeConnector(make_channel(fake, yt, timeout=0.3))
    thread = yt.comment("hello", minutes_ago(now, 5))
    yt.fail_next("POST", COMMENTS, Reply(200, {}, delay=3))

    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        connector.publish(text="Hi!", target=target_for(thread), idempotency_key=KEY)

    assert time.monotonic() - started < 2
    assert caught.value.ambiguous is True


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [
        (
            403,
            "commentsDisabled",
            "The video identified by the videoId parameter has disabled comments.",
        ),
        (404, "commentNotFound", "The parent comment could not be found."),
        (400, "commentTextTooLong", "The comment text is too long."),
        (403, "forbidden", "The comment cannot be created due to insufficient permissions."),
    ],
)
def test_publish_refusals_are_permanent_with_youtubes_message(
    connector, yt, now, status, reason, message
):
    thread = yt.comment("hello", minutes_ago(now, 5))
    yt.fail_next("POST", COMMENTS, google_error(status, reason, message))

    with pytest.raises(PermanentError) as caught:
        connector.publish(text="Hi!", target=target_for(thread), idempotency_key=KEY)

    assert message in caught.value.reason
    assert reason in caught.value.reason


def test_publish_to_a_deleted_comment_is_permanent(connector, yt, now):
    with pytest.raises(PermanentError) as caught:
        connector.publish(text="Hi!", target=target_for("UgzGONE"), idempotency_key=KEY)

    assert "could not be found" in caught.value.reason


def test_a_reply_longer_than_youtube_takes_is_refused_before_sending(connector, yt, now):
    thread = yt.comment("hello", minutes_ago(now, 5))

    with pytest.raises(PermanentError):
        connector.publish(text="x" * 10_001, target=target_for(thread), idempotency_key=KEY)

    assert yt.requests("POST", COMMENTS) == []


def test_find_own_reply_only_finds_our_reply_with_the_same_text(connector, yt, now):
    thread = yt.comment("hello", minutes_ago(now, 9))
    yt.reply(thread, "Thanks, we're checking.", minutes_ago(now, 8), author="UCimpostor")
    ours = yt.reply(thread, "Thanks, we're checking.", minutes_ago(now, 7), author=BRAND)
    yt.reply(thread, "Something else", minutes_ago(now, 6), author=BRAND)
    since = minutes_ago(now, 7.5)

    found = connector.find_own_reply(
        text="Thanks, we're checking.", target=target_for(thread), idempotency_key=KEY, since=since
    )
    missing = connector.find_own_reply(
        text="Never said this", target=target_for(thread), idempotency_key=KEY, since=since
    )

    assert found is not None and found.external_id == ours
    assert missing is None
    request = yt.requests("GET", COMMENTS)[0]
    assert request.arg("parentId") == thread
    assert request.arg("part") == "snippet"


def test_find_own_reply_ignores_our_same_words_from_before_the_first_attempt(connector, yt, now):
    thread = yt.comment("hello", minutes_ago(now, 90))
    yt.reply(thread, "Thanks for watching!", minutes_ago(now, 60), author=BRAND)

    found = connector.find_own_reply(
        text="Thanks for watching!",
        target=target_for(thread),
        idempotency_key=KEY,
        since=minutes_ago(now, 1),
    )

    assert found is None


def test_an_expired_access_token_is_refreshed_and_kept(fake, yt, now):
    channel = make_channel(fake, yt, client_id="cid")
    channel.set_secrets(
        {
            "api_key": yt.api_key,
            "oauth_token": "ya29.expired",
            "refresh_token": "1//refresh",
            "client_secret": "cs",
        }
    )
    channel.save()
    thread = yt.comment("hello", minutes_ago(now, 5))

    result = YouTubeConnector(channel).publish(
        text="Hi!", target=target_for(thread), idempotency_key=KEY
    )

    assert result.external_id == yt.threads[thread].replies[-1].id
    (refresh,) = yt.requests("POST", TOKEN)
    assert refresh.form() == {
        "grant_type": "refresh_token",
        "refresh_token": "1//refresh",
        "client_id": "cid",
        "client_secret": "cs",
    }
    first, second = yt.requests("POST", COMMENTS)
    assert first.headers["authorization"] == "Bearer ya29.expired"
    assert second.headers["authorization"] == f"Bearer {yt.oauth_token}"
    stored = ChannelAccount.objects.get(pk=channel.pk)
    assert stored.secrets["oauth_token"] == yt.oauth_token

    # The next reply uses the kept token straight away.
    YouTubeConnector(stored).publish(text="Bye!", target=target_for(thread), idempotency_key=KEY)
    assert len(yt.requests("POST", TOKEN)) == 1


def test_a_revoked_refresh_token_is_permanent(fake, yt, now):
    channel = make_channel(fake, yt, client_id="cid")
    channel.set_secrets(
        {"oauth_token": "ya29.expired", "refresh_token": "revoked", "client_secret": "cs"}
    )
    channel.save()
    thread = yt.comment("hello", minutes_ago(now, 5))

    with pytest.raises(PermanentError) as caught:
        YouTubeConnector(channel).publish(
            text="Hi!", target=target_for(thread), idempotency_key=KEY
        )

    assert "expired or revoked" in caught.value.reason
    assert yt.threads[thread].replies == []


def test_without_a_refresh_token_a_refused_token_asks_to_reconnect(fake, yt, now):
    channel = make_channel(fake, yt)
    channel.set_secrets({"oauth_token": "ya29.revoked"})
    channel.save()
    thread = yt.comment("hello", minutes_ago(now, 5))

    with pytest.raises(PermanentError) as caught:
        YouTubeConnector(channel).publish(
            text="Hi!", target=target_for(thread), idempotency_key=KEY
        )

    assert "invalid authentication credentials" in caught.value.reason
    assert "Reconnect" in caught.value.reason


# ---- the quota clock ----------------------------------------------------------------------


def test_quota_reset_is_midnight_pacific_across_daylight_saving_changes():
    # 23:30 PDT on 31 October 2026: half an hour to go.
    assert seconds_until_pacific_midnight(datetime(2026, 11, 1, 6, 30, tzinfo=UTC)) == 1800
    # 00:30 PDT on 1 November 2026, the day clocks go back: that day lasts 25 hours.
    assert seconds_until_pacific_midnight(datetime(2026, 11, 1, 7, 30, tzinfo=UTC)) == (24.5 * 3600)
    # 23:00 PST on 7 March 2027, before clocks go forward on the 14th: one hour.
    assert seconds_until_pacific_midnight(datetime(2027, 3, 8, 7, 0, tzinfo=UTC)) == 3600
