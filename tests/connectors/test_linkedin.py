"""The LinkedIn connector against a fake Community Management API on 127.0.0.1."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.core.cache import cache

from connectors.base import PermanentError, ReplyTarget, TransientError
from connectors.models import ChannelAccount
from connectors.platforms.linkedin import LinkedInConnector, seconds_until_utc_midnight
from tests.connectors._fake_linkedin import (
    ORG,
    ORG_ID,
    POSTS,
    FakeLinkedIn,
    comments_path,
    li_error,
)
from tests.connectors.fakes import FakePlatform, Reply

pytestmark = pytest.mark.django_db

KEY = uuid.UUID("00000000-0000-0000-0000-000000000002")
PERSON = "urn:li:person:cust1"


@pytest.fixture
def fake():
    cache.clear()  # reply counts remembered by an earlier test must not leak in
    with FakePlatform() as platform:
        yield platform
    cache.clear()


@pytest.fixture
def li(fake):
    return FakeLinkedIn(fake)


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


def ago(now, minutes):
    return now - timedelta(minutes=minutes)


def make_channel(fake, li, **settings) -> ChannelAccount:
    channel = ChannelAccount(
        name="li-northwind",
        platform="linkedin",
        settings={"base_url": fake.url, "organization_id": ORG_ID, "api_version": li.version}
        | settings,
    )
    channel.set_secrets({"access_token": li.token})
    channel.save()
    return channel


def connector_for(fake, li, **settings) -> LinkedInConnector:
    return LinkedInConnector(make_channel(fake, li, **settings))


def ids(events):
    return [event.external_id for event in events]


def permalink(post: str, comment: str, reply: str = "") -> str:
    url = f"https://www.linkedin.com/feed/update/{post}/?commentUrn={quote(comment, safe='')}"
    return url + (f"&replyUrn={quote(reply, safe='')}" if reply else "")


# ---- reading ------------------------------------------------------------------------------


def test_poll_reads_comments_on_watched_posts_oldest_first_then_only_new_ones(fake, li, now):
    first_post, second_post = li.post(ago(now, 120)), li.post(ago(now, 100))
    made = [
        li.comment(first_post, "c0", ago(now, 50)),
        li.comment(second_post, "c1", ago(now, 40)),
        li.comment(first_post, "c2", ago(now, 30)),
        li.comment(first_post, "c3", ago(now, 20)),
        li.comment(first_post, "c4", ago(now, 10)),
    ]
    connector = connector_for(fake, li, post_urns=f"{first_post}, {second_post}")
    connector.page_size = 2  # four comments on the first post: two pages

    page = connector.poll("")

    assert ids(page.events) == made
    assert page.done is True
    event = page.events[0]
    activity = li.posts[first_post].activity
    assert event.kind == "post"
    assert event.text == "c0"
    assert event.author == {"external_id": PERSON, "handle": PERSON, "display_name": ""}
    assert event.posted_at == ago(now, 50)
    assert event.url == permalink(activity, made[0])
    assert event.in_reply_to_external_id == ""
    assert event.extra == {"post_urn": activity, "thread_id": made[0]}
    assert event.is_own is False
    calls = li.requests("GET", comments_path(first_post))
    assert [(c.arg("start"), c.arg("count")) for c in calls] == [("0", "2"), ("2", "2")]
    for call in calls:
        assert call.headers["linkedin-version"] == li.version
        assert call.headers["x-restli-protocol-version"] == "2.0.0"
        assert call.headers["authorization"] == f"Bearer {li.token}"

    assert connector.poll(page.next_cursor).events == []

    newer = li.comment(second_post, "is the app down?", ago(now, 1))
    assert ids(connector.poll(page.next_cursor).events) == [newer]


def test_the_organisations_latest_posts_are_watched_when_none_are_listed(fake, li, now):
    old = li.post(ago(now, 300))
    recent = li.post(ago(now, 60))
    on_old = li.comment(old, "old post comment", ago(now, 30))
    on_recent = li.comment(recent, "recent post comment", ago(now, 20))
    connector = connector_for(fake, li, recent_posts="1")

    page = connector.poll("")

    assert ids(page.events) == [on_recent]
    assert on_old not in ids(page.events)
    (finder,) = li.requests("GET", POSTS)
    assert finder.arg("q") == "author"
    assert finder.arg("author") == ORG
    assert finder.arg("count") == "1"
    assert finder.arg("sortBy") == "LAST_MODIFIED"
    assert finder.headers["x-restli-method"] == "FINDER"


def test_a_comment_in_the_same_millisecond_as_the_cursor_is_not_lost_or_repeated(fake, li, now):
    post = li.post(ago(now, 60))
    first = li.comment(post, "first", ago(now, 5))
    connector = connector_for(fake, li, post_urns=post)
    page = connector.poll("")

    second = li.comment(post, "second, same millisecond", ago(now, 5))
    page2 = connector.poll(page.next_cursor)

    assert ids(page.events) == [first]
    assert ids(page2.events) == [second]
    assert connector.poll(page2.next_cursor).events == []


def test_the_organisations_own_comments_are_marked_as_own(fake, li, now):
    post = li.post(ago(now, 60))
    theirs = li.comment(post, "my transfer is stuck", ago(now, 10))
    ours = li.comment(theirs, "Sorry! Please DM us.", ago(now, 5), actor=ORG)
    connector = connector_for(fake, li, post_urns=post)

    events = {e.external_id: e for e in connector.poll("").events}

    assert events[ours].is_own is True
    assert events[theirs].is_own is False


def test_replies_to_comments_are_read_and_point_to_their_comment(fake, li, now):
    post = li.post(ago(now, 60))
    top = li.comment(post, "loan question", ago(now, 30))
    reply = li.comment(top, "me too", ago(now, 20), actor="urn:li:person:other")
    connector = connector_for(fake, li, post_urns=post)

    page = connector.poll("")

    events = {e.external_id: e for e in page.events}
    activity = li.posts[post].activity
    assert events[reply].in_reply_to_external_id == top
    assert events[reply].extra == {"post_urn": activity, "thread_id": top}
    assert events[reply].url == permalink(activity, top, reply)
    assert events[reply].author["external_id"] == "urn:li:person:other"

    # A follow-up under an old comment is found; an unchanged thread is not read again.
    follow_up = li.comment(top, "any news?", ago(now, 1))
    page2 = connector.poll(page.next_cursor)
    assert ids(page2.events) == [follow_up]
    reads = len(li.requests("GET", comments_path(top)))
    assert connector.poll(page2.next_cursor).events == []
    assert len(li.requests("GET", comments_path(top))) == reads


def test_an_edited_comment_comes_again_with_its_new_text(fake, li, now):
    post = li.post(ago(now, 60))
    comment = li.comment(post, "what is the rate?", ago(now, 30))
    connector = connector_for(fake, li, post_urns=post)
    page = connector.poll("")

    li.edit(comment, "what is the mortgage rate?", ago(now, 1))
    page2 = connector.poll(page.next_cursor)

    assert [(e.external_id, e.text) for e in page2.events] == [
        (comment, "what is the mortgage rate?")
    ]
    assert page2.events[0].posted_at == ago(now, 30)
    assert connector.poll(page2.next_cursor).events == []


def test_a_deleted_watched_post_does_not_stop_the_others(fake, li, now):
    gone, kept = li.post(ago(now, 60)), li.post(ago(now, 50))
    comment = li.comment(kept, "still here", ago(now, 5))
    li.delete_post(gone)
    connector = connector_for(fake, li, post_urns=f"{gone},{kept}")

    assert ids(connector.poll("").events) == [comment]


def test_poll_rate_limited_waits_as_linkedin_says(fake, li, now):
    post = li.post(ago(now, 60))
    li.fail_next(
        "GET",
        comments_path(post),
        Reply(
            429,
            {"status": 429, "serviceErrorCode": 101, "message": "Resource level throttle"},
            headers={"Retry-After": "120"},
        ),
        li_error(429, "APPLICATION DAY limit reached", "TOO_MANY_REQUESTS", 101),
    )
    connector = connector_for(fake, li, post_urns=post)

    with pytest.raises(TransientError) as with_header:
        connector.poll("")
    with pytest.raises(TransientError) as without_header:
        connector.poll("")

    assert with_header.value.retry_after == 120
    assert without_header.value.retry_after == pytest.approx(seconds_until_utc_midnight(), abs=5)
    assert "APPLICATION DAY limit reached" in without_header.value.reason


def test_poll_timeout_is_transient_and_quick(fake, li, now):
    post = li.post(ago(now, 60))
    li.fail_next("GET", comments_path(post), Reply(200, {"elements": []}, delay=3))
    connector = connector_for(fake, li, post_urns=post, timeout=0.3)

    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        connector.poll("")

    assert time.monotonic() - started < 2
    assert caught.value.ambiguous is False


def test_without_community_management_access_polling_says_why(fake, li, now):
    post = li.post(ago(now, 60))
    li.fail_next(
        "GET",
        comments_path(post),
        li_error(403, "Not enough permissions to access: socialActions.GET.20241101"),
    )
    connector = connector_for(fake, li, post_urns=post)

    with pytest.raises(PermanentError) as caught:
        connector.poll("")

    assert "Not enough permissions to access" in caught.value.reason
    assert "Community Management API" in caught.value.reason


def test_a_retired_api_version_is_permanent_and_names_the_setting(fake, li, now):
    post = li.post(ago(now, 60))
    connector = connector_for(fake, li, post_urns=post, api_version="202301")

    with pytest.raises(PermanentError) as caught:
        connector.poll("")

    assert "Requested version 202301 is not active" in caught.value.reason
    assert "api_version" in caught.value.reason


def test_an_expired_token_is_permanent_and_asks_to_reconnect(fake, li, now):
    post = li.post(ago(now, 60))
    channel = make_channel(fake, li, post_urns=post)
    channel.set_secrets({"access_token": "expired"})
    channel.save()

    with pytest.raises(PermanentError) as caught:
        LinkedInConnector(channel).poll("")

    assert "Invalid access token" in caught.value.reason
    assert "reconnect" in caught.value.reason


# ---- publishing ---------------------------------------------------------------------------


def target(li, comment: str, thread: str | None = None) -> ReplyTarget:
    return ReplyTarget(
        external_id=comment,
        extra={"post_urn": li.comments[comment].activity, "thread_id": thread or comment},
    )


def test_publish_replies_under_the_comment_as_the_organisation(fake, li, now):
    post = li.post(ago(now, 60))
    comment = li.comment(post, "how do I reset my PIN?", ago(now, 5))
    connector = connector_for(fake, li)

    result = connector.publish(
        text="Hi! You can reset it in the app.", target=target(li, comment), idempotency_key=KEY
    )

    (sent,) = li.requests("POST", comments_path(comment))
    activity = li.posts[post].activity
    assert sent.json() == {
        "actor": ORG,
        "object": activity,
        "message": {"text": "Hi! You can reset it in the app."},
        "parentComment": comment,
    }
    assert sent.headers["authorization"] == f"Bearer {li.token}"
    assert sent.headers["linkedin-version"] == li.version
    assert sent.headers["x-restli-protocol-version"] == "2.0.0"
    assert sent.headers["content-type"] == "application/json"
    made = li.comments[comment].replies[-1]
    assert made.actor == ORG
    assert result.external_id == made.urn
    assert result.url == permalink(activity, comment, made.urn)


def test_publish_to_a_reply_goes_under_its_top_level_comment(fake, li, now):
    post = li.post(ago(now, 60))
    top = li.comment(post, "question", ago(now, 5))
    reply = li.comment(top, "follow-up", ago(now, 4))
    connector = connector_for(fake, li)

    connector.publish(text="Answer", target=target(li, reply, thread=top), idempotency_key=KEY)

    (sent,) = li.requests("POST", comments_path(top))
    assert sent.json()["parentComment"] == top
    assert [r.text for r in li.comments[top].replies] == ["follow-up", "Answer"]


def test_publish_without_context_works_from_the_comment_urn(fake, li, now):
    post = li.post(ago(now, 60))
    comment = li.comment(post, "question", ago(now, 5))
    connector = connector_for(fake, li)

    result = connector.publish(
        text="Answer", target=ReplyTarget(external_id=comment), idempotency_key=KEY
    )

    assert result.external_id == li.comments[comment].replies[-1].urn


def test_publish_server_error_is_ambiguous_and_find_own_reply_then_finds_it(fake, li, now):
    post = li.post(ago(now, 60))
    comment = li.comment(post, "hello", ago(now, 5))
    li.fail_next("POST", comments_path(comment), li_error(500, "Internal Server Error"))
    connector = connector_for(fake, li)

    with pytest.raises(TransientError) as caught:
        connector.publish(text="We're on it.", target=target(li, comment), idempotency_key=KEY)

    assert caught.value.ambiguous is True
    found = connector.find_own_reply(
        text="We're on it.", target=target(li, comment), idempotency_key=KEY, since=ago(now, 1)
    )
    assert found is not None
    assert found.external_id == li.comments[comment].replies[-1].urn


def test_publish_timeout_is_ambiguous_and_quick(fake, li, now):
    post = li.post(ago(now, 60))
    comment = li.comment(post, "hello", ago(now, 5))
    li.fail_next("POST", comments_path(comment), Reply(201, {}, delay=3))
    connector = connector_for(fake, li, timeout=0.3)

    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        connector.publish(text="Hi", target=target(li, comment), idempotency_key=KEY)

    assert time.monotonic() - started < 2
    assert caught.value.ambiguous is True


def test_publish_rate_limited_is_transient_and_posts_nothing(fake, li, now):
    post = li.post(ago(now, 60))
    comment = li.comment(post, "hello", ago(now, 5))
    li.fail_next(
        "POST",
        comments_path(comment),
        Reply(429, {"status": 429, "message": "Too Many Requests"}, headers={"Retry-After": "60"}),
    )
    connector = connector_for(fake, li)

    with pytest.raises(TransientError) as caught:
        connector.publish(text="Hi", target=target(li, comment), idempotency_key=KEY)

    assert caught.value.retry_after == 60
    assert caught.value.ambiguous is False
    assert li.comments[comment].replies == []


def test_publish_to_a_deleted_comment_is_permanent_with_linkedins_message(fake, li, now):
    post = li.post(ago(now, 60))
    comment = li.comment(post, "hello", ago(now, 5))
    li.fail_next(
        "POST",
        comments_path(comment),
        li_error(404, f"Comment {comment} does not exist", "NOT_FOUND"),
    )
    connector = connector_for(fake, li)

    with pytest.raises(PermanentError) as caught:
        connector.publish(text="Hi", target=target(li, comment), idempotency_key=KEY)

    assert f"Comment {comment} does not exist" in caught.value.reason


def test_publish_without_write_permission_is_permanent(fake, li, now):
    post = li.post(ago(now, 60))
    comment = li.comment(post, "hello", ago(now, 5))
    li.fail_next(
        "POST",
        comments_path(comment),
        li_error(403, "Member is not an administrator of the organization", "ACCESS_DENIED"),
    )
    connector = connector_for(fake, li)

    with pytest.raises(PermanentError) as caught:
        connector.publish(text="Hi", target=target(li, comment), idempotency_key=KEY)

    assert "not an administrator" in caught.value.reason


def test_a_reply_longer_than_a_linkedin_comment_is_refused_before_sending(fake, li, now):
    post = li.post(ago(now, 60))
    comment = li.comment(post, "hello", ago(now, 5))
    connector = connector_for(fake, li)

    with pytest.raises(PermanentError):
        connector.publish(text="x" * 1251, target=target(li, comment), idempotency_key=KEY)

    assert li.requests("POST", comments_path(comment)) == []


def test_find_own_reply_only_finds_the_organisations_reply_with_the_same_text(fake, li, now):
    post = li.post(ago(now, 60))
    comment = li.comment(post, "hello", ago(now, 9))
    li.comment(comment, "Thanks, we're checking.", ago(now, 8), actor="urn:li:person:x")
    ours = li.comment(comment, "Thanks, we're checking.", ago(now, 7), actor=ORG)
    li.comment(comment, "Something else", ago(now, 6), actor=ORG)
    connector = connector_for(fake, li)
    since = ago(now, 7.5)

    found = connector.find_own_reply(
        text="Thanks, we're checking.", target=target(li, comment), idempotency_key=KEY, since=since
    )
    missing = connector.find_own_reply(
        text="Never said this", target=target(li, comment), idempotency_key=KEY, since=since
    )

    assert found is not None and found.external_id == ours
    assert missing is None


def test_find_own_reply_ignores_our_same_words_from_before_the_first_attempt(fake, li, now):
    post = li.post(ago(now, 300))
    comment = li.comment(post, "thanks!", ago(now, 240))
    li.comment(comment, "You're welcome!", ago(now, 180), actor=ORG)
    connector = connector_for(fake, li)

    found = connector.find_own_reply(
        text="You're welcome!", target=target(li, comment), idempotency_key=KEY, since=ago(now, 1)
    )

    assert found is None
