"""Operational endpoints: health, the OpenAPI schema and its docs page, JSON 404s, and
the production settings check."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

# Every path of the HTTP contract (v1), with the methods the contract names.
CONTRACT = {
    "/api/v1/mentions/": {"post"},
    "/api/v1/tickets/": {"get"},
    "/api/v1/tickets/{ticket_id}/": {"get"},
    "/api/v1/tickets/{ticket_id}/claim/": {"post"},
    "/api/v1/tickets/{ticket_id}/close/": {"post"},
    "/api/v1/tickets/{ticket_id}/ignore/": {"post"},
    "/api/v1/tickets/{ticket_id}/replies/": {"post"},
    "/api/v1/replies/{reply_id}/": {"get", "patch"},
    "/api/v1/replies/{reply_id}/submit/": {"post"},
    "/api/v1/replies/{reply_id}/approve/": {"post"},
    "/api/v1/replies/{reply_id}/request-changes/": {"post"},
    "/api/v1/replies/{reply_id}/send/": {"post"},
    "/api/v1/screen/": {"post"},
    "/api/v1/reviews/": {"get"},
    "/api/v1/audit/": {"get"},
}


def test_healthz_reports_database_and_broker():
    response = APIClient().get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "broker": "ok" if settings.REDIS_URL else "eager",
    }
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_503_when_the_broker_is_unreachable(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = APIClient().get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "broker": "unavailable"}


def test_schema_is_openapi_3_and_lists_the_whole_contract():
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    missing = sorted(set(CONTRACT) - set(schema["paths"]))
    assert not missing, f"paths missing from the schema: {missing}"
    for path, methods in CONTRACT.items():
        assert methods <= set(schema["paths"][path]), (path, sorted(schema["paths"][path]))
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_schema_is_yaml_by_default():
    response = APIClient().get("/api/schema/")

    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_docs_page_loads_swagger_ui_from_our_own_static_files():
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert not re.search(r"https?://", page), "the docs page must not load anything from a CDN"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    static_assets = [url for url in assets if url.startswith(settings.STATIC_URL)]
    names = {url.rsplit("/", 1)[-1] for url in static_assets}
    assert {"swagger-ui-bundle.js", "swagger-ui.css"} <= names, assets
    for url in static_assets:
        relative = url[len(settings.STATIC_URL) :]
        assert finders.find(relative), f"{url} is not served by staticfiles"


def test_unknown_api_path_is_a_json_404():
    response = APIClient().get("/api/v1/nope/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_production_settings_pass_check_deploy():
    # tests/settings.py relaxes these in this process's environment; production must not.
    relaxed = {"SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"}
    env = {key: value for key, value in os.environ.items() if key not in relaxed}
    env.update(
        DJANGO_SETTINGS_MODULE="servicedesk.settings",
        DEBUG="0",
        SECRET_KEY="ci-" + secrets.token_urlsafe(50),
        ALLOWED_HOSTS="servicedesk.example.com",
    )

    result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
