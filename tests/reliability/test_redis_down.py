"""Redis stops while webhooks keep arriving: nothing is lost, nothing is doubled.

gunicorn (production settings, two workers) and a real Celery worker reach Redis through
a proxy (tests/faults.py) that the test cuts, as if Redis had stopped; PostgreSQL is
reached directly. While Redis is down every signed delivery is still answered 200 and
stored (pending) in PostgreSQL — the webhook's wake-up fails and is only logged — and
/healthz tells the operator the broker is unavailable. Once Redis is back the deliveries
become tickets, each exactly once, by either of the two ways the desk has:

- the next delivery's wake-up starts a drain, which takes every pending delivery;
- with no delivery following, the beat sweep drains those that waited too long.
"""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from django.db.models import F

from connectors.models import RawDelivery
from connectors.services import DELIVERY_STALE_SECONDS, channel_add
from connectors.tasks import delivery_sweep_task
from tests.reliability.conftest import redis_url
from tests.reliability.wire import SECRET, URL, generic_body, generic_headers, generic_mention
from tests.workers import celery_worker_with, gunicorn_server, worker_idle
from tickets.models import Mention, Ticket

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

DURING_OUTAGE = 12
PROCESS_TIMEOUT = 90  # the worker reconnects with back-off (2 s, 4 s, 6 s ...)
# A webhook must answer quickly even with Redis down (platforms wait a few seconds).
ANSWER_SECONDS = 3.0


@pytest.fixture
def stack(tmp_path, database, broker, redis_proxy):
    """The channel, then gunicorn and a worker, both with REDIS_URL through the proxy."""
    channel_add(platform="generic", name="partner-forum", values={"secret": SECRET})
    env = {"REDIS_URL": redis_url(redis_proxy)}
    with (
        gunicorn_server(database, tmp_path / "web.log", env=env) as web,
        celery_worker_with(database, tmp_path / "worker.log", env=env) as worker,
        httpx.Client(base_url=web.url, timeout=30) as client,
    ):
        yield web, worker, client


def _post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(URL, content=body, headers=generic_headers(body))


def _outage_deliveries(client, redis_proxy) -> tuple[list[int], set[str]]:
    """Cut Redis, post DURING_OUTAGE deliveries plus one the platform re-sends; each is
    answered 200 promptly and stored pending, and none is processed yet."""
    redis_proxy.cut()
    bodies = [
        generic_body(generic_mention(f"outage-{n}", text=f"@NorthwindBank card question {n}"))
        for n in range(DURING_OUTAGE)
    ]
    bodies.append(bodies[3])  # the platform did not hear our answer in time: sent again
    responses = [_post(client, body) for body in bodies]

    assert [response.status_code for response in responses] == [200] * len(bodies)
    slowest = max(response.elapsed.total_seconds() for response in responses)
    assert slowest < ANSWER_SECONDS
    ids = [i for response in responses for i in response.json()["delivery_ids"]]
    assert len(ids) == len(bodies)
    stored = RawDelivery.objects.filter(pk__in=ids)
    assert sorted(stored.values_list("status", flat=True)) == ["pending"] * len(bodies)
    assert sorted(bytes(body) for body in stored.values_list("body", flat=True)) == sorted(bodies)
    assert not Mention.objects.filter(external_id__startswith="outage-").exists()

    health = client.get("/healthz")
    assert health.status_code == 503
    assert (health.json()["broker"], health.json()["database"]) == ("unavailable", "ok")
    return ids, {f"outage-{n}" for n in range(DURING_OUTAGE)}


def _assert_each_once(expected: set[str]) -> None:
    mentions = list(Mention.objects.values_list("external_id", "ticket_id"))
    assert sorted(external_id for external_id, _ in mentions) == sorted(expected)
    assert len({ticket_id for _, ticket_id in mentions}) == len(expected)
    assert Ticket.objects.count() == len(expected)


def test_redis_stopped_the_next_delivery_wakes_the_drain_for_all_stored(stack, redis_proxy):
    web, worker, client = stack
    # The stack works before the fault: a delivery becomes a ticket through Redis.
    assert _post(client, generic_body(generic_mention("before"))).status_code == 200
    worker.wait_for(lambda: Mention.objects.filter(external_id="before").exists(), "a ticket")
    worker.wait_for(lambda: worker_idle(worker), "the drain to finish")  # none runs into the outage

    ids, expected = _outage_deliveries(client, redis_proxy)

    redis_proxy.restore()
    worker.wait_for(lambda: client.get("/healthz").status_code == 200, "the broker back")
    follower = _post(client, generic_body(generic_mention("after")))
    assert follower.status_code == 200
    ids += follower.json()["delivery_ids"]
    worker.wait_for(
        lambda: not RawDelivery.objects.filter(pk__in=ids, status="pending").exists(),
        "the worker to process every stored delivery",
        timeout=PROCESS_TIMEOUT,
    )

    delivered = RawDelivery.objects.filter(pk__in=ids)
    assert set(delivered.values_list("status", flat=True)) == {"processed"}
    # The re-sent delivery was stored twice and made one mention, not two.
    assert sorted(delivered.values_list("mentions_created", flat=True)) == [0] + [1] * (
        len(ids) - 1
    )
    _assert_each_once(expected | {"before", "after"})
    assert web.booted_workers() == 2  # nothing was restarted to recover


def test_redis_stopped_the_sweep_drains_what_waited_when_nothing_follows(stack, redis_proxy):
    web, worker, client = stack

    ids, expected = _outage_deliveries(client, redis_proxy)

    redis_proxy.restore()
    # No delivery follows. Beat's sweep (every minute) drains deliveries that waited
    # DELIVERY_STALE_SECONDS: rather than wait that minute, the rows are made that old.
    RawDelivery.objects.filter(pk__in=ids).update(
        received_at=F("received_at") - timedelta(seconds=DELIVERY_STALE_SECONDS)
    )
    sweep = delivery_sweep_task.delay()  # as beat sends it, straight to Redis
    done = worker.wait_for(
        lambda: re.findall(
            rf"Task connectors\.delivery_sweep\[{sweep.id}\] succeeded in [^:]+: (\d+)",
            worker.log(),
        ),
        "the worker to reconnect and run the sweep",
        timeout=PROCESS_TIMEOUT,
    )

    assert done == [str(len(ids))]  # the sweep itself drained every one of them
    delivered = RawDelivery.objects.filter(pk__in=ids)
    assert set(delivered.values_list("status", flat=True)) == {"processed"}
    assert sum(delivered.values_list("mentions_created", flat=True)) == DURING_OUTAGE
    _assert_each_once(expected)
