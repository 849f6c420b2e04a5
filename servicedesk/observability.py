"""Operating the desk: request ids in JSON logs, Prometheus metrics, readiness.

- Every request gets an id (the caller's `X-Request-ID` when it is a sane token, else a
  new one), returned in the response header and put on every log line written while
  the request runs; Celery tasks log their task id the same way.
- `JsonFormatter` writes one JSON object per line: time, level, logger, message,
  request_id, and `ticket_id` when the code logging passes it in `extra`. Messages never
  carry post text or secrets: services log ids, not content.
- `/metrics` (Prometheus text format): requests by method, route and status, and
  figures read from the database on each scrape — tickets by state, working tickets
  past their deadline, deliveries and outbox messages waiting, publish failures,
  connector lag, dead letters — so every web process reports the same numbers. Request
  counters are per process unless `PROMETHEUS_MULTIPROC_DIR` is set (gunicorn.conf.py
  sets it).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
import uuid

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        request.request_id = request_id
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        _count_request(request, response, time.perf_counter() - started)
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get() or _task_id()
        return True


def _task_id() -> str:
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return ""
    task = current_task
    return getattr(getattr(task, "request", None), "id", "") or "" if task else ""


# Context a log call may add with `extra=`: ids only, never text or secrets.
_EXTRA_FIELDS = ("ticket_id", "reply_id", "channel", "delivery_id", "status_code")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
        }
        for key in _EXTRA_FIELDS:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# --- Prometheus ---------------------------------------------------------------------------

_metrics = None


def _registry_and_metrics():
    global _metrics
    if _metrics is None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        registry = CollectorRegistry(auto_describe=True)
        requests = Counter(
            "servicedesk_http_requests",
            "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        latency = Histogram(
            "servicedesk_http_request_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        _metrics = (registry, requests, latency)
    return _metrics


def _route(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.route or match.view_name or "unmatched"


def _count_request(request, response, seconds: float) -> None:
    _, requests, latency = _registry_and_metrics()
    route = _route(request)
    requests.labels(request.method, route, str(response.status_code)).inc()
    latency.labels(route).observe(seconds)


class DatabaseCollector:
    """Figures read from the database at scrape time (the same in every process)."""

    def collect(self):
        from django.db.models import Count, Q
        from django.db.models.functions import Now
        from prometheus_client.core import GaugeMetricFamily

        from connectors.models import ChannelAccount, OutboundMessage, RawDelivery
        from tickets.enums import WORKING_STATES
        from tickets.models import Reply, Ticket

        states = GaugeMetricFamily("servicedesk_tickets", "Tickets by state.", labels=["state"])
        for row in Ticket.objects.values("state").annotate(n=Count("id")).order_by():
            states.add_metric([row["state"]], row["n"])
        yield states
        yield GaugeMetricFamily(
            "servicedesk_window_breaches",
            "Tickets still to answer whose window has passed.",
            value=Ticket.objects.filter(state__in=WORKING_STATES, deadline__lt=Now()).count(),
        )
        deliveries = RawDelivery.objects.aggregate(
            pending=Count("id", filter=Q(status="pending")),
            failed=Count("id", filter=Q(status="failed")),
        )
        queue = GaugeMetricFamily(
            "servicedesk_queue_depth", "Work waiting, by queue.", labels=["queue"]
        )
        queue.add_metric(["deliveries_pending"], deliveries["pending"])
        queue.add_metric(
            ["outbox_waiting"],
            OutboundMessage.objects.filter(state__in=("pending", "in_flight")).count(),
        )
        queue.add_metric(["broker"], _broker_depth())
        yield queue
        yield GaugeMetricFamily(
            "servicedesk_deliveries_failed",
            "Raw deliveries that failed to process (visible in the admin).",
            value=deliveries["failed"],
        )
        yield GaugeMetricFamily(
            "servicedesk_publish_failures",
            "Replies whose publish failed.",
            value=Reply.objects.filter(state="failed").count(),
        )
        lag = GaugeMetricFamily(
            "servicedesk_connector_lag_seconds",
            "Seconds from a customer's post to our receiving it, last seen per channel.",
            labels=["channel"],
        )
        success = GaugeMetricFamily(
            "servicedesk_connector_last_success_timestamp",
            "When each channel last worked (Unix time).",
            labels=["channel"],
        )
        for name, lag_seconds, last in ChannelAccount.objects.filter(is_active=True).values_list(
            "name", "lag_seconds", "last_success_at"
        ):
            lag.add_metric([name], float(lag_seconds or 0))
            if last:
                success.add_metric([name], last.timestamp())
        yield lag
        yield success
        yield from _dead_letter_metrics()


def _dead_letter_metrics():
    """Read from the table rather than counted in memory: the letters are written by
    Celery workers, which serve no /metrics, and every web process must report the same
    figure. Rows are never deleted, so the sum of their occurrences only grows."""
    from django.db.models import Count, Q, Sum
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from servicedesk.models import DeadLetter, DeadLetterKind

    rows = {
        row["kind"]: row
        for row in DeadLetter.objects.values("kind")
        .annotate(total=Sum("occurrences"), open=Count("id", filter=Q(resolved_at__isnull=True)))
        .order_by()
    }
    total = CounterMetricFamily(
        "servicedesk_dead_letters",
        "Work given up on and set aside for a person (deliveries, tasks), each failure.",
        labels=["kind"],
    )
    waiting = GaugeMetricFamily(
        "servicedesk_dead_letters_open",
        "Dead letters nobody has marked resolved yet.",
        labels=["kind"],
    )
    for kind in DeadLetterKind.values:
        row = rows.get(kind, {})
        total.add_metric([kind], row.get("total") or 0)
        waiting.add_metric([kind], row.get("open") or 0)
    yield total
    yield waiting


def _broker_depth() -> int:
    if not settings.REDIS_URL:
        return 0
    try:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1)
        return int(client.llen("celery"))
    except Exception:  # the broker being down shows in /readyz; a figure of 0 here is fine
        return 0


@never_cache
def metrics(request):
    """Prometheus text format. With METRICS_TOKEN set, a bearer token is required."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    token = settings.METRICS_TOKEN
    if token:
        import hmac

        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return JsonResponse(
                {"code": "not_authenticated", "message": "A metrics token is required."},
                status=401,
            )
    registry, _, _ = _registry_and_metrics()
    body = generate_latest(registry)
    database = CollectorRegistry(auto_describe=True)
    database.register(DatabaseCollector())
    body += generate_latest(database)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shared = CollectorRegistry()
        multiprocess.MultiProcessCollector(shared)
        body = generate_latest(shared) + generate_latest(database)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
