"""What an operator sees: request ids, JSON log lines, Prometheus metrics, readiness."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from servicedesk.observability import JsonFormatter, RequestIdFilter


def test_every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept(db):
    client = Client()

    fresh = client.get("/healthz")
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="lb-1234abcd")
    refused = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\n<script>")

    assert len(fresh["X-Request-ID"]) == 32
    assert kept["X-Request-ID"] == "lb-1234abcd"
    assert refused["X-Request-ID"] != "bad id\n<script>"


def test_log_lines_are_json_with_the_request_id_and_ticket_id(db, caplog):
    formatter = JsonFormatter()
    record = logging.LogRecord("tickets", logging.WARNING, __file__, 1, "publish failed", (), None)
    record.ticket_id = 42
    record.request_id = "abc123abc"

    line = json.loads(formatter.format(record))

    assert line["message"] == "publish failed"
    assert (line["level"], line["request_id"], line["ticket_id"]) == ("WARNING", "abc123abc", 42)


def test_a_log_written_during_a_request_gets_its_id(db, rf):
    from servicedesk.observability import RequestIdMiddleware

    captured = {}

    def view(request):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "inside", (), None)
        RequestIdFilter().filter(record)
        captured["id"] = record.request_id
        from django.http import HttpResponse

        return HttpResponse("ok")

    response = RequestIdMiddleware(view)(rf.get("/", HTTP_X_REQUEST_ID="req-00000001"))

    assert captured["id"] == "req-00000001" == response["X-Request-ID"]


def test_metrics_show_tickets_by_state_breaches_and_requests(api, agent, ingest):
    ingest(text="@NorthwindBank app down")
    Client().get("/healthz")

    body = Client().get("/metrics").content.decode()

    assert 'servicedesk_tickets{state="open"} 1.0' in body
    assert "servicedesk_window_breaches 0.0" in body
    assert 'servicedesk_queue_depth{queue="deliveries_pending"}' in body
    assert 'servicedesk_http_requests_total{method="GET",route="healthz",status="200"}' in body


def test_metrics_need_the_token_when_one_is_set(db, settings):
    settings.METRICS_TOKEN = "s3cret-token"

    assert Client().get("/metrics").status_code == 401
    ok = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert ok.status_code == 200


def test_readyz_is_ready_when_the_database_is_migrated(db):
    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json()["migrations"] == "ok"


@pytest.mark.django_db
def test_readyz_is_not_ready_without_the_broker(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["broker"] == "unavailable"
