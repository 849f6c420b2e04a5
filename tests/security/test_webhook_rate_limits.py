"""Rate limits on the public webhooks, through the real endpoints and the real cache
(local memory without REDIS_URL, Redis with it).

An address that keeps failing the signature is answered 429 before any signature is
computed; every address has a (high) ceiling on all its requests; nobody else is held up
by either; and when the cache is down the limits step aside rather than drop deliveries.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from connectors.models import RawDelivery
from connectors.platforms.generic import sign
from connectors.services import channel_add
from tests.connectors.test_meta import facebook_channel, fb_comment, page_delivery, page_entry
from tests.connectors.test_meta import wire as meta_wire
from tests.connectors.test_x import delivery, make_channel, tweet
from tests.connectors.test_x import wire as x_wire

pytestmark = pytest.mark.django_db

GENERIC = "/connectors/generic/webhook/"
SECRET = "rate-limit-test-secret"


def _address() -> str:
    """A fresh client address for each test: counters from earlier tests (or an earlier
    run, in Redis) never meet it."""
    network = ipaddress.ip_network("100.64.0.0/10")
    return str(network[secrets.randbelow(network.num_addresses - 2) + 1])


@pytest.fixture(autouse=True)
def _a_whole_window_ahead():
    """Counts are per minute on the clock: start where the test cannot run into the next."""
    left = 60 - time.time() % 60
    if left < 8:
        time.sleep(left + 0.05)


@pytest.fixture
def generic():
    return channel_add(platform="generic", name="partner", values={"secret": SECRET})


_numbers = iter(range(10**9))


def _mention_body() -> bytes:
    return json.dumps(
        {
            "external_id": f"rl-{next(_numbers)}",
            "author": {"external_id": "c-1", "handle": "c1"},
            "text": "what are your opening hours?",
            "posted_at": (timezone.now() - timedelta(minutes=1)).isoformat(),
        }
    ).encode()


def _deliver(address: str, *, forged: bool = False, **extra):
    body = _mention_body()
    signature = sign("not-the-secret" if forged else SECRET, body)
    return Client(REMOTE_ADDR=address).post(
        GENERIC,
        data=body,
        content_type="application/json",
        HTTP_X_SERVICEDESK_SIGNATURE=signature,
        **extra,
    )


def _assert_rate_limited(response) -> None:
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "rate_limited"
    assert int(response["Retry-After"]) in range(1, 61)  # seconds left in the window
    assert f"try again in {response['Retry-After']} seconds" in body["message"]


def test_after_the_forged_limit_the_address_gets_429_even_with_a_good_signature(generic, settings):
    settings.WEBHOOK_FORGED_LIMIT = 5
    attacker = _address()

    forged = [_deliver(attacker, forged=True).status_code for _ in range(5)]
    blocked_forged = _deliver(attacker, forged=True)
    blocked_genuine = _deliver(attacker)

    assert forged == [403] * 5
    _assert_rate_limited(blocked_forged)
    # Answered before the signature was looked at: a good one is not stored either.
    _assert_rate_limited(blocked_genuine)
    assert RawDelivery.objects.count() == 0


def test_a_blocked_address_holds_up_nobody_else(generic, settings):
    settings.WEBHOOK_FORGED_LIMIT = 3
    attacker, platform = _address(), _address()
    for _ in range(10):
        _deliver(attacker, forged=True)

    genuine = [_deliver(platform).status_code for _ in range(5)]

    assert _deliver(attacker).status_code == 429
    assert genuine == [200] * 5
    assert RawDelivery.objects.count() == 5


def test_a_forged_storm_does_not_block_genuine_deliveries_below_the_ceiling(generic, settings):
    settings.WEBHOOK_FORGED_LIMIT = 20
    settings.WEBHOOK_RATE_LIMIT = 12
    platform = _address()
    storm = [_address() for _ in range(3)]

    answers = []
    for _ in range(12):
        for attacker in storm:
            _deliver(attacker, forged=True)
        answers.append(_deliver(platform).status_code)
    over_the_ceiling = _deliver(platform)

    # Each attacker hit its own ceiling (12 requests) before its forged limit (20).
    assert {_deliver(attacker, forged=True).status_code for attacker in storm} == {429}
    assert answers == [200] * 12
    _assert_rate_limited(over_the_ceiling)
    assert RawDelivery.objects.count() == 12


def test_forged_deliveries_below_the_limit_keep_getting_403(generic, settings):
    settings.WEBHOOK_FORGED_LIMIT = 20
    attacker = _address()

    answers = {_deliver(attacker, forged=True).status_code for _ in range(20)}

    assert answers == {403}
    assert _deliver(attacker, forged=True).status_code == 429


@pytest.mark.parametrize("endpoint", ["x", "meta"])
def test_the_platform_webhooks_are_limited_too(endpoint, settings):
    settings.WEBHOOK_FORGED_LIMIT = 2
    attacker = _address()
    if endpoint == "x":
        make_channel()
        body = x_wire(delivery(tweet()))
        header = {"HTTP_X_TWITTER_WEBHOOKS_SIGNATURE": "sha256=Zm9yZ2Vk"}
    else:
        facebook_channel()
        body = meta_wire(page_delivery(page_entry(fb_comment())))
        header = {"HTTP_X_HUB_SIGNATURE_256": "sha256=" + "0" * 64}
    browser = Client(REMOTE_ADDR=attacker)
    url = f"/connectors/{endpoint}/webhook/"

    forged = [
        browser.post(url, data=body, content_type="application/json", **header).status_code
        for _ in range(2)
    ]
    blocked = browser.post(url, data=body, content_type="application/json", **header)

    assert forged == [403, 403]
    _assert_rate_limited(blocked)


def test_wrong_handshake_tokens_count_as_forged(settings):
    settings.WEBHOOK_FORGED_LIMIT = 3
    facebook_channel()
    guesser = Client(REMOTE_ADDR=_address())
    query = {"hub.mode": "subscribe", "hub.challenge": "42"}

    guesses = [
        guesser.get("/connectors/meta/webhook/", {**query, "hub.verify_token": f"guess-{n}"})
        for n in range(3)
    ]
    blocked = guesser.get("/connectors/meta/webhook/", {**query, "hub.verify_token": "x"})

    assert [response.status_code for response in guesses] == [403, 403, 403]
    _assert_rate_limited(blocked)


def test_the_ceiling_counts_every_request_of_the_address(settings):
    settings.WEBHOOK_RATE_LIMIT = 4
    make_channel()
    client = Client(REMOTE_ADDR=_address())

    crc = [client.get("/connectors/x/webhook/", {"crc_token": f"t{n}"}) for n in range(4)]
    fifth = client.get("/connectors/x/webhook/", {"crc_token": "t5"})

    assert [response.status_code for response in crc] == [200] * 4
    _assert_rate_limited(fifth)


def test_zero_turns_both_limits_off(generic, settings):
    settings.WEBHOOK_FORGED_LIMIT = 0
    settings.WEBHOOK_RATE_LIMIT = 0
    attacker = _address()

    answers = {_deliver(attacker, forged=True).status_code for _ in range(30)}

    assert answers == {403}
    assert _deliver(attacker).status_code == 200


def test_the_defaults_are_twenty_forged_and_sixty_thousand_in_all():
    from django.conf import settings

    assert settings.WEBHOOK_FORGED_LIMIT == 20
    # 1,000 a second from one address: above the 500/s the desk is built to take.
    assert settings.WEBHOOK_RATE_LIMIT == 60000


def test_this_host_is_never_limited(generic, settings):
    settings.WEBHOOK_FORGED_LIMIT = 2

    answers = {_deliver("127.0.0.1", forged=True).status_code for _ in range(10)}

    assert answers == {403}
    assert _deliver("127.0.0.1").status_code == 200


def test_without_a_proxy_x_forwarded_for_is_ignored(generic, settings):
    """A client cannot dodge the count by writing a new X-Forwarded-For each time."""
    settings.WEBHOOK_FORGED_LIMIT = 3
    settings.BEHIND_PROXY = False
    attacker = _address()

    for n in range(3):
        _deliver(attacker, forged=True, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    blocked = _deliver(attacker, forged=True, HTTP_X_FORWARDED_FOR="192.0.2.99")

    _assert_rate_limited(blocked)


def test_behind_a_proxy_the_address_the_proxy_added_is_counted(generic, settings):
    settings.WEBHOOK_FORGED_LIMIT = 3
    settings.BEHIND_PROXY = True
    attacker, platform = _address(), _address()
    proxy = "10.0.0.2"  # every request reaches us from the proxy

    # The attacker writes a new first entry each time; the proxy appends the real one.
    for n in range(3):
        _deliver(proxy, forged=True, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, {attacker}")
    blocked = _deliver(proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.77, {attacker}")
    genuine = _deliver(proxy, HTTP_X_FORWARDED_FOR=platform)

    _assert_rate_limited(blocked)
    assert genuine.status_code == 200


def test_a_proxy_that_writes_the_port_too_is_understood(generic, settings):
    settings.WEBHOOK_FORGED_LIMIT = 2
    settings.BEHIND_PROXY = True
    attacker, platform = _address(), _address()

    for port in (50001, 50002):
        _deliver("10.0.0.2", forged=True, HTTP_X_FORWARDED_FOR=f"{attacker}:{port}")
    blocked = _deliver("10.0.0.2", HTTP_X_FORWARDED_FOR=f"{attacker}:50003")
    genuine = _deliver("10.0.0.2", HTTP_X_FORWARDED_FOR=f"{platform}:50004")

    _assert_rate_limited(blocked)
    assert genuine.status_code == 200


def test_an_ipv6_client_is_counted_per_64(generic, settings):
    settings.WEBHOOK_FORGED_LIMIT = 3
    prefix = f"2001:db8:{secrets.randbelow(0xFFFF):x}:{secrets.randbelow(0xFFFF):x}"

    for host in range(3):
        _deliver(f"{prefix}::{host + 1:x}", forged=True)
    same_64 = _deliver(f"{prefix}::abcd")
    other_64 = _deliver(f"2001:db8:ffff:{secrets.randbelow(0xFFFF):x}::1")

    _assert_rate_limited(same_64)
    assert other_64.status_code == 200


def test_when_the_cache_is_down_deliveries_are_taken_and_the_outage_logged(
    generic, settings, caplog
):
    """Nothing listens on port 1: every cache call fails at once."""
    settings.CACHES = {
        **settings.CACHES,
        "limits-down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        },
    }
    settings.WEBHOOK_RATE_LIMIT_CACHE = "limits-down"
    settings.WEBHOOK_FORGED_LIMIT = 2
    settings.WEBHOOK_RATE_LIMIT = 3
    client = _address()

    with caplog.at_level(logging.WARNING, logger="connectors.ratelimit"):
        forged = [_deliver(client, forged=True).status_code for _ in range(6)]
        genuine = [_deliver(client).status_code for _ in range(6)]

    assert forged == [403] * 6
    assert genuine == [200] * 6
    assert RawDelivery.objects.count() == 6
    outages = [r for r in caplog.records if "rate limits skipped" in r.getMessage()]
    assert len(outages) == 1
    assert "limits-down" in outages[0].getMessage()


def _window_key(address: str) -> str:
    from connectors.ratelimit import _keys, _window

    return _keys(address, _window(time.time())[0])[0]


def test_under_a_high_ceiling_one_process_holds_it_exactly_with_few_cache_calls(settings):
    """A ceiling of 5,000 a minute: this process adds its count to the cache every 5
    requests (or every FLUSH_SECONDS), yet the 5,001st request is the first refused."""
    from django.core.cache import cache

    from connectors.ratelimit import webhook_admit

    settings.WEBHOOK_RATE_LIMIT = 5000
    client = _address()

    answers = [webhook_admit(client) for _ in range(5001)]

    assert answers[:5000] == [None] * 5000
    assert answers[5000] is not None and 1 <= answers[5000] <= 60
    # The cache holds what was added at the flushes: never more than was counted, and
    # at most one flush's worth (5) behind.
    assert 4996 <= int(cache.get(_window_key(client))) <= 5001


def test_another_process_counts_are_seen_within_the_flush_interval(settings):
    """Another web process has counted 1,999 requests of the address (its flushes are
    in the cache): once this process flushes, it refuses the address too."""
    from django.core.cache import cache

    from connectors.ratelimit import FLUSH_SECONDS, webhook_admit

    settings.WEBHOOK_RATE_LIMIT = 2000  # flushes every 2 requests
    client = _address()
    assert webhook_admit(client) is None  # the first request flushes: 1 in the cache
    cache.incr(_window_key(client), 1998)  # the other process's flush: 1,999 in all

    time.sleep(FLUSH_SECONDS + 0.02)
    second = webhook_admit(client)  # flushes (time): 2,000, not over
    third = webhook_admit(client)  # 2,001

    assert second is None
    assert third is not None
