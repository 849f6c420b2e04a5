"""The outbox: retries with back-off, permanent failures, and never posting twice.

The platform here is a scripted connector (the process boundary): each publish takes
the next scripted outcome, and the posts it 'made' are its platform state.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from connectors.base import (
    Connector,
    PermanentError,
    PublishResult,
    ReplyTarget,
    TransientError,
)
from connectors.models import OutboundMessage
from connectors.outbox import RetryLater, outbox_deliver, outbox_due
from connectors.registry import CONNECTORS
from servicedesk.models import AuditEvent
from tests.factories import ChannelFactory
from tickets.models import Reply

pytestmark = pytest.mark.django_db


class ScriptedPlatform(Connector):
    platform = "x"
    script: list[str] = []
    posts: list[dict] = []
    calls: list[str] = []

    def publish(self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID):
        type(self).calls.append("publish")
        outcome = type(self).script.pop(0) if type(self).script else "ok"
        if outcome in ("ok", "timeout_after_post"):
            post = {
                "id": f"p{len(self.posts) + 1}",
                "text": text,
                "to": target.external_id,
                "at": timezone.now(),
            }
            type(self).posts.append(post)
            if outcome == "ok":
                return PublishResult(post["id"], f"https://x.example/{post['id']}")
            raise TransientError("read timeout", ambiguous=True)
        if outcome == "429":
            raise TransientError("rate limited", retry_after=120)
        if outcome == "quota":
            raise TransientError("quotaExceeded", retry_after=10 * 3600)
        if outcome == "500":
            raise TransientError("HTTP 500", ambiguous=True)
        raise PermanentError("The post you are replying to was deleted.")

    def find_own_reply(
        self, *, text: str, target: ReplyTarget, idempotency_key: uuid.UUID, since: datetime
    ):
        type(self).calls.append("find")
        for post in self.posts:
            if post["text"] == text and post["to"] == target.external_id and post["at"] >= since:
                return PublishResult(post["id"], f"https://x.example/{post['id']}")
        return None


@pytest.fixture
def platform(monkeypatch):
    monkeypatch.setitem(CONNECTORS, "x", f"{__name__}:ScriptedPlatform")
    ScriptedPlatform.script, ScriptedPlatform.posts, ScriptedPlatform.calls = [], [], []
    ChannelFactory(name="xbank", platform="x")
    return ScriptedPlatform


@pytest.fixture
def sent_reply(api, agent, platform, monkeypatch):
    """A reply accepted for sending whose publish has not run yet (no worker)."""
    from tickets.services import replies

    monkeypatch.setattr(replies, "_enqueue_publish", lambda reply_id: None)
    client = api(agent)
    ticket = client.post(
        "/api/v1/mentions/",
        {
            "channel": "xbank",
            "external_id": "1790000000000000001",
            "author": {"external_id": "42", "handle": "cust"},
            "text": "@NorthwindBank the app is down",
            "posted_at": timezone.now().isoformat(),
        },
        format="json",
    ).json()["ticket_id"]
    client.post(f"/api/v1/tickets/{ticket}/claim/")
    reply = client.post(
        f"/api/v1/tickets/{ticket}/replies/", {"body": "Sorry! We're on it."}, format="json"
    ).json()["id"]
    assert client.post(f"/api/v1/replies/{reply}/send/").status_code == 202
    return Reply.objects.get(pk=reply)


def _make_due(reply: Reply) -> None:
    OutboundMessage.objects.filter(reply=reply).update(next_attempt_at=timezone.now())


def test_outbox_publishes_once_and_records_the_platform_id(sent_reply, platform):
    message = outbox_deliver(reply_id=sent_reply.pk)

    sent_reply.refresh_from_db()
    assert message.state == "sent"
    assert sent_reply.state == "sent"
    assert sent_reply.external_id == "p1"
    assert sent_reply.ticket.state == "replied"
    assert platform.calls == ["publish"]


def test_outbox_transient_error_backs_off_then_succeeds(sent_reply, platform):
    platform.script = ["500"]

    with pytest.raises(RetryLater) as retry:
        outbox_deliver(reply_id=sent_reply.pk)
    early = outbox_deliver(reply_id=sent_reply.pk)  # before the back-off ends: nothing
    _make_due(sent_reply)
    done = outbox_deliver(reply_id=sent_reply.pk)

    assert 2.5 <= retry.value.delay <= 5
    assert early.state == "pending"
    assert done.state == "sent"
    assert len(platform.posts) == 1
    # The 500 may have posted: the retry looked for our reply before posting again.
    assert platform.calls == ["publish", "find", "publish"]


def test_outbox_honours_retry_after(sent_reply, platform):
    platform.script = ["429"]
    before = timezone.now()

    with pytest.raises(RetryLater) as retry:
        outbox_deliver(reply_id=sent_reply.pk)

    message = OutboundMessage.objects.get(reply=sent_reply)
    assert retry.value.delay == 120
    assert message.next_attempt_at >= before + timedelta(seconds=119)
    assert message.last_error == "rate limited"


def test_outbox_daily_quota_waits_until_the_reset_without_giving_up(sent_reply, platform):
    platform.script = ["quota"] * 12

    for _ in range(12):
        with pytest.raises(RetryLater) as retry:
            outbox_deliver(reply_id=sent_reply.pk)
        _make_due(sent_reply)
    message = outbox_deliver(reply_id=sent_reply.pk)

    assert retry.value.delay == 10 * 3600
    assert message.state == "sent"
    assert message.attempts == 1
    assert len(platform.posts) == 1
    # A quota refusal posted nothing, so no own-reply lookup was needed.
    assert platform.calls == ["publish"] * 13


def test_outbox_ambiguous_failure_never_posts_twice(sent_reply, platform):
    platform.script = ["timeout_after_post"]

    with pytest.raises(RetryLater):
        outbox_deliver(reply_id=sent_reply.pk)
    _make_due(sent_reply)
    message = outbox_deliver(reply_id=sent_reply.pk)

    assert message.state == "sent"
    assert len(platform.posts) == 1
    assert platform.calls == ["publish", "find"]
    assert Reply.objects.get(pk=sent_reply.pk).external_id == "p1"


def test_outbox_worker_that_died_after_posting_is_recovered_without_a_second_post(
    sent_reply, platform
):
    # A worker marked the message in flight, posted, and died before recording it.
    began = timezone.now() - timedelta(minutes=5)
    platform.posts.append(
        {"id": "p1", "text": sent_reply.body, "to": "1790000000000000001", "at": began}
    )
    OutboundMessage.objects.filter(reply=sent_reply).update(
        state="in_flight", attempts=1, in_flight_since=began, first_attempt_at=began
    )

    assert outbox_due() == [sent_reply.pk]
    message = outbox_deliver(reply_id=sent_reply.pk)

    assert message.state == "sent"
    assert platform.calls == ["find"]
    assert len(platform.posts) == 1


def test_outbox_identical_earlier_reply_is_not_taken_for_this_one(sent_reply, platform):
    # An hour ago we answered the same post with the same words (an earlier reply).
    platform.posts.append(
        {
            "id": "p0",
            "text": sent_reply.body,
            "to": "1790000000000000001",
            "at": timezone.now() - timedelta(hours=1),
        }
    )
    platform.script = ["500"]  # this reply's first attempt: no answer, nothing posted

    with pytest.raises(RetryLater):
        outbox_deliver(reply_id=sent_reply.pk)
    _make_due(sent_reply)
    message = outbox_deliver(reply_id=sent_reply.pk)

    assert message.state == "sent"
    assert platform.calls == ["publish", "find", "publish"]
    assert [post["id"] for post in platform.posts] == ["p0", "p2"]
    assert Reply.objects.get(pk=sent_reply.pk).external_id == "p2"


def test_outbox_reply_posted_just_after_the_first_attempt_began_is_found(sent_reply, platform):
    platform.script = ["timeout_after_post"]  # posted, but the answer never came back

    with pytest.raises(RetryLater):
        outbox_deliver(reply_id=sent_reply.pk)
    # The platform's clock runs a little behind ours: its post is dated before our attempt.
    message = OutboundMessage.objects.get(reply=sent_reply)
    platform.posts[0]["at"] = message.first_attempt_at - timedelta(seconds=5)
    _make_due(sent_reply)
    outbox_deliver(reply_id=sent_reply.pk)

    assert platform.calls == ["publish", "find"]
    assert len(platform.posts) == 1
    assert Reply.objects.get(pk=sent_reply.pk).external_id == "p1"


def test_outbox_worker_that_died_before_posting_posts_once(sent_reply, platform):
    OutboundMessage.objects.filter(reply=sent_reply).update(
        state="in_flight", attempts=1, in_flight_since=timezone.now() - timedelta(minutes=5)
    )

    message = outbox_deliver(reply_id=sent_reply.pk)

    assert message.state == "sent"
    assert platform.calls == ["find", "publish"]
    assert len(platform.posts) == 1


def test_outbox_permanent_error_fails_the_send_with_the_reason(api, agent, sent_reply, platform):
    platform.script = ["gone"]

    message = outbox_deliver(reply_id=sent_reply.pk)

    assert message.state == "failed"
    reply = api(agent).get(f"/api/v1/replies/{sent_reply.pk}/").json()
    assert reply["state"] == "failed"
    assert reply["failure_reason"] == "The post you are replying to was deleted."
    ticket = api(agent).get(f"/api/v1/tickets/{sent_reply.ticket_id}/").json()
    assert ticket["state"] == "send_failed"
    assert AuditEvent.objects.filter(action="reply.send_failed").count() == 1


def test_outbox_gives_up_after_the_last_attempt(sent_reply, platform):
    platform.script = ["500"] * 8

    for _ in range(7):
        with pytest.raises(RetryLater):
            outbox_deliver(reply_id=sent_reply.pk)
        _make_due(sent_reply)
    message = outbox_deliver(reply_id=sent_reply.pk)

    assert message.state == "failed"
    assert message.last_error.startswith("Gave up after 8 attempts")
    assert Reply.objects.get(pk=sent_reply.pk).state == "failed"


def test_outbox_agent_retries_a_failed_send_through_the_same_message(
    api, agent, sent_reply, platform
):
    platform.script = ["gone"]
    outbox_deliver(reply_id=sent_reply.pk)

    retried = api(agent).post(f"/api/v1/replies/{sent_reply.pk}/send/")
    message = outbox_deliver(reply_id=sent_reply.pk)

    assert retried.status_code == 202
    assert message.state == "sent"
    assert OutboundMessage.objects.filter(reply=sent_reply).count() == 1
    assert Reply.objects.get(pk=sent_reply.pk).ticket.state == "replied"


def test_outbox_refuses_at_publish_time_when_the_ticket_became_regulated(
    api, supervisor, sent_reply, platform
):
    api(supervisor).post(
        f"/api/v1/tickets/{sent_reply.ticket_id}/flag-regulated/",
        {"reason": "customer asked about loan terms"},
        format="json",
    )

    message = outbox_deliver(reply_id=sent_reply.pk)

    assert message.state == "failed"
    assert platform.calls == []
    assert Reply.objects.get(pk=sent_reply.pk).failure_reason.startswith("This ticket is regulated")
