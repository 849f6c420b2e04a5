"""The publish path with a real Celery worker: Redis as broker, PostgreSQL shared with it.

One worker process serves the whole module. It runs with the production settings
module (tasks not eager), pointed at the test database pytest-django created; this
process stops running tasks eagerly for the module, so `reply_send` really enqueues
the publish on commit and the worker really runs it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from connectors.models import SimulatedPost
from servicedesk import celery_app
from servicedesk.audit import audit_verify
from servicedesk.models import AuditEvent
from tests.conftest import mention_payload
from tickets.models import Reply
from tickets.services import reply_send
from tickets.tasks import reply_publish_task

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

LENDING_QUESTION = "@NorthwindBank can I refinance my mortgage at a lower rate?"
ANSWER = "Hi! Refinancing depends on your loan; book a call at northwind.example/refi."
READY_TIMEOUT = 30
PUBLISH_TIMEOUT = 20


class Worker:
    def __init__(self, process: subprocess.Popen, log_path: Path, nodename: str):
        self.process = process
        self.log_path = log_path
        self.nodename = nodename

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_for(self, predicate, what: str, timeout: float = PUBLISH_TIMEOUT):
        """Poll until predicate() is truthy; fail with the worker's output otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            assert self.process.poll() is None, (
                f"worker exited ({self.process.returncode}) while waiting for {what}:\n"
                + self.log_tail()
            )
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{self.log_tail()}")

    def task_results(self, task_id: str) -> list[str]:
        pattern = rf"Task tickets\.reply_publish\[{re.escape(task_id)}\] succeeded in [^:]+: (.*)"
        return re.findall(pattern, self.log())


def _database_url() -> str:
    db = connection.settings_dict
    assert connection.vendor == "postgresql"
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{quote(db['NAME'], safe='')}"


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real `celery worker` on the servicedesk queue; terminated after the module."""
    with django_db_blocker.unblock():
        database_url = _database_url()
    nodename = f"sdtest-{uuid.uuid4().hex[:8]}@localhost"
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "servicedesk.settings",
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ["REDIS_URL"],
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PYTHONUNBUFFERED": "1",
    }
    was_eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "servicedesk",
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "-Q",
        settings.CELERY_TASK_DEFAULT_QUEUE,
        "--loglevel=INFO",
        "-n",
        nodename,
        "--without-mingle",
        "--without-gossip",
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    running = Worker(process, log_path, nodename)
    try:
        running.wait_for(
            lambda: celery_app.control.ping(destination=[nodename], timeout=0.5),
            "the worker to answer a ping",
            timeout=READY_TIMEOUT,
        )
        yield running
    finally:
        celery_app.conf.task_always_eager = was_eager
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.returncode not in (0, -15):
            print(f"celery worker exited with {process.returncode}:\n{running.log_tail(200)}")


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def approved_lending_reply(agent, lawyer) -> int:
    """Ingest a lending mention, claim, draft, submit and approve; returns the reply id."""
    as_agent, as_lawyer = token_client(agent), token_client(lawyer)
    ingested = as_agent.post(
        "/api/v1/mentions/", mention_payload(text=LENDING_QUESTION), format="json"
    )
    assert ingested.status_code == 201, ingested.content
    assert ingested.json()["ticket"]["regulated"] is True
    ticket_id = ingested.json()["ticket_id"]
    assert as_agent.post(f"/api/v1/tickets/{ticket_id}/claim/").status_code == 200
    draft = as_agent.post(f"/api/v1/tickets/{ticket_id}/replies/", {"body": ANSWER}, format="json")
    assert draft.status_code == 201, draft.content
    reply_id = draft.json()["id"]
    assert as_agent.post(f"/api/v1/replies/{reply_id}/submit/").status_code == 200
    approved = as_lawyer.post(f"/api/v1/replies/{reply_id}/approve/", {}, format="json")
    assert approved.status_code == 200, approved.content
    return reply_id


def published(reply_id: int) -> Reply | None:
    reply = Reply.objects.select_related("ticket").get(pk=reply_id)
    if reply.state == "sent" and reply.ticket.state == "replied":
        return reply
    assert reply.state == "sending", f"unexpected reply state {reply.state}: {reply.failure_reason}"
    return None


def test_worker_publishes_an_approved_lending_reply(worker, channel, agent, lawyer):
    reply_id = approved_lending_reply(agent, lawyer)

    sent = token_client(agent).post(f"/api/v1/replies/{reply_id}/send/")

    assert sent.status_code == 202, sent.content
    reply = worker.wait_for(lambda: published(reply_id), f"reply {reply_id} to be published")
    post = SimulatedPost.objects.get()
    assert post.text == ANSWER
    assert post.external_id == reply.external_id
    assert AuditEvent.objects.filter(action="reply.published", object_id=reply_id).count() == 1
    assert audit_verify().ok
    worker.wait_for(
        lambda: re.search(r"Task tickets\.reply_publish\[[^\]]+\] succeeded", worker.log()),
        "the worker to log the task",
    )


def test_duplicate_task_delivery_publishes_once(worker, channel, agent, lawyer, monkeypatch):
    reply_id = approved_lending_reply(agent, lawyer)
    # Send without the on-commit enqueue, then deliver the publish task twice ourselves.
    monkeypatch.setattr("tickets.services.replies._enqueue_publish", lambda reply_id: None)
    reply_send(reply_id=reply_id, actor=agent)
    assert Reply.objects.get(pk=reply_id).state == "sending"

    first = reply_publish_task.delay(reply_id=reply_id)
    second = reply_publish_task.delay(reply_id=reply_id)

    for task in (first, second):
        results = worker.wait_for(
            lambda task=task: worker.task_results(task.id), f"task {task.id} to finish"
        )
        assert results == ["'sent'"], results
    assert published(reply_id) is not None
    assert SimulatedPost.objects.count() == 1
    assert AuditEvent.objects.filter(action="reply.published").count() == 1
    assert audit_verify().ok
