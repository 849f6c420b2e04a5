"""Configuring channel accounts from the command line: checked keys, encrypted secrets."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from connectors.models import ChannelAccount

pytestmark = pytest.mark.django_db


def test_channel_add_stores_settings_and_encrypts_secrets(capsys):
    call_command(
        "channel_add",
        "generic",
        "partner",
        "--set",
        "secret=top-secret-value",
        "--set",
        "base_url=https://partner.example",
    )

    channel = ChannelAccount.objects.get(name="partner")
    assert channel.platform == "generic"
    assert channel.settings == {"base_url": "https://partner.example"}
    assert channel.secrets == {"secret": "top-secret-value"}
    assert "top-secret-value" not in channel.secrets_encrypted
    out = capsys.readouterr().out
    assert "top-secret-value" not in out
    assert "secret" in out


def test_channel_add_refuses_unknown_and_missing_keys():
    with pytest.raises(CommandError, match="Unknown setting.*colour"):
        call_command("channel_add", "generic", "p", "--set", "secret=x", "--set", "colour=red")
    with pytest.raises(CommandError, match="Missing required setting.*secret"):
        call_command("channel_add", "generic", "p")
    with pytest.raises(CommandError, match="KEY=VALUE"):
        call_command("channel_add", "generic", "p", "--set", "secret")
    assert ChannelAccount.objects.filter(name="p").count() == 0


def test_channel_add_updates_an_account_keeping_its_other_secrets():
    call_command("channel_add", "generic", "p", "--set", "secret=one")
    call_command("channel_add", "generic", "p", "--set", "previous_secret=zero")

    assert ChannelAccount.objects.get(name="p").secrets == {
        "secret": "one",
        "previous_secret": "zero",
    }


def test_channel_add_refuses_changing_an_accounts_platform():
    call_command("channel_add", "generic", "p", "--set", "secret=one")

    with pytest.raises(CommandError, match="already a generic account"):
        call_command("channel_add", "simulated", "p")
