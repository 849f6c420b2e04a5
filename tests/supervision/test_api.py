"""The supervision API: who may read it, what a mistake answers, and the shapes."""

from __future__ import annotations

import csv
import io

import pytest

from tests.supervision.conftest import LENDING, answer, customer_post

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/v1/metrics/latency/",
    "/api/v1/metrics/latency/export/",
    "/api/v1/metrics/breaches/",
    "/api/v1/metrics/staffing/",
    "/api/v1/metrics/wall/",
]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("role", ["agent", "lawyer"])
def test_only_supervisors_read_metrics(api, desk, path, role):
    response = api(desk[role]).get(path)

    assert response.status_code == 403
    assert response.json()["code"] == "role_required"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_metrics_need_a_login(api, path):
    assert api(None).get(path).status_code == 401


@pytest.mark.parametrize(
    "query",
    [
        {"since": "yesterday"},
        {"since": "2026-13-01"},
        {"until": "2026-02-30T10:00:00Z"},
        {"since": "2026-03-02", "until": "2026-03-01"},
        {"since": "2020-01-01", "until": "2026-01-01"},
        {"since": "2026-03-01\x00"},
        {"since": "9" * 500},
        {"group_by": "customer"},
        {"interval": "minute"},
    ],
)
def test_a_period_or_grouping_the_server_cannot_read_is_a_400(api, desk, query):
    response = api(desk["supervisor"]).get("/api/v1/metrics/latency/", query)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_filter"


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "x"}, {"limit": "²"}])
def test_a_bad_limit_is_a_400(api, desk, query):
    response = api(desk["supervisor"]).get("/api/v1/metrics/breaches/", query)

    assert response.status_code == 400 and response.json()["code"] == "invalid_filter"


def test_an_offset_written_with_a_bare_plus_still_reads(api, desk):
    # An unencoded '+' in a query string arrives as a space.
    response = api(desk["supervisor"]).get(
        "/api/v1/metrics/latency/?since=2026-03-01T10:00:00+02:00&until=2026-03-02"
    )

    assert response.status_code == 200
    assert response.json()["since"] == "2026-03-01T10:00:00+02:00"


def test_latency_of_real_answers_through_the_api(api, desk):
    quick = customer_post(desk["channel"], minutes_ago=3)
    answer(quick.pk, desk["agent"])
    late = customer_post(desk["channel"], LENDING, minutes_ago=200)
    answer(late.pk, desk["agent"], body="Rates: northwind.example/rates", lawyer=desk["lawyer"])
    customer_post(desk["channel"], minutes_ago=5)  # still inside its window: not counted

    body = (
        api(desk["supervisor"])
        .get("/api/v1/metrics/latency/", {"group_by": "reviewer", "interval": "hour"})
        .json()
    )

    assert body["count"] == 2
    assert body["within_window_pct"] == 50.0
    assert 170 <= body["p50"] <= 190  # the quick answer, posted 3 minutes ago
    assert body["p99"] >= 200 * 60
    reviewers = {group["label"]: group["count"] for group in body["groups"]}
    assert reviewers == {"lena": 1, "(no legal review)": 1}
    assert sum(item["count"] for item in body["series"]) == 2


def test_breaches_list_each_with_its_stages_and_masked_post(api, desk):
    late = customer_post(
        desk["channel"], "@NorthwindBank card 4111 1111 1111 1111 was declined", minutes_ago=90
    )
    answer(late.pk, desk["agent"])
    waiting = customer_post(desk["channel"], minutes_ago=120)

    body = api(desk["supervisor"]).get("/api/v1/metrics/breaches/").json()

    assert body["count"] == 2
    rows = {row["ticket"]: row for row in body["results"]}
    assert rows[waiting.pk]["outcome"] == "pending"
    assert rows[waiting.pk]["late_seconds"] >= 59 * 60
    answered = rows[late.pk]
    assert answered["outcome"] == "answered" and answered["within_window"] is False
    assert set(answered["stages"]) == {
        "connector",
        "queue",
        "drafting",
        "legal",
        "sending",
        "publishing",
    }
    assert "4111" not in answered["first_post"]
    assert "1111" in answered["first_post"]  # the mask keeps the last four


