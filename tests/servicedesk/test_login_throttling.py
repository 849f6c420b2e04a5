"""Login throttling: a password cannot be guessed by trying again and again."""

from __future__ import annotations

from django.test import Client

from tests.factories import UserFactory


def test_after_five_wrong_passwords_the_login_is_locked_even_with_the_right_one(db):
    UserFactory(username="dana", roles=["agent"], password="right-password-123")
    browser = Client(REMOTE_ADDR="203.0.113.7")

    for _ in range(5):
        wrong = browser.post("/login/", {"username": "dana", "password": "guess"})
        assert wrong.status_code in (200, 429)
    locked = browser.post("/login/", {"username": "dana", "password": "right-password-123"})

    assert locked.status_code == 429
    assert "Too many attempts" in locked.content.decode()
    assert "_auth_user_id" not in browser.session


def test_the_lock_is_per_user_and_address_others_still_log_in(db):
    UserFactory(username="dana", roles=["agent"], password="right-password-123")
    UserFactory(username="eli", roles=["agent"], password="other-password-456")
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(5):
        attacker.post("/login/", {"username": "dana", "password": "guess"})

    colleague = Client(REMOTE_ADDR="198.51.100.4")
    same_user_elsewhere = colleague.post(
        "/login/", {"username": "dana", "password": "right-password-123"}
    )
    other_user = attacker.post("/login/", {"username": "eli", "password": "other-password-456"})

    assert same_user_elsewhere.status_code == 302
    assert other_user.status_code == 302


def test_behind_a_proxy_the_address_the_proxy_added_is_throttled(db, settings):
    settings.BEHIND_PROXY = True
    UserFactory(username="dana", roles=["agent"], password="right-password-123")
    proxy = "10.0.0.2"
    # The attacker writes a different first entry each time; the proxy appends theirs.
    for n in range(5):
        Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7").post(
            "/login/", {"username": "dana", "password": "guess"}
        )
    attacker = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.7")
    colleague = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.4")

    locked = attacker.post("/login/", {"username": "dana", "password": "right-password-123"})
    elsewhere = colleague.post("/login/", {"username": "dana", "password": "right-password-123"})

    assert locked.status_code == 429
    assert elsewhere.status_code == 302  # the proxy's other clients are not locked out
