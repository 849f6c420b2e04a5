"""PostgreSQL becomes unavailable under a running web server, then comes back.

gunicorn (production settings, two workers) reaches PostgreSQL through a proxy
(tests/faults.py) that the test cuts, as if the database had stopped. While it is down:

- a signed webhook is answered 503 `storage_unavailable` with Retry-After, so the
  platform sends it again later — and nothing of it is stored (checked once the
  database is back);
- /readyz answers 503, so a load balancer stops sending traffic;
- an API read is answered with a JSON error, not an HTML traceback.

Once it is back, the same processes (no restart) answer 200 again and store what they
acknowledge, including the delivery the platform sends again.
"""

from __future__ import annotations

import httpx
import pytest
from rest_framework.authtoken.models import Token

from connectors.models import RawDelivery
from connectors.services import channel_add
from tests.factories import UserFactory
from tests.reliability.conftest import database_url_via
from tests.reliability.wire import SECRET, URL, generic_body, generic_headers, generic_mention
from tests.workers import gunicorn_server

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

RECOVERED = 6  # requests after the restore: each of the two web processes gets some
# connect_timeout is 5 s; a refused connection fails at once, and the answer must too.
ANSWER_SECONDS = 5.0


def _post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(URL, content=body, headers=generic_headers(body))


def _stored(body: bytes) -> int:
    return sum(
        bytes(stored) == body for stored in RawDelivery.objects.values_list("body", flat=True)
    )


def test_postgres_unavailable_webhooks_503_nothing_stored_and_recovers_alone(
    tmp_path, database, broker, pg_proxy
):
    channel_add(platform="generic", name="partner-forum", values={"secret": SECRET})
    agent = UserFactory(username="alice", roles=["agent"])
    token = Token.objects.create(user=agent).key
    api = {"Authorization": f"Token {token}"}
    web_env = {"DATABASE_URL": database_url_via(pg_proxy)}
    with (
        gunicorn_server(database, tmp_path / "web.log", env=web_env) as web,
        httpx.Client(base_url=web.url, timeout=30) as client,
    ):
        # Working before the fault, through the proxy.
        before = generic_body(generic_mention("before"))
        assert _post(client, before).status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/api/v1/tickets/", headers=api).status_code == 200
        assert pg_proxy.live_connections >= 1

        pg_proxy.cut()

        lost = generic_body(generic_mention("during-outage"))
        refused = _post(client, lost)
        assert refused.status_code == 503
        assert refused.headers["Content-Type"] == "application/json"
        assert refused.json()["code"] == "storage_unavailable"
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.elapsed.total_seconds() < ANSWER_SECONDS
        # Both web processes, whichever had a connection before, answer the same.
        also_lost = [generic_body(generic_mention(f"during-outage-{n}")) for n in range(3)]
        for body in also_lost:
            again = _post(client, body)
            assert (again.status_code, again.json()["code"]) == (503, "storage_unavailable")

        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"] == "unavailable"
        health = client.get("/healthz")
        assert (health.status_code, health.json()["database"]) == (503, "unavailable")

        read = client.get("/api/v1/tickets/", headers=api)
        assert read.status_code == 503
        assert read.headers["Content-Type"] == "application/json"
        assert read.json()["code"] == "service_unavailable"
        assert int(read.headers["Retry-After"]) > 0

        pg_proxy.restore()

        # The platform sends the refused delivery again; new ones keep coming.
        assert _post(client, lost).status_code == 200
        recovered = [generic_body(generic_mention(f"after-{n}")) for n in range(RECOVERED)]
        answers = [_post(client, body) for body in recovered]
        assert [answer.status_code for answer in answers] == [200] * RECOVERED
        assert client.get("/readyz").status_code == 200
        read = client.get("/api/v1/tickets/", headers=api)
        assert read.status_code == 200
        assert read.headers["Content-Type"] == "application/json"

        assert web.booted_workers() == 2  # the same two web processes recovered alone
        assert web.process.poll() is None

    # What the 503s were given was never stored; the re-sent delivery is, once.
    assert _stored(lost) == 1
    assert [_stored(body) for body in also_lost] == [0, 0, 0]
    assert _stored(before) == 1
    assert all(_stored(body) == 1 for body in recovered)
    assert RawDelivery.objects.count() == 2 + RECOVERED
