"""The wall and the reports in real headless Chromium (Debian's /usr/bin/chromium, driven
by Playwright) against a live server: the charts render, the numbers are the API's, the
wall refreshes itself, and no page breaks the Content-Security-Policy.

Data is arranged before a page is opened and checked after (on SQLite the live server
shares the test's database connection). Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from tests.factories import ChannelFactory, UserFactory
from tests.supervision.conftest import LENDING, answer, customer_post
from tickets.cycles import cycles_refresh
from tickets.models import WindowPolicy
from tickets.windows import windows_changed

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(settings.BASE_DIR) / "artifacts" / "screenshots"
TV = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1366, "height": 860}


@pytest.fixture
def chromium(transactional_db):
    # Playwright's sync API runs an event loop in this thread; Django then hands the
    # thread other connection objects unless async-unsafe calls are allowed.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def console_errors():
    return []


@pytest.fixture
def supervisor_page(chromium, live_server, console_errors):
    contexts = []

    def _open(viewport=LAPTOP):
        context = chromium.new_context(viewport=viewport, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: console_errors.append(message.text) if message.type == "error" else 0,
        )
        page.on("pageerror", lambda error: console_errors.append(str(error)))
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill("sue")
        page.get_by_label("Password").fill("pw")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        return page

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def busy_desk(db):
    """A morning on the desk: answers in and out of the window, tickets at risk, one
    breached, a lawyer's review, a broken connector."""
    WindowPolicy.objects.filter(platform="simulated").update(first_response_minutes=60)
    windows_changed()
    channel = ChannelFactory()
    agent = UserFactory(username="alice", roles=["agent"])
    lawyer = UserFactory(username="lena", roles=["legal"])
    UserFactory(username="sue", first_name="Sue", roles=["supervisor"])
    for minutes in (3, 5, 8):
        answer(customer_post(channel, minutes_ago=minutes).pk, agent)
    late = customer_post(channel, LENDING, minutes_ago=75)
    answer(late.pk, agent, body="Rates: northwind.example/rates or DM us.", lawyer=lawyer)
    for minutes in (35, 50, 70):
        customer_post(
            channel,
            "@NorthwindBank <b>still</b> waiting, card 4111 1111 1111 1111",
            minutes_ago=minutes,
        )
    broken = ChannelFactory(name="x-main", platform="x")
    broken.last_error = "401 Unauthorized"
    broken.last_error_at = timezone.now()
    broken.last_success_at = timezone.now() - timedelta(hours=1)
    broken.save(update_fields=["last_error", "last_error_at", "last_success_at"])
    cycles_refresh()


def _api(page, live_server, path):
    response = page.request.get(f"{live_server.url}{path}")
    assert response.status == 200, path
    return response.json()


def test_the_wall_shows_the_apis_numbers_draws_its_chart_and_refreshes(
    busy_desk, supervisor_page, live_server, console_errors, settings
):
    settings.WALL_REFRESH_SECONDS = 5
    page = supervisor_page(TV)
    page.goto(f"{live_server.url}/wall/")
    figures = _api(page, live_server, "/api/v1/metrics/wall/")

    assert page.locator("#wall-breached").inner_text() == str(figures["tickets"]["breached"])
    assert page.locator("#wall-at-risk").inner_text() == str(figures["tickets"]["at_risk"])
    assert page.locator("#wall-legal").inner_text() == str(figures["legal"]["length"])
    today = figures["within_window"]["today"]["pct"]
    assert page.locator("#wall-today").inner_text() == f"{today:g}%"
    assert page.locator("#wall-risk-table tbody tr").count() == len(
        figures["tickets"]["at_risk_list"]
    )
    chart = page.locator("#wall-chart svg")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box["width"] > 400 and box["height"] > 100
    posts = sum(item["total"] for item in figures["mentions"]["minutes"])
    drawn = page.evaluate(
        "() => Array.from(document.querySelectorAll('#wall-chart rect.seg'))"
        ".reduce((sum, r) => sum + Number(r.dataset.value), 0)"
    )
    assert drawn == posts
    alarm = page.locator(".wall-alarm")
    assert "x-main" in alarm.inner_text() and "BROKEN" in alarm.inner_text()
    assert "4111 1111 1111 1111" not in page.content()
    assert page.locator("#wall-risk-table b").count() == 0  # post text shown as text
    page.screenshot(path=str(SCREENSHOTS / "wall.png"))

    stamp = page.locator(".wall-foot time").get_attribute("datetime")
    page.wait_for_function(
        "(old) => document.querySelector('.wall-foot time').getAttribute('datetime') !== old",
        arg=stamp,
        timeout=15_000,
    )
    assert page.locator("#wall-status").inner_text().startswith("Live")
    assert console_errors == []


def test_the_reports_chart_and_figures_match_the_api_and_the_csv_downloads(
    busy_desk, supervisor_page, live_server, console_errors
):
    page = supervisor_page()
    page.goto(f"{live_server.url}/reports/?group_by=channel")
    figures = _api(page, live_server, "/api/v1/metrics/latency/?group_by=channel")

    assert page.locator("#fig-count").inner_text() == str(figures["count"])
    for name in ("p50", "p90", "p99"):
        assert page.locator(f"#fig-{name}").get_attribute("data-seconds") == str(figures[name])
    assert page.locator("#fig-within").inner_text() == f"{figures['within_window_pct']:g}%"
    assert page.locator("#groups-table tbody tr").count() == len(figures["groups"])
    chart = page.locator("#stage-chart svg")
    assert chart.is_visible()
    # The overall bar: its segments are the API's mean seconds per stage.
    drawn = page.evaluate(
        "() => { const out = {}; const svg = document.querySelector('#stage-chart svg');"
        " const rows = svg.querySelectorAll('rect.seg'); rows.forEach(r => {"
        " if (!(r.dataset.key in out)) out[r.dataset.key] = Number(r.dataset.value); });"
        " return out; }"
    )
    expected = {
        item["stage"]: item["mean_seconds"] for item in figures["stages"] if item["mean_seconds"]
    }
    assert drawn == expected
    # The late answer, and the post waiting 70 minutes (the 35- and 50-minute ones are not late).
    assert page.locator("#breaches-table tbody tr").count() == 2
    page.screenshot(path=str(SCREENSHOTS / "reports.png"), full_page=True)

    with page.expect_download() as download:
        page.locator("#csv-link").click()
    text = Path(download.value.path()).read_text()
    assert text.splitlines()[0].startswith("ticket,cycle,channel")
    assert len(text.splitlines()) == 1 + 7  # every cycle of the period
    assert "4111 1111 1111 1111" not in text
    assert console_errors == []
