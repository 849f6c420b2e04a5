"""The customer's clock: the window policy, cut to the platform's own reply window."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.supervision.conftest import customer_post
from tickets.models import PlatformReplyWindow, WindowPolicy
from tickets.windows import windows_changed

pytestmark = pytest.mark.django_db


@pytest.fixture
def hour_windows(db):
    WindowPolicy.objects.filter(platform="simulated").update(first_response_minutes=60)
    windows_changed()


def test_a_platform_reply_window_shorter_than_the_policy_sets_the_deadline(desk, hour_windows):
    PlatformReplyWindow.objects.create(platform="simulated", max_minutes=20, note="DM window")
    windows_changed()  # what saving in the admin does

    ticket = customer_post(desk["channel"], minutes_ago=1)

    assert ticket.deadline - ticket.posted_at == timedelta(minutes=20)


def test_a_longer_platform_window_leaves_the_policy_alone(desk, hour_windows):
    PlatformReplyWindow.objects.create(platform="simulated", max_minutes=24 * 60)
    windows_changed()

    ticket = customer_post(desk["channel"], minutes_ago=1)

    assert ticket.deadline - ticket.posted_at == timedelta(minutes=60)


def test_another_platforms_window_does_not_apply(desk, hour_windows):
    PlatformReplyWindow.objects.create(platform="instagram", max_minutes=5)
    windows_changed()

    ticket = customer_post(desk["channel"], minutes_ago=1)

    assert ticket.deadline - ticket.posted_at == timedelta(minutes=60)
