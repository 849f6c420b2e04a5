"""The publish path with a real Celery worker: Redis as broker, PostgreSQL shared with it.

One worker process serves the whole module. It runs with the production settings
module (tasks not eager), pointed at the test database pytest-django created; this
process stops running tasks eagerly for the module, so `reply_send` really enqueues
the publish on commit and the worker really runs it.
"""

from __future__ import annotations

import re

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from connectors.models import SimulatedPost
from servicedesk.audit import audit_verify
from servicedesk.models import AuditEvent
from tests.conftest import mention_payload
from tests.workers import celery_worker, database_url
from tickets.models import Reply
from tickets.services import reply_send
from tickets.tasks import reply_publish_task

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

LENDING_QUESTION = "@NorthwindBank can I refinance my mortgage at a lower rate?"
ANSWER = "Hi! Refinancing depends on your loan; book a call at northwind.example/refi."


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real `celery worker` on the servicedesk queue; terminated after the module."""
    with django_db_blocker.unblock():
        database = database_url()
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with celery_worker(database, log_path) as running:
        yield running


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
