"""Processes really killed (SIGKILL) in the middle of their work, then recovered.

- A Celery worker killed while it publishes a reply to (fake) X — before X got the POST,
  while X holds it, and after X answered but before the worker recorded the answer —
  neither posts twice nor loses the reply: the beat sweep hands the
  message to a new worker, which looks for the reply on X before posting again.
- A poller killed while it waits for page N of a (fake) Mastodon's notifications has
  stored pages 1..N-1 and moved the cursor past them, and nothing else; the next poll
  resumes from there, and every mention becomes exactly one, in order.

Each kill is aimed at the process holding the connection to the fake platform (checked
in /proc), so the test proves the interruption happened inside the call.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.db import OperationalError, transaction
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from connectors.models import ChannelAccount, OutboundMessage, RawDelivery
from connectors.platforms.mastodon import MastodonConnector
from connectors.tasks import delivery_sweep_task
from servicedesk.audit import audit_verify
from servicedesk.models import AuditEvent
from tests.conftest import mention_payload
from tests.connectors._mastodon_fake import TOKEN, FakeMastodon
from tests.connectors.fakes import FakePlatform, Recorded, Reply, _handler_for
from tests.connectors.test_meta import (
    GRAPH,
    IG_USER_ID,
    ig_comment,
    ig_delivery,
    instagram_channel,
    meta_signature,
    wire,
)
from tests.connectors.test_x import BRAND_ID, CUSTOMER_ID, CUSTOMER_TWEET, make_channel
from tests.workers import (
    celery_worker,
    database_url,
    forget_unacked,
    sockets_to,
    spawn,
    subprocess_env,
)
from tickets.models import Mention
from tickets.models import Reply as TicketReply
from tickets.tasks import outbox_sweep_task

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ESTABLISHED, SYN_SENT = "01", "02"
QUESTION = "@NorthwindBank my card was charged twice and nobody answers"
ANSWER = "Sorry about that! We have refunded the second charge & will DM you the details."
FIRST_POST_ID = 1861234567899000001
# How long X "hangs" on the first POST: far longer than the test needs to kill the worker.
HANG_SECONDS = 15


class FakeX:
    """X's two publishing endpoints, stateful: every POST /2/tweets creates a post (even
    one whose answer never reaches the client), and the brand's timeline lists them."""

    def __init__(
        self,
        platform: FakePlatform,
        *,
        hang_first_post: bool = False,
        hang_seconds: float = HANG_SECONDS,
    ):
        self.platform = platform
        self.posts: list[dict] = []
        self.hang_first_post = hang_first_post
        self.hang_seconds = hang_seconds
        self._lock = threading.Lock()
        platform.route("POST", "/2/tweets", self._post)
        platform.route("GET", f"/2/users/{BRAND_ID}/tweets", self._timeline)

    def _post(self, request: Recorded) -> Reply:
        body = request.json()
        with self._lock:
            post_id = str(FIRST_POST_ID + len(self.posts))
            self.posts.append(
                {
                    "id": post_id,
                    # X gives reply text back with the reply @mention and & escaped.
                    "text": "@zoe_m " + body["text"].replace("&", "&amp;"),
                    "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "edit_history_tweet_ids": [post_id],
                    "conversation_id": body["reply"]["in_reply_to_tweet_id"],
                    "in_reply_to_user_id": CUSTOMER_ID,
                    "referenced_tweets": [
                        {"type": "replied_to", "id": body["reply"]["in_reply_to_tweet_id"]}
                    ],
                }
            )
            delay = self.hang_seconds if self.hang_first_post and len(self.posts) == 1 else 0
        return Reply(201, {"data": {"id": post_id, "text": body["text"]}}, delay=delay)

    def _timeline(self, request: Recorded) -> Reply:
        with self._lock:
            posts = list(reversed(self.posts))  # newest first
        meta = {"result_count": len(posts)}
        return Reply(200, {"data": posts, "meta": meta} if posts else {"meta": meta})

    def calls(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.platform.requests]


class _NoBacklogServer(ThreadingHTTPServer):
    request_queue_size = 0  # listen(0): one queued connection fills the accept queue


