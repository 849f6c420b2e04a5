"""Fixtures for the HTML pages: logged-in browsers (Django's test client) and tickets
made through the real ingest service."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tickets.services import mention_ingest

_numbers = itertools.count(1)


@pytest.fixture
def web(db):
    """web(user) → a test client logged in as the user; web(None) → anonymous."""

    def _client(user) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return _client


@pytest.fixture
def post(channel):
    """post(text, **fields) → the ticket of a new customer post on the simulated channel."""

    def _post(text="@NorthwindBank the app keeps logging me out", *, minutes_ago=2, **fields):
        number = next(_numbers)
        author = fields.pop("author", None) or {
            "external_id": f"web-cust-{number}",
            "handle": f"webcust{number}",
            "display_name": "Casey Customer",
        }
        result = mention_ingest(
            channel=channel,
            external_id=fields.pop("external_id", f"web-post-{number}"),
            author=author,
            text=text,
            url=fields.pop("url", f"https://simulated.invalid/p/{number}"),
            posted_at=timezone.now() - timedelta(minutes=minutes_ago),
            **fields,
        )
        return result.ticket

    return _post
