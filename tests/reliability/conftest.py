"""Fixtures for the reliability tests: the test database as a URL, proxies in front of
the real PostgreSQL and Redis (tests/faults.py), and a broker left as it was found."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from connectors.services.deliveries import WAKE_KEY
from servicedesk import celery_app
from tests.faults import TcpProxy
from tests.workers import database_url


@pytest.fixture
def database(db) -> str:
    return database_url()


@pytest.fixture
def broker() -> Iterator[None]:
    """No wake-up mark or task left over from another test, and none left behind: a
    "drain queued" mark whose drain was purged would hold back the next test's wake-ups
    for WAKE_TIMEOUT seconds, and a queued task would go to the next test's worker."""
    cache.delete(WAKE_KEY)
    celery_app.control.purge()
    yield
    cache.delete(WAKE_KEY)
    celery_app.control.purge()


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    """A proxy to the Redis of REDIS_URL; `redis_url(proxy)` names it, same database."""
    parts = urlsplit(settings.REDIS_URL)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
        yield proxy


def redis_url(proxy: TcpProxy) -> str:
    parts = urlsplit(settings.REDIS_URL)
    userinfo = parts.netloc.rpartition("@")[0]
    return proxy.url(parts.scheme, parts.path or "/0", userinfo)


@pytest.fixture
def pg_proxy(db) -> Iterator[TcpProxy]:
    """A proxy to the test database's PostgreSQL; `database_url_via(proxy)` names it."""
    host = connection.settings_dict.get("HOST") or "127.0.0.1"
    port = connection.settings_dict.get("PORT") or 5432
    with TcpProxy(host, int(port)) as proxy:
        yield proxy


def database_url_via(proxy: TcpProxy) -> str:
    parts = urlsplit(database_url())
    userinfo = parts.netloc.rpartition("@")[0]
    return proxy.url(parts.scheme, parts.path, userinfo)
