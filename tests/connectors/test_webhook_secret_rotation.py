"""Rotating a webhook secret: for an overlap, deliveries signed with the secret that was
replaced still count — until `previous_secret_until`, after which they are refused.
Everything goes through the real webhook endpoints and `manage.py channel_add`."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from connectors.models import ChannelAccount, RawDelivery
from connectors.platforms.generic import sign
from connectors.selectors import channels_changed
from tests.conftest import CommitClient
from tests.connectors.test_meta import (
    IG_USER_ID,
    PAGE_ID,
    fb_comment,
    ig_comment,
    ig_delivery,
    meta_signature,
    page_delivery,
    page_entry,
)
from tests.connectors.test_meta import wire as meta_wire
from tests.connectors.test_x import BRAND_ID, delivery, tweet, x_signature
from tests.connectors.test_x import wire as x_wire

pytestmark = pytest.mark.django_db

OLD = "old-secret-2025-rotated-out"
NEW = "new-secret-2026-rotated-in"
NEVER = "a-secret-that-was-never-ours"


def _in(**delta) -> str:
    return (timezone.now() + timedelta(**delta)).isoformat()


def _channel_add(platform: str, name: str, **values: str) -> None:
    args = [item for key, value in values.items() for item in ("--set", f"{key}={value}")]
    call_command("channel_add", platform, name, *args)
    channels_changed()  # the command runs in its own process in real life


# ---- each platform: (set-up, a signed delivery) -------------------------------------


def _generic(**rotation: str) -> None:
    _channel_add("generic", "partner", secret=NEW, previous_secret=OLD, **rotation)


def _generic_post(secret: str):
    body = json.dumps(
        {
            "external_id": f"g-{time.monotonic_ns()}",
            "author": {"external_id": "c-1", "handle": "c1"},
            "text": "is the branch open on Sunday?",
            "posted_at": (timezone.now() - timedelta(minutes=1)).isoformat(),
        }
    ).encode()
    return CommitClient().post(
        "/connectors/generic/webhook/",
        data=body,
        content_type="application/json",
        HTTP_X_SERVICEDESK_SIGNATURE=sign(secret, body),
    )


def _x(**rotation: str) -> None:
    _channel_add(
        "x",
        "northwind-x",
        user_id=BRAND_ID,
        consumer_secret=NEW,
        previous_consumer_secret=OLD,
        **rotation,
    )


def _x_post(secret: str):
    body = x_wire(delivery(tweet(id_str=str(1861234567890000000 + time.monotonic_ns() % 10**6))))
    return CommitClient().post(
        "/connectors/x/webhook/",
        data=body,
        content_type="application/json",
        HTTP_X_TWITTER_WEBHOOKS_SIGNATURE=x_signature(secret, body),
    )


def _facebook(**rotation: str) -> None:
    _channel_add(
        "facebook",
        "northwind-fb",
        page_id=PAGE_ID,
        app_secret=NEW,
        verify_token="verify-me-7a9b",
        previous_app_secret=OLD,
        **rotation,
    )


def _meta_post(secret: str, body: bytes):
    return CommitClient().post(
        "/connectors/meta/webhook/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=meta_signature(body, secret=secret),
    )


def _facebook_post(secret: str):
    comment = fb_comment(comment_id=f"2422865137769341_{time.monotonic_ns()}")
    return _meta_post(secret, meta_wire(page_delivery(page_entry(comment))))


def _instagram(**rotation: str) -> None:
    _channel_add(
        "instagram",
        "northwind-ig",
        ig_user_id=IG_USER_ID,
        app_secret=NEW,
        verify_token="verify-me-7a9b",
        previous_app_secret=OLD,
        **rotation,
    )


def _instagram_post(secret: str):
    comment = ig_comment(id=str(17865799348000000 + time.monotonic_ns() % 10**6))
    return _meta_post(secret, meta_wire(ig_delivery(comment)))


PLATFORMS = {
    "generic": (_generic, _generic_post),
    "x": (_x, _x_post),
    "facebook": (_facebook, _facebook_post),
    "instagram": (_instagram, _instagram_post),
}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_old_secret_works_during_the_overlap_and_is_refused_after_it(platform):
    configure, post = PLATFORMS[platform]
    configure(previous_secret_until=_in(hours=1))

    during = [post(OLD).status_code, post(NEW).status_code, post(NEVER).status_code]
    stored_during = RawDelivery.objects.count()
    configure(previous_secret_until=_in(seconds=-1))  # the operator's end of the overlap
    after = [post(OLD).status_code, post(NEW).status_code, post(NEVER).status_code]

    assert during == [200, 200, 403]
    assert after == [403, 200, 403]
    assert stored_during == 2
    assert RawDelivery.objects.count() == 3


def test_the_overlap_ends_by_itself_when_the_time_comes():
    deadline = timezone.now() + timedelta(seconds=1.5)
    _generic(previous_secret_until=deadline.isoformat())

    before = _generic_post(OLD).status_code
    time.sleep(max(0.0, (deadline - timezone.now()).total_seconds()) + 0.1)
    after = _generic_post(OLD).status_code

    assert (before, after) == (200, 403)
    assert _generic_post(NEW).status_code == 200


def test_without_an_end_the_previous_secret_stays_accepted():
    _generic()

    assert _generic_post(OLD).status_code == 200
    assert _generic_post(NEVER).status_code == 403


def test_x_oauth2_signature_rotates_with_the_previous_client_secret():
    _channel_add(
        "x",
        "northwind-x",
        user_id=BRAND_ID,
        consumer_secret=NEW,
        client_secret="client-new-5e7",
        previous_client_secret="client-old-1a2",
        previous_secret_until=_in(hours=1),
    )
    body = x_wire(delivery(tweet()))

    def post(client_secret: str):
        return CommitClient().post(
            "/connectors/x/webhook/",
            data=body,
            content_type="application/json",
            HTTP_X_TWITTER_WEBHOOKS_SIGNATURE_OAUTH2=x_signature(client_secret, body),
        )

    old, new, never = post("client-old-1a2"), post("client-new-5e7"), post(NEVER)
    _channel_add("x", "northwind-x", previous_secret_until=_in(seconds=-1))
    expired = post("client-old-1a2")

    assert [old.status_code, new.status_code, never.status_code] == [200, 200, 403]
    assert expired.status_code == 403


def test_x_crc_is_answered_with_the_new_consumer_secret_only():
    _x(previous_secret_until=_in(hours=1))

    response = CommitClient().get("/connectors/x/webhook/", {"crc_token": "challenge-42"})

    assert response.status_code == 200
    assert response.json() == {"response_token": x_signature(NEW, b"challenge-42")}
    assert response.json()["response_token"] != x_signature(OLD, b"challenge-42")


@pytest.mark.parametrize(
    "value",
    ["tomorrow", "2026-13-01T00:00:00+00:00", "2026-12-01T09:00:00", "2026-12-01", "1795186999"],
)
def test_channel_add_refuses_an_end_that_is_not_a_date_and_time_with_an_offset(value):
    with pytest.raises(CommandError, match="previous_secret_until.*ISO 8601.*UTC offset"):
        _generic(previous_secret_until=value)

    assert not ChannelAccount.objects.filter(name="partner").exists()


def test_channel_add_refuses_a_bad_end_on_an_existing_account_and_keeps_the_old_one():
    end = _in(hours=2)
    _x(previous_secret_until=end)

    with pytest.raises(CommandError, match="x setting previous_secret_until"):
        _channel_add("x", "northwind-x", previous_secret_until="next week")

    assert ChannelAccount.objects.get(name="northwind-x").settings["previous_secret_until"] == end


@pytest.mark.parametrize("value", ["2026-12-01T09:00:00Z", "2026-12-01T09:00:00+01:00", ""])
def test_channel_add_takes_an_end_with_an_offset_or_none(value):
    _facebook(previous_secret_until=value)

    assert ChannelAccount.objects.get(name="northwind-fb").settings["previous_secret_until"] == (
        value
    )


def test_an_end_that_cannot_be_read_refuses_the_previous_secret(caplog):
    """Set behind channel_add's back (the admin edits settings as JSON): refused, said."""
    _generic()
    ChannelAccount.objects.filter(name="partner").update(
        settings={"previous_secret_until": "end of the month"}
    )
    channels_changed()

    with caplog.at_level(logging.WARNING, logger="connectors.base"):
        old, new = _generic_post(OLD).status_code, _generic_post(NEW).status_code

    assert (old, new) == (403, 200)
    assert "previous_secret_until 'end of the month'" in caplog.text
