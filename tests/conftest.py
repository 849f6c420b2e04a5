"""Shared fixtures: named actors per role, API clients with real token auth, and helpers."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test import TestCase
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from approvals.policy import policy_changed
from connectors.selectors import channels_changed
from tests.factories import ChannelFactory, UserFactory
from tickets.windows import windows_changed


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "process_clock: sets the time the services stamp by moving this process's clock,"
        " which is the database's clock only on SQLite; left out on PostgreSQL, where"
        " stamps take the database's time (see tests/supervision/test_cycles_db_clock.py)",
    )


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need row locks; `worker` tests need Redis too.

    They run in CI's second pass (DATABASE_URL and REDIS_URL set) and are left out of
    the SQLite pass, which cannot run them at all. Tests marked `browser` need Debian's
    Chromium: left out on a developer's machine without it, but never in CI (CI is set
    there), where a missing browser must fail loudly.
    """
    import os

    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql"))
    with_redis = bool(os.environ.get("REDIS_URL"))
    without_browser = not os.path.exists("/usr/bin/chromium") and not os.environ.get("CI")
    keep, drop = [], []
    for item in items:
        needs_pg = item.get_closest_marker("postgres") or item.get_closest_marker("worker")
        needs_redis = item.get_closest_marker("worker")
        needs_browser = item.get_closest_marker("browser")
        needs_process_clock = item.get_closest_marker("process_clock")
        if (
            (needs_pg and not on_postgres)
            or (needs_process_clock and on_postgres)
            or (needs_redis and not with_redis)
            or (needs_browser and without_browser)
        ):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _fresh_config_caches():
    """Each test starts with empty per-process caches: its rows are rolled back after it."""
    channels_changed()
    windows_changed()
    policy_changed()
    yield
    channels_changed()
    windows_changed()
    policy_changed()


class CommitClient(APIClient):
    """Runs each request's on-commit callbacks, as the real commit would in production.

    Tests run inside a transaction that never commits; without this, work enqueued
    with transaction.on_commit (the publish task) would never run.
    """

    def request(self, **kwargs):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return super().request(**kwargs)


def client_for(user) -> CommitClient:
    client = CommitClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def channel(db):
    return ChannelFactory()


@pytest.fixture
def agent(db):
    return UserFactory(username="alice", roles=["agent"])


@pytest.fixture
def agent2(db):
    return UserFactory(username="bob", roles=["agent"])


@pytest.fixture
def lawyer(db):
    return UserFactory(username="lena", roles=["legal"])


@pytest.fixture
def lawyer2(db):
    return UserFactory(username="lars", roles=["legal"])


@pytest.fixture
def supervisor(db):
    return UserFactory(username="sue", roles=["supervisor"])


@pytest.fixture
def integration(db):
    return UserFactory(username="feed", roles=["integration"])


@pytest.fixture
def outsider(db):
    return UserFactory(username="oscar")


@pytest.fixture
def api(db):
    """api(user) → an authenticated API client; api(None) → anonymous."""
    return client_for


_ids = itertools.count(1)


def mention_payload(**overrides) -> dict:
    number = next(_ids)
    payload = {
        "channel": "sim",
        "external_id": f"post-{number}",
        "author": {"external_id": f"cust-{number}", "handle": f"cust{number}", "display_name": "C"},
        "text": "@NorthwindBank the app keeps logging me out",
        "url": f"https://simulated.invalid/p/{number}",
        "posted_at": (timezone.now() - timedelta(minutes=2)).isoformat(),
    }
    payload.update(overrides)
    return payload


@pytest.fixture
def ingest(api, agent, channel):
    """ingest(**fields) → the JSON of POST /api/v1/mentions/ (asserting 201 or 200)."""

    def _ingest(**overrides):
        response = api(agent).post("/api/v1/mentions/", mention_payload(**overrides), format="json")
        assert response.status_code in (200, 201), response.content
        return response.json()

    return _ingest


@pytest.fixture
def claimed_ticket(api, agent, ingest):
    """ingest_and_claim(text) → ticket id, claimed by the agent."""

    def _claimed(text="@NorthwindBank the app keeps logging me out"):
        ticket_id = ingest(text=text)["ticket_id"]
        response = api(agent).post(f"/api/v1/tickets/{ticket_id}/claim/")
        assert response.status_code == 200, response.content
        return ticket_id

    return _claimed


def is_postgres() -> bool:
    return connection.vendor == "postgresql"
