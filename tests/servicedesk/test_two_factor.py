"""Two-factor authentication for legal and supervisors, and a fresh code to approve."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import client_for


@pytest.fixture(autouse=True)
def _two_factor_on(settings):
    settings.SERVICEDESK_REQUIRE_2FA = True
    settings.SERVICEDESK_STEP_UP_MINUTES = 15
    # Wrong codes slow further tries down (tested below); the other tests retry at once.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def test_after_a_wrong_code_even_the_right_one_waits(lawyer, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 1
    device = TOTPDevice.objects.create(user=lawyer, name="app", confirmed=True)
    browser = _logged_in(lawyer)

    browser.post("/account/2fa/", {"code": "000000", "next": "/legal/"})
    right_too_soon = browser.post("/account/2fa/", {"code": _code(device), "next": "/legal/"})

    assert right_too_soon.status_code == 400
    assert browser.get("/legal/").status_code == 302


def _code(device: TOTPDevice, offset: int = 0) -> str:
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=6, drift=offset)
    return f"{value:06d}"


def _logged_in(user) -> Client:
    browser = Client()
    assert browser.post("/login/", {"username": user.username, "password": "pw"}).status_code == 302
    return browser


def test_a_lawyer_sets_up_the_app_then_reaches_the_queue(lawyer):
    browser = _logged_in(lawyer)

    blocked = browser.get("/legal/")
    assert blocked.status_code == 302 and blocked["Location"].startswith("/account/2fa/")
    setup = browser.get(blocked["Location"]).content.decode()
    assert "Set up your second factor" in setup and "<svg" in setup
    device = TOTPDevice.objects.get(user=lawyer)
    assert device.confirmed is False

    wrong = browser.post("/account/2fa/", {"code": "000000", "next": "/legal/"})
    right = browser.post("/account/2fa/", {"code": _code(device), "next": "/legal/"})

    assert wrong.status_code == 400
    assert right.status_code == 302 and right["Location"] == "/legal/"
    assert browser.get("/legal/").status_code == 200
    device.refresh_from_db()
    assert device.confirmed is True


def test_agents_need_no_second_factor(agent):
    assert _logged_in(agent).get("/inbox/").status_code == 200


def test_session_api_calls_wait_for_the_second_factor_too(supervisor):
    browser = _logged_in(supervisor)

    response = browser.get("/api/v1/tickets/")

    assert response.status_code == 403
    assert response.json()["code"] == "two_factor_required"


def test_next_cannot_send_the_user_to_another_site(lawyer):
    browser = _logged_in(lawyer)
    browser.get("/account/2fa/")
    device = TOTPDevice.objects.get(user=lawyer)

    response = browser.post("/account/2fa/", {"code": _code(device), "next": "https://evil.test/"})

    assert response["Location"] == "/"


def _pending_reply(api, agent, claimed_ticket) -> int:
    ticket_id = claimed_ticket("@NorthwindBank what is your 30-year fixed mortgage rate?")
    reply = (
        api(agent)
        .post(f"/api/v1/tickets/{ticket_id}/replies/", {"body": "6.1% APR today."}, format="json")
        .json()
    )
    api(agent).post(f"/api/v1/replies/{reply['id']}/submit/")
    return reply["id"]


def test_an_api_approval_with_a_token_needs_the_current_code(api, agent, lawyer, claimed_ticket):
    device = TOTPDevice.objects.create(user=lawyer, name="app", confirmed=True)
    reply_id = _pending_reply(api, agent, claimed_ticket)

    without = client_for(lawyer).post(f"/api/v1/replies/{reply_id}/approve/", {}, format="json")
    wrong = client_for(lawyer).post(
        f"/api/v1/replies/{reply_id}/approve/", {"otp": "123456"}, format="json"
    )
    right = client_for(lawyer).post(
        f"/api/v1/replies/{reply_id}/approve/", {"otp": _code(device)}, format="json"
    )

    assert (without.status_code, without.json()["code"]) == (403, "step_up_required")
    assert wrong.status_code == 403
    assert right.status_code == 200 and right.json()["state"] == "approved"


def test_a_browser_approval_after_the_step_up_age_asks_for_a_fresh_code(
    api, agent, lawyer, claimed_ticket
):
    reply_id = _pending_reply(api, agent, claimed_ticket)
    browser = _logged_in(lawyer)
    browser.get("/account/2fa/")
    device = TOTPDevice.objects.get(user=lawyer)
    browser.post("/account/2fa/", {"code": _code(device), "next": "/legal/"})
    session = browser.session
    session["otp_verified_at"] = time.time() - 16 * 60  # the code was entered 16 min ago
    session.save()

    stale = browser.post(f"/legal/reviews/{reply_id}/approve/", {"comment": ""})
    assert stale.status_code == 302 and "step_up=1" in stale["Location"]
    device.refresh_from_db()
    browser.post("/account/2fa/", {"code": _code(device, offset=1), "next": "/legal/"})
    fresh = browser.post(f"/legal/reviews/{reply_id}/approve/", {"comment": ""})

    assert fresh.status_code == 302 and fresh["Location"] == "/legal/"
    assert api(agent).get(f"/api/v1/replies/{reply_id}/").json()["state"] == "approved"
