"""Poison deliveries and poison tasks: tried a bounded number of times, then set aside as
one dead letter with an alert — while the rest of the stream flows.

The poison delivery is real: an Instagram webhook carrying a mention, whose text the
connector must fetch from the Graph API, and (a fake) Graph answers that one lookup with
its transient error every time. Parsing the delivery fails transiently, so it is retried
— DELIVERY_MAX_ATTEMPTS times in all — then marked failed and dead-lettered. Deliveries
around it (plain comments) keep becoming tickets. The retry wait (a minute) is skipped by
setting the delivery's retry time to now, as if that minute had passed.

The poison task is real too: polling a Mastodon account whose token was revoked (the
instance answers 401, a permanent error the task does not retry); and, with a worker,
the chat-webhook delivery of an escalation on its last retry while the chat server
answers 503.

Each scenario runs in-process (eager tasks: SQLite or PostgreSQL) and, on PostgreSQL +
Redis, with a real Celery worker doing the work.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from connectors.base import PermanentError
from connectors.models import ChannelAccount, RawDelivery
from connectors.services import DELIVERY_MAX_ATTEMPTS
from connectors.tasks import channel_poll_task, delivery_sweep_task
from servicedesk.models import DeadLetter
from tests.connectors._mastodon_fake import FakeMastodon
from tests.connectors.fakes import FakePlatform, Recorded, Reply
from tests.connectors.test_meta import (
    GRAPH,
    IG_USER_ID,
    graph_error,
    ig_comment,
    ig_delivery,
    instagram_channel,
    meta_signature,
    wire,
)
from tests.factories import ChannelFactory
from tests.workers import celery_worker_with, worker_idle
from tickets.models import Escalation, Mention, Notification
from tickets.services import mention_ingest
from tickets.tasks import escalation_deliver_task

POISON_MENTION = "17895550000000666"
HELD_COMMENT = "17865799348089500"  # a comment in the same delivery as the poison mention
# Personal data in a post: it must never reach a log line or a notification.
PII_TEXT = "@northwindbank card 4111 1111 1111 1111 charged twice, call me on 0171 555 0199"
COMMENT_BASE = 17865799348089100


class FakeGraph:
    """Graph's mentioned_comment lookup: the poison mention's lookup fails with Graph's
    transient error (code 2) until `heal()`; any other comment is answered."""

    def __init__(self, platform: FakePlatform):
        self.platform = platform
        self.broken = True
        platform.route("GET", f"{GRAPH}/{IG_USER_ID}", self._lookup)

    def _lookup(self, request: Recorded) -> Reply:
        fields = request.arg("fields") or ""
        comment_id = re.search(r"comment_id\((\d+)\)", fields).group(1)
        if comment_id == POISON_MENTION and self.broken:
            return Reply(500, graph_error(2, "Service temporarily unavailable", is_transient=True))
        return Reply(
            200,
            {
                "mentioned_comment": {
                    "timestamp": timezone.now().strftime("%Y-%m-%dT%H:%M:%S+0000"),
                    "text": "@northwindbank is the branch on Main St open today?",
                    "username": "kim.rivers",
                    "id": comment_id,
                },
                "id": IG_USER_ID,
            },
        )

    def heal(self) -> None:
        self.broken = False

    def poison_lookups(self) -> int:
        return sum(
            POISON_MENTION in (r.arg("fields") or "")
            for r in self.platform.requests_to("GET", f"{GRAPH}/{IG_USER_ID}")
        )


def _comment(n: int) -> dict:
    return ig_comment(id=str(COMMENT_BASE + n), text=f"@northwindbank question number {n}")


def _poison_body() -> bytes:
    mention = {"field": "mentions", "value": {"media_id": "179", "comment_id": POISON_MENTION}}
    return wire(ig_delivery(ig_comment(id=HELD_COMMENT, text=PII_TEXT), mention))


def _post(body: bytes) -> int:
    response = Client().post(
        "/connectors/meta/webhook/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=meta_signature(body),
    )
    assert response.status_code == 200, response.content
    (delivery_id,) = response.json()["delivery_ids"]
    return delivery_id


Wait = Callable[[Callable[[], object], str], object]


def _eager_wait(predicate: Callable[[], object], what: str) -> object:
    value = predicate()  # eager: the drain ran inside the webhook's request
    assert value, what
    return value


def _state(delivery_id: int) -> tuple[str, int, str]:
    delivery = RawDelivery.objects.get(pk=delivery_id)
    return delivery.status, delivery.attempts, delivery.error


def _stream_until_dead(
    graph: FakeGraph, wait: Wait, idle: Callable[[], bool] = lambda: True
) -> tuple[int, list[int]]:
    """A stream of comment deliveries with the poison delivery among them, its retry
    time coming each round, until its attempts are spent and a few deliveries more.
    Returns (the poison delivery's id, the others' ids). `idle`: no task is running (an
    attempt is counted when claimed, before it fails)."""
    others = [_post(wire(ig_delivery(_comment(0))))]
    wait(lambda: _state(others[0])[0] == "processed", "the first comment processed")
    poison = _post(_poison_body())
    for attempt in range(1, DELIVERY_MAX_ATTEMPTS):
        wait(
            lambda attempt=attempt: graph.poison_lookups() == attempt and idle(),
            f"attempt {attempt} of the poison delivery to fail",
        )
        status, attempts, error = _state(poison)
        assert (status, attempts) == ("pending", attempt)
        assert error.startswith("will retry: Instagram error 2")
        # A minute later its retry time comes, as more deliveries arrive.
        RawDelivery.objects.filter(pk=poison).update(next_attempt_at=timezone.now())
        others.append(_post(wire(ig_delivery(_comment(attempt)))))
        wait(lambda: _state(others[-1])[0] == "processed", f"comment {attempt} processed")
    wait(lambda: _state(poison)[0] == "failed", "the poison delivery given up on")
    # Given up on: later deliveries flow, and the poison is not tried again.
    RawDelivery.objects.filter(pk=poison).update(next_attempt_at=timezone.now())
    others.append(_post(wire(ig_delivery(_comment(DELIVERY_MAX_ATTEMPTS)))))
    wait(lambda: _state(others[-1])[0] == "processed", "the last comment processed")
    return poison, others


def _metric(name: str, kind: str) -> float:
    text = Client().get("/metrics").content.decode()
    match = re.search(rf'^{name}{{kind="{kind}"}} (\S+)$', text, re.MULTILINE)
    assert match, f"{name}{{kind={kind}}} not in /metrics"
    return float(match.group(1))


def _assert_stream_flowed(others: list[int]) -> None:
    assert [_state(pk)[0] for pk in others] == ["processed"] * len(others)
    expected = sorted(str(COMMENT_BASE + n) for n in range(DELIVERY_MAX_ATTEMPTS + 1))
    assert sorted(Mention.objects.values_list("external_id", flat=True)) == expected
    assert Mention.objects.values("ticket").distinct().count() == len(expected)


def _assert_dead_lettered(poison: int, graph: FakeGraph, supervisor) -> DeadLetter:
    status, attempts, error = _state(poison)
    assert (status, attempts) == ("failed", DELIVERY_MAX_ATTEMPTS)
    assert f"gave up after {DELIVERY_MAX_ATTEMPTS} attempts: Instagram error 2" in error
    assert graph.poison_lookups() == DELIVERY_MAX_ATTEMPTS
    (letter,) = DeadLetter.objects.all()
    assert (letter.kind, letter.delivery_id, letter.attempts, letter.occurrences) == (
        "delivery",
        poison,
        DELIVERY_MAX_ATTEMPTS,
        1,
    )
    assert letter.reference == f"RawDelivery #{poison} (instagram)"
    assert letter.error == error
    assert letter.resolved_at is None
    (note,) = Notification.objects.all()
    assert (note.recipient, note.kind) == (supervisor, "dead_letter")
    assert note.text.startswith(f"Delivery #{poison} (instagram) failed 5 times")
    assert "4111 1111" not in note.text
    assert _metric("servicedesk_dead_letters_total", "delivery") == 1
    assert _metric("servicedesk_dead_letters_open", "delivery") == 1
    assert _metric("servicedesk_dead_letters_total", "task") == 0
    # The poison's other entry waits with it; nothing of it was ingested.
    assert not Mention.objects.filter(external_id__in=[HELD_COMMENT, POISON_MENTION]).exists()
    return letter


# ---- a poison delivery, in-process ---------------------------------------------------


@pytest.mark.django_db
def test_poison_delivery_is_tried_a_bounded_number_of_times_then_dead_lettered_with_an_alert(
    supervisor, agent, caplog
):
    caplog.set_level(logging.INFO)
    with FakePlatform() as platform:
        graph = FakeGraph(platform)
        instagram_channel(platform.url)

        poison, others = _stream_until_dead(graph, _eager_wait)

    _assert_stream_flowed(others)
    _assert_dead_lettered(poison, graph, supervisor)
    assert not Notification.objects.filter(recipient=agent).exists()
    alerts = [r for r in caplog.records if r.name == "servicedesk.dead_letters"]
    assert [(r.levelname, r.delivery_id) for r in alerts] == [("ERROR", poison)]
    assert f"Delivery #{poison} (instagram) failed 5 times" in alerts[0].getMessage()
    # Nothing a customer wrote is logged, at any level.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "4111 1111" not in logged
    assert "question number" not in logged


@pytest.mark.django_db
def test_a_supervisor_is_led_from_the_bell_to_the_open_letters_and_resolves_them(supervisor):
    from django.test import Client

    from tickets.selectors import notifications_for

    supervisor.is_staff = True  # supervisors use the admin (as make demo's do)
    supervisor.save(update_fields=["is_staff"])
    with FakePlatform() as platform:
        graph = FakeGraph(platform)
        instagram_channel(platform.url)
        _stream_until_dead(graph, _eager_wait)

    (item,) = notifications_for(user=supervisor)["items"]
    assert (item["label"], item["url"]) == (
        "Dead letter",
        "/admin/servicedesk/deadletter/?status=open",
    )
    client = Client()
    client.force_login(supervisor)
    page = client.get(item["url"])
    assert page.status_code == 200 and page.context["cl"].result_count == 1
    letter = DeadLetter.objects.get()
    client.post(
        "/admin/servicedesk/deadletter/",
        {"action": "mark_resolved", "_selected_action": [letter.pk]},
    )
    letter.refresh_from_db()
    assert letter.resolved_by == supervisor


@pytest.mark.django_db
def test_dead_lettered_delivery_is_reprocessed_from_the_admin_then_marked_resolved(
    supervisor, admin_client, admin_user
):
    with FakePlatform() as platform:
        graph = FakeGraph(platform)
        instagram_channel(platform.url)
        poison, _ = _stream_until_dead(graph, _eager_wait)

        # The letter's page links to the delivery, where "reprocess" runs it again.
        page = admin_client.get("/admin/servicedesk/deadletter/?status=open")
        assert page.status_code == 200
        link = f"/admin/connectors/rawdelivery/?id__exact={poison}"
        assert link in page.content.decode()
        listed = admin_client.get(link)
        assert listed.status_code == 200
        assert listed.context["cl"].result_count == 1

        graph.heal()  # the cause is fixed (Graph answers again)
        admin_client.post(
            "/admin/connectors/rawdelivery/", {"action": "reprocess", "_selected_action": [poison]}
        )

    assert _state(poison)[0] == "processed"
    assert Mention.objects.filter(external_id__in=[HELD_COMMENT, POISON_MENTION]).count() == 2
    letter = DeadLetter.objects.get()
    detail = admin_client.get(f"/admin/servicedesk/deadletter/{letter.pk}/change/")
    assert detail.status_code == 200
    assert "Instagram error 2" in detail.content.decode()
    response = admin_client.post(
        "/admin/servicedesk/deadletter/",
        {"action": "mark_resolved", "_selected_action": [letter.pk]},
    )
    assert response.status_code == 302
    letter.refresh_from_db()
    assert letter.resolved_by == admin_user
    assert letter.resolved_at is not None
    assert _metric("servicedesk_dead_letters_open", "delivery") == 0
    assert _metric("servicedesk_dead_letters_total", "delivery") == 1  # a counter: kept
    assert (
        admin_client.get("/admin/servicedesk/deadletter/?status=open").context["cl"].result_count
        == 0
    )


@pytest.mark.django_db
def test_delivery_whose_every_claimed_attempt_died_is_dead_lettered_by_the_sweep(supervisor):
    """A delivery that kills its worker each time (tests/connectors/test_kill.py kills
    one for real) is left claimed: its five attempts spent, the last lease run out."""
    delivery = RawDelivery.objects.create(
        platform="instagram",
        channel=instagram_channel(),
        kind="webhook",
        received_at=timezone.now() - timedelta(minutes=10),
        body=_poison_body(),
        attempts=DELIVERY_MAX_ATTEMPTS,
        next_attempt_at=timezone.now() - timedelta(seconds=1),
    )

    delivery_sweep_task.delay()  # beat, every minute

    delivery.refresh_from_db()
    assert delivery.status == "failed"
    letter = DeadLetter.objects.get()
    assert (letter.kind, letter.delivery_id, letter.attempts) == (
        "delivery",
        delivery.pk,
        DELIVERY_MAX_ATTEMPTS,
    )
    assert letter.error == "Gave up: 5 attempts were claimed and none finished."
    assert Notification.objects.get(kind="dead_letter").recipient == supervisor
    assert _metric("servicedesk_dead_letters_total", "delivery") == 1
    delivery_sweep_task.delay()  # the next sweep finds nothing more to give up
    assert DeadLetter.objects.get().occurrences == 1


# ---- a poison task, in-process ---------------------------------------------------------


def _revoked_mastodon(platform: FakePlatform) -> ChannelAccount:
    fake = FakeMastodon(platform)
    channel = ChannelAccount(
        name="northwind-mastodon",
        platform="mastodon",
        settings={"base_url": fake.url, "account_id": fake.brand["id"]},
    )
    channel.set_secrets({"access_token": "revoked-by-the-instance"})
    channel.save()
    return channel


@pytest.mark.django_db
def test_poison_task_without_retries_is_dead_lettered_once_and_counted_each_time(
    supervisor, caplog
):
    with FakePlatform() as platform:
        channel = _revoked_mastodon(platform)

        # Run as a worker runs a task: its failure handled (signalled), not raised to the
        # caller. (`delay()` in eager mode raises it instead: the caller is told.)
        first = channel_poll_task.apply(kwargs={"channel_id": channel.pk}, throw=False)
        assert isinstance(first.result, PermanentError)
        (letter,) = DeadLetter.objects.all()
        # The next poll fails the same way: the same letter, one more occurrence.
        channel_poll_task.apply(kwargs={"channel_id": channel.pk}, throw=False)

    assert letter.kind == "task"
    assert letter.task_name == "connectors.channel_poll"
    assert letter.reference == f"connectors.channel_poll[{first.id}]"
    assert letter.attempts == 1
    assert letter.error.startswith("PermanentError: Mastodon refused")
    assert "HTTP 401" in letter.error
    letter.refresh_from_db()
    assert (DeadLetter.objects.count(), letter.occurrences) == (1, 2)
    assert Notification.objects.filter(recipient=supervisor, kind="dead_letter").count() == 1
    assert _metric("servicedesk_dead_letters_total", "task") == 2
    assert _metric("servicedesk_dead_letters_open", "task") == 1
    alerts = [r for r in caplog.records if r.name == "servicedesk.dead_letters"]
    assert [r.levelname for r in alerts] == ["ERROR", "ERROR"]
    assert "revoked-by-the-instance" not in "\n".join(r.getMessage() for r in caplog.records)


# ---- with a real worker (PostgreSQL + Redis) ---------------------------------------------


def _worker_wait(worker) -> Wait:
    def wait(predicate, what):
        return worker.wait_for(predicate, what, timeout=60)

    return wait


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_poison_delivery_with_a_real_worker_is_dead_lettered_while_the_stream_flows(
    tmp_path, database, broker, supervisor
):
    with FakePlatform() as platform:
        graph = FakeGraph(platform)
        instagram_channel(platform.url, timeout="5")
        with celery_worker_with(database, tmp_path / "worker.log") as worker:
            poison, others = _stream_until_dead(
                graph, _worker_wait(worker), lambda: worker_idle(worker)
            )

    _assert_stream_flowed(others)
    _assert_dead_lettered(poison, graph, supervisor)
    assert f"dead letter: Delivery #{poison} (instagram) failed 5 times" in worker.log()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_poison_tasks_with_a_real_worker_are_dead_lettered_when_no_retry_is_left(
    tmp_path, database, broker, supervisor
):
    with FakePlatform() as platform:
        channel = _revoked_mastodon(platform)
        chat = FakePlatform().start()
        chat.route("POST", "/hook", Reply(503, {"ok": False, "error": "maintenance"}))
        ticket = mention_ingest(
            channel=ChannelFactory(),
            external_id="breached-1",
            author={"external_id": "c-1", "handle": "c1", "display_name": "C"},
            text="@NorthwindBank nobody has answered me for hours",
            posted_at=timezone.now() - timedelta(hours=3),
        ).ticket
        escalation = Escalation.objects.create(
            ticket=ticket,
            kind="window_breach",
            clock_started_at=ticket.posted_at,
            due_at=ticket.deadline,
            message=f"Ticket #{ticket.pk} has breached its window.",
        )
        env = {"SERVICEDESK_CHAT_WEBHOOK_URL": f"{chat.url}/hook"}
        try:
            with celery_worker_with(database, tmp_path / "worker.log", env=env) as worker:
                # A task that does not retry its error: dead at the first failure.
                poll = channel_poll_task.delay(channel_id=channel.pk)
                poll_letter = worker.wait_for(
                    lambda: DeadLetter.objects.filter(task_id=poll.id).first(),
                    "the failed poll's dead letter",
                )
                # A task that retries (5 times): the message as it comes for its last try.
                deliver = escalation_deliver_task.apply_async(
                    kwargs={"escalation_id": escalation.pk}, retries=5
                )
                chat_letter = worker.wait_for(
                    lambda: DeadLetter.objects.filter(task_id=deliver.id).first(),
                    "the chat delivery's dead letter",
                )
        finally:
            chat.stop()

    assert (poll_letter.task_name, poll_letter.attempts) == ("connectors.channel_poll", 1)
    assert "HTTP 401" in poll_letter.error
    assert (chat_letter.task_name, chat_letter.attempts) == ("tickets.escalation_deliver", 6)
    assert chat_letter.error.startswith("MaxRetriesExceededError")
    assert "caused by ChatDeliveryError: chat webhook answered 503" in chat_letter.error
    assert len(chat.requests_to("POST", "/hook")) == 1  # tried, then given up on
    assert Notification.objects.filter(recipient=supervisor, kind="dead_letter").count() == 2
    assert _metric("servicedesk_dead_letters_total", "task") == 2
    assert re.search(r"dead letter: Task connectors\.channel_poll failed for good", worker.log())
