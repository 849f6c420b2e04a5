"""The supervision pages: who may open them, what a mistake shows, escaping, masking,
a broken connector made loud, and a fixed number of queries however much data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from connectors.models import ChannelAccount
from tests.factories import ChannelFactory
from tests.supervision.conftest import LENDING, answer, customer_post

pytestmark = pytest.mark.django_db

PAGES = ["/reports/", "/reports/staffing/", "/wall/", "/wall/panel/"]
HOSTILE = '@NorthwindBank <script>alert(1)</script><img src=x onerror="alert(2)"> help'


@pytest.fixture
def web(db):
    def _client(user) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return _client


@pytest.mark.parametrize("path", PAGES)
def test_supervisors_open_the_pages(web, desk, path):
    response = web(desk["supervisor"]).get(path)

    assert response.status_code == 200
    assert "Content-Security-Policy" in response.headers


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("role", ["agent", "lawyer"])
def test_others_get_a_403_page(web, desk, path, role):
    response = web(desk[role]).get(path)

    assert response.status_code == 403
    assert "This page is for supervisor users." in response.content.decode()


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_users_go_to_the_login_page(web, path):
    response = web(None).get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_period_the_server_cannot_read_shows_the_form_again_with_why(web, desk):
    response = web(desk["supervisor"]).get("/reports/", {"since": "last tuesday"})

    assert response.status_code == 400
    page = response.content.decode()
    assert "must be an ISO 8601 date" in page
    assert 'name="since"' in page


def test_the_reports_page_shows_the_figures_the_api_gives(web, api, desk):
    for minutes in (3, 4):
        ticket = customer_post(desk["channel"], minutes_ago=minutes)
        answer(ticket.pk, desk["agent"])

    page = web(desk["supervisor"]).get("/reports/", {"group_by": "channel"}).content.decode()
    figures = api(desk["supervisor"]).get("/api/v1/metrics/latency/").json()

    assert f'<span class="tile-value" id="fig-count">{figures["count"]}</span>' in page
    assert f'id="fig-p90" data-seconds="{figures["p90"]}"' in page
    assert '<svg class="chart chart-rows"' in page
    assert 'class="seg seg-connector"' in page  # posted 3-4 minutes before we saw it


def test_user_text_is_escaped_on_the_wall_and_in_the_reports(web, desk):
    customer_post(desk["channel"], HOSTILE, minutes_ago=70)  # breached: on both pages
    client = web(desk["supervisor"])

    for path in ("/wall/", "/reports/"):
        page = client.get(path).content.decode()
        assert "<script>alert" not in page, path
        assert 'onerror="alert' not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


def test_personal_data_is_masked_on_the_wall(web, desk):
    customer_post(
        desk["channel"], "@NorthwindBank card 4111 1111 1111 1111 blocked!", minutes_ago=40
    )

    page = web(desk["supervisor"]).get("/wall/").content.decode()

    assert "4111 1111 1111 1111" not in page
    assert "blocked!" in page


def test_a_broken_connector_is_loud_on_the_wall(web, desk):
    now = timezone.now()
    ChannelFactory(name="x-main", platform="x")
    ChannelAccount.objects.filter(name="x-main").update(
        last_success_at=now - timedelta(minutes=30),
        last_error="401 Unauthorized: token expired",
        last_error_at=now - timedelta(minutes=1),
    )

    page = web(desk["supervisor"]).get("/wall/").content.decode()

    alarm = page.split('class="wall-alarm"', 1)[1].split("</section>", 1)[0]
    assert "x-main" in alarm and "BROKEN" in alarm and "token expired" in alarm
    assert 'class="chan chan-broken" data-channel="x-main"' in page
    assert 'class="chan chan-ok" data-channel="sim"' in page


def test_the_wall_lists_what_is_at_risk_soonest_deadline_first(web, desk):
    later = customer_post(desk["channel"], minutes_ago=20)
    sooner = customer_post(desk["channel"], minutes_ago=25)
    customer_post(desk["channel"], minutes_ago=1)  # plenty of time: not at risk

    page = web(desk["supervisor"]).get("/wall/").content.decode()

    assert page.index(f'data-ticket="{sooner.pk}"') < page.index(f'data-ticket="{later.pk}"')
    assert page.count('data-ticket="') == 2


def test_the_wall_refreshes_itself(web, desk):
    page = web(desk["supervisor"]).get("/wall/").content.decode()

    assert 'hx-get="/wall/panel/"' in page and 'hx-trigger="every 15s"' in page
    assert "js/wall.js" in page


@pytest.mark.parametrize("path", ["/tickets/{id}/evidence/"])
@pytest.mark.parametrize("role,status", [("supervisor", 200), ("lawyer", 200), ("agent", 403)])
def test_the_evidence_page_is_for_supervisors_and_legal(web, desk, path, role, status):
    ticket = customer_post(desk["channel"], HOSTILE)

    response = web(desk[role]).get(path.format(id=ticket.pk))

    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        assert "&lt;script&gt;" in page and "<script>alert" not in page
        assert f"/api/v1/tickets/{ticket.pk}/evidence/?download=1" in page


# ---- a fixed number of queries ------------------------------------------------------------

# Session, user and roles, the bell of the navigation (reports pages), the database's
# clock, the latency record's bookmark (no beat in tests), then each page's own reads.
QUERIES = {
    # The figures (whole days' sums and histograms from the latency record; the part-days
    # at both ends of the default week counted from the cycles), the series, the
    # breaches; on PostgreSQL one more to size the report's sorts.
    "/reports/": {"postgresql": 33, "sqlite": 32},
    "/reports/staffing/": 14,
    # Cold: the usual rates, the minutes before this one and today's share are computed.
    "/wall/": 19,
    "/wall/panel/": 19,
}


def _arrange(desk, count):
    for index in range(count):
        regulated = index % 2 == 1
        ticket = customer_post(
            desk["channel"], LENDING if regulated else "@NorthwindBank help", minutes_ago=20 + index
        )
        if index % 3 == 0:
            answer(
                ticket.pk,
                desk["agent"],
                body="See northwind.example/rates or DM us.",
                lawyer=desk["lawyer"] if regulated else None,
            )


@pytest.mark.parametrize("count", [2, 12])
@pytest.mark.parametrize("path", list(QUERIES))
def test_pages_cost_the_same_queries_however_many_tickets(
    web, desk, path, count, django_assert_num_queries, refresh
):
    _arrange(desk, count)
    refresh()
    client = web(desk["supervisor"])

    expected = QUERIES[path]
    if isinstance(expected, dict):
        expected = expected[connection.vendor]

    with django_assert_num_queries(expected):
        response = client.get(path)

    assert response.status_code == 200


def test_the_evidence_page_costs_the_same_queries_however_long_the_story(
    web, desk, django_assert_num_queries, refresh
):
    short = customer_post(desk["channel"], minutes_ago=3)
    long = customer_post(desk["channel"], LENDING, minutes_ago=3)
    answer(short.pk, desk["agent"])
    reply = answer(
        long.pk, desk["agent"], body="See northwind.example/rates", lawyer=desk["lawyer"]
    )
    for index in range(3):
        customer_post(
            desk["channel"],
            f"@NorthwindBank and {index}",
            in_reply_to_external_id=reply.external_id,
        )
    refresh()
    client = web(desk["supervisor"])

    for ticket in (short, long):
        with django_assert_num_queries(EVIDENCE_QUERIES):
            response = client.get(f"/tickets/{ticket.pk}/evidence/")
        assert response.status_code == 200


EVIDENCE_QUERIES = 20


def test_a_wall_refresh_within_the_minute_reuses_what_did_not_change(web, desk, refresh):
    from django.test.utils import CaptureQueriesContext

    from tickets.clock import db_now

    _arrange(desk, 4)
    refresh()
    client = web(desk["supervisor"])
    for _ in range(3):  # again if the minute turned between the two refreshes
        minute = db_now().replace(second=0, microsecond=0)
        client.get("/wall/panel/")
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/wall/panel/")
        if db_now().replace(second=0, microsecond=0) == minute:
            break

    # No usual rates, no earlier minutes, no share of today: this minute's posts only.
    assert len(queries) == 16
    assert response.status_code == 200


def test_supervisors_find_the_wall_and_reports_in_the_navigation(web, desk):
    supervisor = web(desk["supervisor"]).get("/inbox/").content.decode()
    agent = web(desk["agent"]).get("/inbox/").content.decode()

    assert 'href="/wall/"' in supervisor and 'href="/reports/"' in supervisor
    assert 'href="/wall/"' not in agent and 'href="/reports/"' not in agent