class GatedPlatform(FakePlatform):
    """A fake platform that accepts no connection until `open()`: its accept queue is
    full, so the kernel leaves a client's SYN unanswered and the client hangs in connect
    — inside the publish call, before the platform has received a single byte."""

    def start(self) -> GatedPlatform:
        self._server = _NoBacklogServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._filler = socket.create_connection(self._server.server_address[:2])
        return self

    def open(self) -> None:
        if self._thread is None:
            self._filler.close()
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self.open()  # shutdown() waits for a serve_forever that must have started
        super().stop()


def port_of(platform: FakePlatform) -> int:
    return int(platform.url.rsplit(":", 1)[1])


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def send_reply_to_x(platform: FakePlatform, agent) -> int:
    """An X mention, claimed, answered and sent by the agent; returns the reply id. The
    send enqueues the publish on commit, to the worker through Redis."""
    make_channel(platform.url, timeout="30")
    client = token_client(agent)
    payload = mention_payload(
        channel="northwind-x",
        external_id=CUSTOMER_TWEET,
        author={"external_id": CUSTOMER_ID, "handle": "zoe_m", "display_name": "Zoë Müller"},
        text=QUESTION,
        url=f"https://x.com/zoe_m/status/{CUSTOMER_TWEET}",
    )
    ingested = client.post("/api/v1/mentions/", payload, format="json")
    assert ingested.status_code == 201, ingested.content
    ticket_id = ingested.json()["ticket_id"]
    assert client.post(f"/api/v1/tickets/{ticket_id}/claim/").status_code == 200
    draft = client.post(f"/api/v1/tickets/{ticket_id}/replies/", {"body": ANSWER}, format="json")
    assert draft.status_code == 201, draft.content
    reply_id = draft.json()["id"]
    sent = client.post(f"/api/v1/replies/{reply_id}/send/")
    assert sent.status_code == 202, sent.content
    return reply_id


def assert_left_in_flight(reply_id: int) -> OutboundMessage:
    """What the killed worker leaves: the reply still sending, its message in flight
    (committed before the call), one attempt counted — a trace, nothing lost."""
    reply = TicketReply.objects.get(pk=reply_id)
    assert (reply.state, reply.external_id) == ("sending", "")
    message = OutboundMessage.objects.get(reply_id=reply_id)
    assert (message.state, message.attempts, message.external_id) == ("in_flight", 1, "")
    assert AuditEvent.objects.filter(action="reply.published").count() == 0
    return message


def wait_until_unlocked(message: OutboundMessage) -> None:
    """The dead worker's database session ends with it, and its row lock with that."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with transaction.atomic():
                OutboundMessage.objects.select_for_update(nowait=True).get(pk=message.pk)
            return
        except OperationalError:
            assert time.monotonic() < deadline, "the killed worker's row lock stays held"
            time.sleep(0.05)


def recover(tmp_path, database: str, reply_id: int) -> None:
    """Two minutes later the beat sweep finds the message still in flight, its worker
    gone, and hands it to a new worker; returns once that worker has published it."""
    OutboundMessage.objects.filter(reply_id=reply_id).update(
        in_flight_since=timezone.now() - timedelta(minutes=2, seconds=1)
    )
    with celery_worker(database, tmp_path / "worker-2.log") as worker:
        sweep = outbox_sweep_task.delay()
        worker.wait_for(
            lambda: f"Task tickets.outbox_sweep[{sweep.id}] succeeded" in worker.log(),
            "the sweep",
        )
        worker.wait_for(
            lambda: TicketReply.objects.get(pk=reply_id).state != "sending",
            "the new worker to publish the reply",
        )
        worker.wait_for(
            lambda: re.search(r"Task tickets\.reply_publish\[[^\]]+\] succeeded", worker.log()),
            "the publish task to finish",
        )


@pytest.fixture
def database(db):
    return database_url()


@pytest.mark.worker
def test_worker_killed_after_x_got_the_post_neither_loses_nor_doubles_the_reply(
    tmp_path, database, agent
):
    with FakePlatform() as platform:
        x = FakeX(platform, hang_first_post=True)
        killed_tasks: list[str] = []
        try:
            with celery_worker(database, tmp_path / "worker-1.log") as worker:
                reply_id = send_reply_to_x(platform, agent)
                # X has the POST (and has made the post) but has not answered yet...
                worker.wait_for(lambda: x.calls() == ["POST /2/tweets"], "the worker to POST to X")
                # ...and the worker's own process is the one waiting for the answer.
                assert sockets_to(worker.pid, port_of(platform)) == [ESTABLISHED]
                worker.kill()
                killed_tasks = worker.received_task_ids()

            message = assert_left_in_flight(reply_id)
            assert len(x.posts) == 1
            wait_until_unlocked(message)

            recover(tmp_path, database, reply_id)
        finally:
            forget_unacked(killed_tasks)

    reply = TicketReply.objects.select_related("ticket").get(pk=reply_id)
    assert reply.state == "sent", reply.failure_reason
    assert reply.external_id == str(FIRST_POST_ID)  # the post X made for the killed call
    assert reply.ticket.state == "replied"
    # The new worker looked on X first, found the post, and did not post again.
    assert x.calls() == ["POST /2/tweets", f"GET /2/users/{BRAND_ID}/tweets"]
    assert len(x.posts) == 1
    message = OutboundMessage.objects.get(reply_id=reply_id)
    assert (message.state, message.attempts) == ("sent", 2)
    assert message.external_id == str(FIRST_POST_ID)
    published = AuditEvent.objects.filter(action="reply.published")
    assert [event.object_id for event in published] == [reply_id]
    assert audit_verify().ok


def _hold_ticket_lock(ticket_id: int, locked: threading.Event, release: threading.Event):
    """Another session holds the ticket's row lock (as a colleague's edit would), so a
    worker that has X's answer waits to record it."""
    from django.db import connection

    from tickets.models import Ticket

    try:
        with transaction.atomic():
            Ticket.objects.select_for_update().get(pk=ticket_id)
            locked.set()
            release.wait(60)
    finally:
        connection.close()


