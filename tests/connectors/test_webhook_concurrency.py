"""The same webhook delivery five times at once (platforms retry) is one mention."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from connectors.models import RawDelivery
from connectors.platforms.generic import sign
from connectors.services import channel_add
from tickets.models import Mention, Ticket

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_webhook_same_delivery_five_times_concurrently_is_one_mention():
    channel_add(platform="generic", name="forum", values={"secret": "k"})
    body = json.dumps(
        {
            "external_id": "dup-1",
            "author": {"external_id": "u1", "handle": "ana"},
            "text": "What's the APR on your car loans?",
            "posted_at": (timezone.now() - timedelta(minutes=1)).isoformat(),
        }
    ).encode()
    barrier = threading.Barrier(5)
    statuses: list[int] = []

    def deliver():
        try:
            barrier.wait(timeout=10)
            response = Client().post(
                "/connectors/generic/webhook/",
                data=body,
                content_type="application/json",
                HTTP_X_SERVICEDESK_SIGNATURE=sign("k", body),
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [200] * 5
    assert RawDelivery.objects.count() == 5
    assert Mention.objects.count() == 1
    assert Ticket.objects.count() == 1
    assert set(RawDelivery.objects.values_list("status", flat=True)) == {"processed"}
