"""The webhooks' short path: what it skips, what it keeps, and its one INSERT.

The platforms' webhooks skip the session, CSRF, authentication and 2FA middleware
(connectors/middleware.py) and store their delivery without a health-check query first
(connectors/services/deliveries.py). These tests pin what a platform, an operator and
an attacker can still see of that: the answer's headers, the request metrics, no
session ever, every other route under /connectors/ untouched, and a dead database
connection replaced rather than answered with a 503.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection
from django.test import Client
from django.utils import timezone

from connectors.models import RawDelivery
from connectors.platforms.generic import sign
from connectors.services import channel_add, delivery_store_webhook

URL = "/connectors/generic/webhook/"
SECRET = "s3cret-generic"


@pytest.fixture
def generic(db):
    return channel_add(platform="generic", name="partner-forum", values={"secret": SECRET})


def _body(external_id: str = "g-1") -> bytes:
    return json.dumps(
        {
            "external_id": external_id,
            "author": {"external_id": "u-9", "handle": "forum_user", "display_name": "Zoë"},
            "text": "Is the mortgage rate fixed?",
            "posted_at": (timezone.now() - timedelta(minutes=3)).isoformat(),
        }
    ).encode()


def _post(client: Client, body: bytes, **extra):
    return client.post(
        URL,
        data=body,
        content_type="application/json",
        HTTP_X_SERVICEDESK_SIGNATURE=sign(SECRET, body),
        **extra,
    )


@pytest.mark.django_db
def test_a_delivery_is_answered_with_request_id_and_json_security_headers(generic):
    response = _post(Client(), _body(), HTTP_X_REQUEST_ID="platform-retry-0001")

    assert response.status_code == 200
    assert response["X-Request-ID"] == "platform-retry-0001"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Content-Type"] == "application/json"
    assert response["Content-Length"] == str(len(response.content))
    assert RawDelivery.objects.count() == 1


@pytest.mark.django_db
def test_a_delivery_never_opens_a_session_or_logs_anyone_in(generic):
    agent = User.objects.create_user("alice", password="a-long-passphrase-1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)  # a browser's session cookie, sent along by mistake

    response = _post(client, _body())

    assert response.status_code == 200  # no CSRF token needed: the signature is the proof
    assert "sessionid" not in response.cookies
    assert "csrftoken" not in response.cookies
    assert not hasattr(response.wsgi_request, "user")  # the user was never looked at


@pytest.mark.django_db
def test_webhook_requests_are_counted_in_the_metrics_by_route(generic):
    _post(Client(), _body("g-metrics"))
    forged = Client().post(
        URL,
        data=_body("g-forged"),
        content_type="application/json",
        HTTP_X_SERVICEDESK_SIGNATURE="sha256=" + "0" * 64,
    )

    metrics = Client().get("/metrics").content.decode()

    assert forged.status_code == 403
    route = "connectors/generic/webhook/"
    assert f'servicedesk_http_requests_total{{method="POST",route="{route}",status="200"}}' in (
        metrics
    )
    assert f'servicedesk_http_requests_total{{method="POST",route="{route}",status="403"}}' in (
        metrics
    )


@pytest.mark.django_db
def test_other_paths_under_connectors_take_the_whole_chain(generic):
    missing = Client().post("/connectors/nowhere/", data=b"{}", content_type="application/json")
    wrong_method = Client().put(URL, data=_body(), content_type="application/json")

    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert wrong_method.status_code == 405  # the view's own method check still applies
    assert RawDelivery.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_connection_the_database_dropped_is_replaced_and_the_delivery_stored_once(generic):
    _post(Client(), _body("g-before"))  # the connection is open and in use
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (dead_pid,) = cursor.fetchone()
    # As a database restart would: the server ends our session between two requests.
    from django.db import connections

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [dead_pid])
    finally:
        other.close()

    body = _body("g-after")
    ids = delivery_store_webhook(channels=[generic], body=body, headers={})

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (new_pid,) = cursor.fetchone()
    assert new_pid != dead_pid
    assert len(ids) == 1
    assert [
        bytes(b) for b in RawDelivery.objects.filter(pk__in=ids).values_list("body", flat=True)
    ] == [body]
    assert RawDelivery.objects.count() == 2  # the one before, and this one, once


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_statement_the_database_refuses_is_not_run_twice(generic):
    before = connection.connection
    gone = type(generic)(pk=generic.pk + 1000, platform="generic")  # no such account

    with pytest.raises(DatabaseError):
        delivery_store_webhook(channels=[gone], body=_body("g-orphan"), headers={})

    assert connection.connection is before  # a refused statement is no dead connection
    assert RawDelivery.objects.count() == 0