def _sessions_waiting_for_a_lock() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.worker
def test_worker_killed_after_x_answered_but_before_recording_it_posts_once(
    tmp_path, database, agent
):
    with FakePlatform() as platform:
        x = FakeX(platform, hang_first_post=True, hang_seconds=2)
        killed_tasks: list[str] = []
        release = threading.Event()
        try:
            with celery_worker(database, tmp_path / "worker-1.log") as worker:
                reply_id = send_reply_to_x(platform, agent)
                ticket_id = TicketReply.objects.get(pk=reply_id).ticket_id
                worker.wait_for(lambda: x.calls() == ["POST /2/tweets"], "the worker to POST to X")
                locked = threading.Event()
                holder = threading.Thread(
                    target=_hold_ticket_lock, args=(ticket_id, locked, release), daemon=True
                )
                holder.start()
                assert locked.wait(10)
                # X answers; the worker has the post's id and waits to record it.
                worker.wait_for(
                    lambda: (
                        not sockets_to(worker.pid, port_of(platform))
                        and _sessions_waiting_for_a_lock() == 1
                    ),
                    "the worker to read X's answer and wait on the ticket",
                )
                worker.kill()
                killed_tasks = worker.received_task_ids()
            release.set()
            holder.join(10)
            message = assert_left_in_flight(reply_id)
            assert len(x.posts) == 1
            wait_until_unlocked(message)
            recover(tmp_path, database, reply_id)
        finally:
            release.set()
            forget_unacked(killed_tasks)
    reply = TicketReply.objects.get(pk=reply_id)
    assert reply.state == "sent", reply.failure_reason
    assert reply.external_id == str(FIRST_POST_ID)  # the post X answered to the killed worker
    assert x.calls() == ["POST /2/tweets", f"GET /2/users/{BRAND_ID}/tweets"]
    assert len(x.posts) == 1
    assert AuditEvent.objects.filter(action="reply.published").count() == 1
    assert audit_verify().ok


