"""Generated requests against every operation of /api/schema/: no 5xx, and every
documented response matches its schema."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.conftest import client_for, mention_payload
from tests.factories import ChannelFactory, UserFactory


@contextmanager
def _keep_test_connection():
    """As Django's test client does: a request must not close the test's database
    connection when it starts or ends (its transaction holds the test's rows)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db):
    with _keep_test_connection():
        return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def token(db):
    ChannelFactory(name="sim")
    user = UserFactory(username="fuzz", roles=["agent", "legal", "supervisor"])
    key = Token.objects.create(user=user).key
    # Real rows, so lists and details answer with data the schema must describe.
    client = client_for(user)
    ticket = client.post(
        "/api/v1/mentions/",
        mention_payload(text="mortgage rate? card 4539 1488 0343 6467"),
        format="json",
    ).json()["ticket_id"]
    client.post(f"/api/v1/tickets/{ticket}/claim/")
    reply = client.post(
        f"/api/v1/tickets/{ticket}/replies/", {"body": "Rates: 6.1% APR"}, format="json"
    ).json()
    client.post(f"/api/v1/replies/{reply['id']}/submit/")
    client.post("/api/v1/templates/", {"name": "t", "body": "Hi {first_name}"}, format="json")
    return key, ticket, reply["id"]


def test_no_server_errors_and_responses_match_the_schema(api_schema, token, subtests):
    token, ticket_id, reply_id = token
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    headers = {"Authorization": f"Token {token}"}
    with _keep_test_connection():
        _fuzz(api_schema, ticket_id, reply_id, checks, headers, subtests)


def _fuzz(api_schema, ticket_id, reply_id, checks, headers, subtests):
    # The rows that exist, described exactly by the schema.
    for path, parameters in (
        ("/api/v1/tickets/{ticket_id}/", {"ticket_id": ticket_id}),
        ("/api/v1/replies/{reply_id}/", {"reply_id": reply_id}),
    ):
        case = api_schema[path]["GET"].Case(path_parameters=parameters)
        assert case.call_and_validate(headers=headers, checks=checks).status_code == 200

    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20  # every documented operation is exercised

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            case.call_and_validate(headers=headers, checks=checks)

        with subtests.test(operation=operation.label):
            fuzz()
