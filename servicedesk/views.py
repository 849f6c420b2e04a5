"""Project-level views: health, and JSON error pages for API paths."""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.defaults import page_not_found, server_error

from servicedesk.errors import JSON_PREFIXES

logger = logging.getLogger(__name__)


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not healthy"; say which
        logger.warning("health: database check failed: %s", exc)
        return "unavailable"
    return "ok"


def _check_broker() -> str:
    if not settings.REDIS_URL:
        return "eager"
    try:
        import redis

        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        client.ping()
    except Exception as exc:  # any failure means "not healthy"; say which
        logger.warning("health: broker check failed: %s", exc)
        return "unavailable"
    return "ok"


@never_cache
def healthz(request):
    checks = {"database": _check_database(), "broker": _check_broker()}
    healthy = all(value in ("ok", "eager") for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503
    )


@never_cache
def readyz(request):
    """Ready to take traffic: the database answers with every migration applied, and
    the broker answers (when there is one). A load balancer sends no requests until it is."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    if checks["database"] == "ok":
        checks["migrations"] = _check_migrations()
    ready = all(value in ("ok", "eager") for value in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "not_ready", **checks}, status=200 if ready else 503
    )


def _check_migrations() -> str:
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # any failure means "not ready"; say which
        logger.warning("ready: migration check failed: %s", exc)
        return "unavailable"
    return "pending" if pending else "ok"


def not_found(request, exception=None):
    if request.path.startswith(JSON_PREFIXES):
        return JsonResponse({"code": "not_found", "message": "Not found."}, status=404)
    return page_not_found(request, exception)


def error(request):
    from servicedesk.middleware import database_unavailable_response

    unavailable = database_unavailable_response(request, sys.exc_info()[1])
    if unavailable is not None:
        return unavailable
    if request.path.startswith(JSON_PREFIXES):
        return JsonResponse(
            {"code": "server_error", "message": "Something went wrong on our side."}, status=500
        )
    return server_error(request)