@pytest.mark.worker
def test_worker_killed_before_x_got_the_post_posts_it_once_later(tmp_path, database, agent):
    with GatedPlatform() as platform:
        x = FakeX(platform)
        killed_tasks: list[str] = []
        try:
            with celery_worker(database, tmp_path / "worker-1.log") as worker:
                reply_id = send_reply_to_x(platform, agent)
                # The claim is committed; the worker is stuck connecting to X.
                worker.wait_for(
                    lambda: sockets_to(worker.pid, port_of(platform)) == [SYN_SENT],
                    "the worker to connect to X",
                )
                worker.kill()
                killed_tasks = worker.received_task_ids()

            message = assert_left_in_flight(reply_id)
            wait_until_unlocked(message)
            platform.open()
            assert x.calls() == []  # X never heard of the reply

            recover(tmp_path, database, reply_id)
        finally:
            forget_unacked(killed_tasks)

    reply = TicketReply.objects.get(pk=reply_id)
    assert reply.state == "sent", reply.failure_reason
    assert reply.external_id == str(FIRST_POST_ID)
    # The earlier attempt might have reached X: it looked first, found nothing, posted once.
    assert x.calls() == [f"GET /2/users/{BRAND_ID}/tweets", "POST /2/tweets"]
    assert len(x.posts) == 1
    assert x.platform.requests_to("POST", "/2/tweets")[0].json() == {
        "text": ANSWER,
        "reply": {"in_reply_to_tweet_id": CUSTOMER_TWEET},
    }
    assert AuditEvent.objects.filter(action="reply.published").count() == 1
    assert audit_verify().ok


# ---- processing deliveries --------------------------------------------------------
MENTION_ID = "17894227972186120"


@pytest.mark.worker
def test_worker_killed_mid_batch_loses_no_delivery_and_doubles_no_mention(tmp_path, database):
    """A delivery with two Instagram comments and a mention, whose text the worker must
    fetch from the Graph API: the worker is killed while it waits for that answer, its
    batch claimed and nothing ingested. When the claim's lease ends, the beat sweep hands
    the delivery to a new worker, which ingests each post exactly once."""
    with FakePlatform() as graph:
        answered = threading.Event()

        def mentioned_comment(request: Recorded) -> Reply:
            if len(graph.requests) == 1:
                answered.wait(HANG_SECONDS)  # the first worker never hears back
            return Reply(
                200,
                {
                    "mentioned_comment": {
                        "timestamp": "2026-11-20T15:10:02+0000",
                        "text": "@northwindbank what's the APR on the travel card?",
                        "username": "kim.rivers",
                        "id": MENTION_ID,
                    },
                    "id": IG_USER_ID,
                },
            )

        graph.route("GET", f"{GRAPH}/{IG_USER_ID}", mentioned_comment)
        instagram_channel(graph.url, timeout="30")
        body = wire(
            ig_delivery(
                ig_comment(id="17865799348089001", text="is the branch open on sunday?"),
                ig_comment(id="17865799348089002", text="my card was declined twice"),
                {"field": "mentions", "value": {"media_id": "179", "comment_id": MENTION_ID}},
            )
        )
        killed_tasks: list[str] = []
        try:
            with celery_worker(database, tmp_path / "worker-1.log") as worker:
                response = Client().post(
                    "/connectors/meta/webhook/",
                    data=body,
                    content_type="application/json",
                    HTTP_X_HUB_SIGNATURE_256=meta_signature(body),
                )
                assert response.status_code == 200
                worker.wait_for(lambda: len(graph.requests) == 1, "the worker to ask Graph")
                assert sockets_to(worker.pid, port_of(graph)) == [ESTABLISHED]
                worker.kill()
                killed_tasks = worker.received_task_ids()

            # Claimed (one attempt, a lease) and nothing ingested: a trace, nothing lost.
            delivery = RawDelivery.objects.get()
            assert (delivery.status, delivery.attempts) == ("pending", 1)
            assert delivery.next_attempt_at > timezone.now()
            assert Mention.objects.count() == 0

            # The lease ends; the delivery has waited long enough for the sweep.
            RawDelivery.objects.filter(pk=delivery.pk).update(
                next_attempt_at=timezone.now(), received_at=timezone.now() - timedelta(minutes=2)
            )
            answered.set()
            with celery_worker(database, tmp_path / "worker-2.log") as worker:
                sweep = delivery_sweep_task.delay()
                worker.wait_for(
                    lambda: RawDelivery.objects.get().status != "pending",
                    "the new worker to process the delivery",
                )
                worker.wait_for(
                    lambda: f"Task connectors.delivery_sweep[{sweep.id}] succeeded" in worker.log(),
                    "the sweep to finish",
                )
        finally:
            answered.set()
            forget_unacked(killed_tasks)

    delivery = RawDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.mentions_created) == ("processed", 2, 3)
    assert sorted(Mention.objects.values_list("external_id", flat=True)) == sorted(
        ["17865799348089001", "17865799348089002", MENTION_ID]
    )
    assert Mention.objects.values("ticket").distinct().count() == 3
    assert audit_verify().ok


