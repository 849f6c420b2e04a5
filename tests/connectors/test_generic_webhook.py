"""The generic webhook end to end: verify, store raw, process into tickets."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from connectors.models import RawDelivery
from connectors.platforms.generic import sign
from connectors.services import channel_add
from tests.conftest import CommitClient
from tickets.models import Mention, Ticket

pytestmark = pytest.mark.django_db

URL = "/connectors/generic/webhook/"
SECRET = "s3cret-generic"


@pytest.fixture
def generic():
    return channel_add(platform="generic", name="partner-forum", values={"secret": SECRET})


def _mention(external_id="g-1", text="Is the mortgage rate fixed?", **extra) -> dict:
    return {
        "external_id": external_id,
        "author": {"external_id": "u-9", "handle": "forum_user", "display_name": "Zoë"},
        "text": text,
        "posted_at": (timezone.now() - timedelta(minutes=3)).isoformat(),
        **extra,
    }


def _post(body: bytes, signature: str | None, client=None):
    client = client or CommitClient()
    headers = {"HTTP_X_SERVICEDESK_SIGNATURE": signature} if signature is not None else {}
    return client.post(URL, data=body, content_type="application/json", **headers)


def test_generic_signed_delivery_becomes_a_regulated_ticket(generic):
    body = json.dumps(_mention()).encode()

    response = _post(body, sign(SECRET, body))

    assert response.status_code == 200
    delivery = RawDelivery.objects.get()
    assert bytes(delivery.body) == body
    assert delivery.status == "processed"
    assert delivery.mentions_created == 1
    mention = Mention.objects.get()
    assert mention.channel == generic
    assert mention.ticket.regulated is True


def test_generic_delivery_updates_channel_health_and_lag(generic):
    body = json.dumps(_mention()).encode()  # posted three minutes ago

    _post(body, sign(SECRET, body))
    bad = json.dumps({"mentions": [{"external_id": "x"}]}).encode()
    _post(bad, sign(SECRET, bad))

    generic.refresh_from_db()
    assert 175 <= generic.lag_seconds <= 200
    assert generic.last_success_at is not None
    assert generic.last_error.startswith("mention 0")
    assert generic.last_error_at >= generic.last_success_at


@pytest.mark.parametrize("signature", [None, "", "sha256=00", "sha256=" + "a" * 64])
def test_generic_forged_or_missing_signature_is_refused_and_nothing_stored(generic, signature):
    body = json.dumps(_mention()).encode()
    cache.delete("servicedesk:webhook:forged:generic")

    response = _post(body, signature)

    assert response.status_code == 403
    assert response.json()["code"] == "bad_signature"
    assert RawDelivery.objects.count() == 0
    assert Mention.objects.count() == 0
    assert cache.get("servicedesk:webhook:forged:generic") == 1


def test_generic_text_is_stored_in_one_unicode_normal_form(generic):
    decomposed = "Cua\u0301nto es la cuota del pre\u0301stamo"  # combining accents
    body = json.dumps(_mention(text=decomposed)).encode()

    _post(body, sign(SECRET, body))

    assert Mention.objects.get().text == "Cu\u00e1nto es la cuota del pr\u00e9stamo"


def test_generic_signature_over_non_ascii_raw_bytes_verifies(generic):
    # Escaped slashes and raw UTF-8: re-serializing this JSON would change the bytes.
    body = (
        '{"external_id":"g-2","author":{"external_id":"u-1","handle":"jos\u00e9"},'
        '"text":"\u00bfCu\u00e1l es la tasa? https:\\/\\/x.example\\/a",'
        f'"posted_at":"{timezone.now().isoformat()}"'
        "}"
    ).encode()

    response = _post(body, sign(SECRET, body))

    assert response.status_code == 200
    assert Mention.objects.get().text == "¿Cuál es la tasa? https://x.example/a"


def test_generic_rotated_previous_secret_still_verifies(generic):
    channel_add(
        platform="generic",
        name="partner-forum",
        values={"secret": "new-secret", "previous_secret": SECRET},
    )
    body = json.dumps(_mention()).encode()

    old = _post(body, sign(SECRET, body))
    new = _post(json.dumps(_mention("g-9")).encode(), None)

    assert old.status_code == 200
    assert new.status_code == 403


def test_generic_unparseable_body_is_400_and_kept_as_failed_evidence(generic):
    body = b'{"external_id": "g-1", '

    response = _post(body, sign(SECRET, body))

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_body"
    delivery = RawDelivery.objects.get()
    assert delivery.status == "failed"
    assert "not JSON" in delivery.error


def test_generic_one_bad_entry_does_not_lose_the_others(generic):
    bad = _mention("g-bad")
    del bad["posted_at"]
    body = json.dumps(
        {"mentions": [_mention("g-a"), bad, _mention("g-b", text="thanks!")]}
    ).encode()

    response = _post(body, sign(SECRET, body))

    assert response.status_code == 200
    assert set(Mention.objects.values_list("external_id", flat=True)) == {"g-a", "g-b"}
    delivery = RawDelivery.objects.get()
    assert delivery.status == "failed"
    assert "mention 1" in delivery.error
    assert delivery.mentions_created == 2


def test_generic_same_delivery_five_times_is_one_mention(generic):
    body = json.dumps(_mention()).encode()

    answers = [_post(body, sign(SECRET, body)).status_code for _ in range(5)]

    assert answers == [200] * 5
    assert RawDelivery.objects.count() == 5
    assert Mention.objects.count() == 1
    assert Ticket.objects.count() == 1


def test_generic_edit_and_delete_update_the_mention(generic, api, agent):
    first = json.dumps(_mention(text="what time do you open?")).encode()
    edited = json.dumps(_mention(text="what's your HELOC rate?")).encode()
    deleted = json.dumps(_mention(text="", deleted=True)).encode()

    for body in (first, edited, deleted):
        assert _post(body, sign(SECRET, body)).status_code == 200

    mention = Mention.objects.get()
    (post,) = api(agent).get(f"/api/v1/tickets/{mention.ticket_id}/").json()["thread"]
    assert post["deleted_at"] is not None
    assert [entry["text"] for entry in post["edit_history"]] == ["what time do you open?"]
    assert mention.text == "what's your HELOC rate?"
    assert [entry["text"] for entry in mention.edit_history] == ["what time do you open?"]
    assert mention.deleted_at is not None
    assert mention.ticket.regulated is True


def test_generic_webhook_refuses_get_and_needs_no_csrf_token(generic):
    strict = Client(enforce_csrf_checks=True)
    body = json.dumps(_mention()).encode()

    get = strict.get(URL)
    post = strict.post(
        URL,
        data=body,
        content_type="application/json",
        HTTP_X_SERVICEDESK_SIGNATURE=sign(SECRET, body),
    )

    assert get.status_code == 405
    assert post.status_code == 200


def test_generic_delivery_nobody_woke_the_workers_for_is_swept(generic):
    from connectors.services import delivery_due, delivery_store_webhook
    from connectors.tasks import delivery_sweep_task

    # Stored, and then the web process died before waking the workers (or the broker
    # was down): nothing is on its way for it.
    body = json.dumps(_mention()).encode()
    (delivery_id,) = delivery_store_webhook(channels=[generic], body=body, headers={})
    assert RawDelivery.objects.get().status == "pending"
    assert delivery_due() == []  # too fresh: a drain may still be on its way

    RawDelivery.objects.filter(pk=delivery_id).update(
        received_at=timezone.now() - timedelta(minutes=2)
    )
    swept = delivery_sweep_task.apply().get()

    assert swept == 1
    assert RawDelivery.objects.get().status == "processed"
    assert Mention.objects.count() == 1
