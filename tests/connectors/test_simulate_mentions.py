"""The demo's stream: realistic posts become tickets, and with --beat the periodic
checks a production beat would run (window warnings, the latency record) run too."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.factories import ChannelFactory, UserFactory
from tickets.models import Notification, SupervisionState, Ticket
from tickets.services import ticket_claim

pytestmark = pytest.mark.django_db


def test_the_stream_opens_tickets_from_simulated_posts():
    ChannelFactory(name="sim", platform="simulated")
    out = io.StringIO()

    call_command("simulate_mentions", "--count", "3", "--interval", "0", "--seed", "7", stdout=out)

    assert Ticket.objects.count() >= 2  # a redelivery or follow-up joins an earlier ticket
    assert out.getvalue().count("mention -> ticket #") == 3


def test_with_beat_the_window_checks_and_latency_record_run_between_posts():
    channel = ChannelFactory(name="sim", platform="simulated")
    agent = UserFactory(roles=["agent"])
    call_command("simulate_mentions", "--count", "1", "--interval", "0", stdout=io.StringIO())
    ticket = Ticket.objects.get()
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    now = timezone.now()
    Ticket.objects.filter(pk=ticket.pk).update(
        posted_at=now - timedelta(minutes=9), deadline=now + timedelta(minutes=1)
    )
    assert channel.pk and not Notification.objects.filter(ticket=ticket).exists()

    call_command(
        "simulate_mentions", "--count", "2", "--interval", "0", "--beat", stdout=io.StringIO()
    )

    assert Notification.objects.filter(recipient=agent, ticket=ticket).exists()
    assert SupervisionState.objects.get().cycles_refreshed_at is not None


def test_the_stream_needs_its_channel():
    with pytest.raises(CommandError, match="No channel account 'sim'"):
        call_command("simulate_mentions", "--count", "1")