# ---- polling ----------------------------------------------------------------------
PAGE_SIZE = 3
MENTIONS = 10  # pages of 3, 3, 3, 1
HANG_AT_PAGE = 3

POLLER = """
import sys
import django

django.setup()
from django.core.management import call_command
from connectors.platforms.mastodon import MastodonConnector

MastodonConnector.page_size = int(sys.argv[2])
call_command("poll_channel", sys.argv[1])
"""


@pytest.mark.postgres
def test_poller_killed_mid_page_resumes_from_the_last_stored_page(tmp_path, database, monkeypatch):
    with FakePlatform() as platform:
        fake = FakeMastodon(platform)
        alice = fake.add_account("110000000000000042", "alice@mstdn.example", "Alice Ng")
        seen, _ = fake.mention(alice, "<p>@northwind answered long ago</p>")
        notification_ids, statuses = [], []
        for number in range(MENTIONS):
            notification_id, status = fake.mention(alice, f"<p>@northwind question {number}</p>")
            notification_ids.append(notification_id)
            statuses.append(status["id"])
        # The notifications endpoint hangs on the request for page HANG_AT_PAGE.
        serve = fake._notifications
        release = threading.Event()

        def notifications(request: Recorded) -> Reply:
            if len(platform.requests_to("GET", "/api/v1/notifications")) == HANG_AT_PAGE:
                release.wait(HANG_SECONDS)
            return serve(request)

        platform.route("GET", "/api/v1/notifications", notifications)
        channel = ChannelAccount(
            name="northwind-mastodon",
            platform="mastodon",
            settings={"base_url": fake.url, "account_id": fake.brand["id"]},
            poll_cursor=seen,
        )
        channel.set_secrets({"access_token": TOKEN})
        channel.save()

        poller = spawn(
            [sys.executable, "-c", POLLER, channel.name, str(PAGE_SIZE)],
            subprocess_env(database),
            tmp_path / "poller.log",
        )
        try:
            poller.wait_for(
                lambda: len(platform.requests_to("GET", "/api/v1/notifications")) == HANG_AT_PAGE,
                f"the poller to ask for page {HANG_AT_PAGE}",
            )
            assert sockets_to(poller.pid, port_of(platform)) == [ESTABLISHED]
            poller.kill()
        finally:
            release.set()
            poller.stop()

        # Pages 1..N-1 are stored, the cursor is the newest item of page N-1; nothing more.
        stored = (HANG_AT_PAGE - 1) * PAGE_SIZE
        channel.refresh_from_db()
        assert channel.poll_cursor == notification_ids[stored - 1]
        deliveries = list(RawDelivery.objects.order_by("pk"))
        assert len(deliveries) == HANG_AT_PAGE - 1
        assert [delivery.status for delivery in deliveries] == ["pending"] * (HANG_AT_PAGE - 1)
        assert [
            [item["status"]["id"] for item in reversed(json.loads(bytes(delivery.body)))]
            for delivery in deliveries
        ] == [statuses[n * PAGE_SIZE : (n + 1) * PAGE_SIZE] for n in range(HANG_AT_PAGE - 1)]
        assert Mention.objects.count() == 0  # the poller died before processing

        # The next poll (as `manage.py poll_channel` runs it) resumes from the cursor.
        monkeypatch.setattr(MastodonConnector, "page_size", PAGE_SIZE)
        call_command("poll_channel", channel.name)

        requests = platform.requests_to("GET", "/api/v1/notifications")[HANG_AT_PAGE:]
        assert requests[0].arg("min_id") == notification_ids[stored - 1]

    assert (
        list(
            Mention.objects.filter(channel=channel)
            .order_by("pk")
            .values_list("external_id", flat=True)
        )
        == statuses
    )
    assert [m.text for m in Mention.objects.order_by("posted_at", "pk")] == [
        f"@northwind question {number}" for number in range(MENTIONS)
    ]
    channel.refresh_from_db()
    assert channel.poll_cursor == notification_ids[-1]
    assert set(RawDelivery.objects.values_list("status", flat=True)) == {"processed"}