def test_csv_export_has_every_cycle_with_personal_data_masked(api, desk):
    hostile = customer_post(desk["channel"], '=HYPERLINK("http://evil") ssn 123-45-6789')
    answered = customer_post(desk["channel"], minutes_ago=3)
    answer(answered.pk, desk["agent"])

    response = api(desk["supervisor"]).get("/api/v1/metrics/latency/export/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="latency-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {int(row["ticket"]) for row in rows} == {hostile.pk, answered.pk}
    by_ticket = {int(row["ticket"]): row for row in rows}
    assert by_ticket[answered.pk]["outcome"] == "answered"
    assert by_ticket[answered.pk]["agent"] == "alice"
    text = by_ticket[hostile.pk]["first_post"]
    assert text.startswith("'=HYPERLINK")  # a spreadsheet shows it, never runs it
    assert "123-45-6789" not in text


def test_staffing_gives_every_hour_with_people_needed_and_active(api, desk):
    for minutes in (3, 4, 5):
        ticket = customer_post(desk["channel"], minutes_ago=minutes)
        answer(ticket.pk, desk["agent"])

    body = api(desk["supervisor"]).get("/api/v1/metrics/staffing/", {"target_pct": "80"}).json()

    assert body["target_pct"] == 80
    assert [row["hour"] for row in body["hours"]] == list(range(24))
    busy = [row for row in body["hours"] if row["arrivals_per_hour"]]
    assert busy and all(row["agents_needed"] >= 1 for row in busy)
    assert sum(row["agents_active"] for row in body["hours"]) > 0


def test_the_wall_api_gives_what_the_wall_shows(api, desk):
    customer_post(desk["channel"], "@NorthwindBank my ssn is 123-45-6789 help", minutes_ago=25)

    body = api(desk["supervisor"]).get("/api/v1/metrics/wall/", {"hours": "1"}).json()

    assert body["tickets"]["at_risk"] == 1
    (row,) = body["tickets"]["at_risk_list"]
    assert "123-45-6789" not in row["excerpt"]
    assert len(body["mentions"]["minutes"]) == 60
    assert body["mentions"]["last_hour_total"] == 1
    assert body["channels"][0]["name"] == "sim"


@pytest.mark.parametrize("role,status", [("supervisor", 200), ("lawyer", 200), ("agent", 403)])
def test_evidence_is_for_supervisors_and_legal(api, desk, role, status):
    ticket = customer_post(desk["channel"])

    response = api(desk[role]).get(f"/api/v1/tickets/{ticket.pk}/evidence/")

    assert response.status_code == status


def test_evidence_of_an_unknown_ticket_is_a_404(api, desk):
    response = api(desk["supervisor"]).get("/api/v1/tickets/999999/evidence/")

    assert response.status_code == 404 and response.json()["code"] == "ticket_not_found"


def test_evidence_downloads_as_a_json_file(api, desk):
    ticket = customer_post(desk["channel"])

    response = api(desk["lawyer"]).get(f"/api/v1/tickets/{ticket.pk}/evidence/?download=1")

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="evidence-ticket-{ticket.pk}.json"'
    )
    assert response.json()["ticket"]["id"] == ticket.pk


def test_the_schema_lists_the_supervision_endpoints(api):
    schema = api(None).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    for path in [*ENDPOINTS, "/api/v1/tickets/{ticket_id}/evidence/"]:
        assert "get" in schema["paths"][path], path


def test_percentiles_of_answers_on_whole_days_past_are_the_nearest_ranks(api, desk):
    """Answers whose posts fall on a whole day of the period come from that day's kept
    histogram (added up in the database on PostgreSQL), not from the cycles: their
    percentiles must be the same nearest ranks."""
    days_ago = 3 * 24 * 60
    for minutes in (days_ago, days_ago + 100):
        answer(customer_post(desk["channel"], minutes_ago=minutes).pk, desk["agent"])

    body = api(desk["supervisor"]).get("/api/v1/metrics/latency/").json()

    assert body["count"] == 2
    assert days_ago * 60 - 5 <= body["p50"] <= days_ago * 60 + 5
    assert body["p99"] >= (days_ago + 100) * 60 - 5  # the slower of the two, not the first
