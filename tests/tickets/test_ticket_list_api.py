"""GET /api/v1/tickets/ (the inbox) and the cost of the list endpoints."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import ChannelFactory
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

LENDING_QUESTION = "@NorthwindBank what is your 30-year fixed mortgage rate today?"
SAFE_ANSWER = "Hi! Rates change daily; please see northwind.example/rates or DM us."


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def _set_deadline(ticket_id: int, delta: timedelta) -> None:
    Ticket.objects.filter(pk=ticket_id).update(deadline=timezone.now() + delta)


def _draft(client, ticket_id, body=SAFE_ANSWER) -> int:
    response = client.post(f"/api/v1/tickets/{ticket_id}/replies/", {"body": body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


# ---- order ---------------------------------------------------------------------------


def test_ticket_list_default_order_is_soonest_deadline_first(api, agent, ingest):
    later = ingest()["ticket_id"]
    soonest = ingest()["ticket_id"]
    middle = ingest()["ticket_id"]
    _set_deadline(later, timedelta(minutes=30))
    _set_deadline(soonest, timedelta(minutes=-5))
    _set_deadline(middle, timedelta(minutes=10))

    response = api(agent).get("/api/v1/tickets/")

    assert _ids(response) == [soonest, middle, later]
    assert response.json()["count"] == 3


def test_ticket_list_equal_deadlines_keep_ticket_order(api, agent, ingest):
    first, second = ingest()["ticket_id"], ingest()["ticket_id"]
    same = timezone.now() + timedelta(minutes=20)
    Ticket.objects.filter(pk__in=[first, second]).update(deadline=same)

    assert _ids(api(agent).get("/api/v1/tickets/")) == [first, second]


# ---- filters -------------------------------------------------------------------------


@pytest.fixture
def states(api, agent, ingest, claimed_ticket):
    """One ticket in each of open, in_progress, closed and ignored; deadlines in that order."""
    client = api(agent)
    opened = ingest()["ticket_id"]
    working = claimed_ticket()
    closed = ingest()["ticket_id"]
    client.post(f"/api/v1/tickets/{closed}/close/", {"reason": "dup"}, format="json")
    ignored = ingest()["ticket_id"]
    client.post(f"/api/v1/tickets/{ignored}/ignore/", {"reason": "spam"}, format="json")
    for minutes, ticket_id in enumerate((opened, working, closed, ignored), start=1):
        _set_deadline(ticket_id, timedelta(minutes=minutes))
    return {"open": opened, "in_progress": working, "closed": closed, "ignored": ignored}


def test_ticket_list_filters_by_one_state(api, agent, states):
    response = api(agent).get("/api/v1/tickets/?state=in_progress")

    assert _ids(response) == [states["in_progress"]]
    assert response.json()["results"][0]["state"] == "in_progress"


def test_ticket_list_filters_by_a_comma_list_of_states(api, agent, states):
    response = api(agent).get("/api/v1/tickets/?state=open,closed")

    assert _ids(response) == [states["open"], states["closed"]]


def test_ticket_list_state_list_tolerates_spaces(api, agent, states):
    response = api(agent).get("/api/v1/tickets/?state=ignored,%20open")

    assert _ids(response) == [states["open"], states["ignored"]]


def test_ticket_list_without_filters_shows_every_state(api, agent, states):
    response = api(agent).get("/api/v1/tickets/")

    assert _ids(response) == [
        states["open"],
        states["in_progress"],
        states["closed"],
        states["ignored"],
    ]


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False)])
def test_ticket_list_filters_regulated(api, agent, ingest, value, expected):
    regulated = ingest(text=LENDING_QUESTION)["ticket_id"]
    plain = ingest()["ticket_id"]

    response = api(agent).get(f"/api/v1/tickets/?regulated={value}")

    assert _ids(response) == [regulated if expected else plain]
    assert [item["regulated"] for item in response.json()["results"]] == [expected]


def test_ticket_list_filters_by_channel_name(api, agent, channel, ingest):
    ChannelFactory(name="x-main", platform="x", display_name="@NorthwindBank")
    on_sim = ingest()["ticket_id"]
    on_x = ingest(channel="x-main")["ticket_id"]

    only_x = api(agent).get("/api/v1/tickets/?channel=x-main")
    only_sim = api(agent).get("/api/v1/tickets/?channel=sim")
    nowhere = api(agent).get("/api/v1/tickets/?channel=nowhere")

    assert _ids(only_x) == [on_x]
    assert only_x.json()["results"][0]["channel"] == "x-main"
    assert only_x.json()["results"][0]["platform"] == "x"
    assert _ids(only_sim) == [on_sim]
    assert _ids(nowhere) == []


@pytest.fixture
def assigned(api, agent, agent2, ingest):
    """Tickets held by alice, by bob, and by nobody (deadlines in that order)."""
    mine, bobs, nobodys = (ingest()["ticket_id"] for _ in range(3))
    api(agent).post(f"/api/v1/tickets/{mine}/claim/")
    api(agent2).post(f"/api/v1/tickets/{bobs}/claim/")
    for minutes, ticket_id in enumerate((mine, bobs, nobodys), start=1):
        _set_deadline(ticket_id, timedelta(minutes=minutes))
    return {"alice": mine, "bob": bobs, "nobody": nobodys}


def test_ticket_list_assignee_me_is_the_callers_tickets(api, agent, agent2, assigned):
    as_alice = api(agent).get("/api/v1/tickets/?assignee=me")
    as_bob = api(agent2).get("/api/v1/tickets/?assignee=me")

    assert _ids(as_alice) == [assigned["alice"]]
    assert as_alice.json()["results"][0]["assignee"] == "alice"
    assert _ids(as_bob) == [assigned["bob"]]


def test_ticket_list_assignee_none_is_the_unclaimed_tickets(api, agent, assigned):
    response = api(agent).get("/api/v1/tickets/?assignee=none")

    assert _ids(response) == [assigned["nobody"]]
    assert response.json()["results"][0]["assignee"] is None


def test_ticket_list_assignee_by_username(api, agent, assigned):
    by_bob = api(agent).get("/api/v1/tickets/?assignee=bob")
    by_stranger = api(agent).get("/api/v1/tickets/?assignee=nosuchuser")

    assert _ids(by_bob) == [assigned["bob"]]
    assert _ids(by_stranger) == []


def test_ticket_list_filters_combine(api, agent, ingest):
    regulated_mine = ingest(text=LENDING_QUESTION)["ticket_id"]
    ingest(text=LENDING_QUESTION)
    plain_mine = ingest()["ticket_id"]
    for ticket_id in (regulated_mine, plain_mine):
        api(agent).post(f"/api/v1/tickets/{ticket_id}/claim/")

    response = api(agent).get("/api/v1/tickets/?assignee=me&regulated=true&state=in_progress")

    assert _ids(response) == [regulated_mine]


def test_ticket_list_breached_is_past_deadline_and_unanswered(api, agent, ingest, claimed_ticket):
    client = api(agent)
    late_open = ingest()["ticket_id"]
    late_working = claimed_ticket()
    late_replied = claimed_ticket()
    client.post(f"/api/v1/replies/{_draft(client, late_replied)}/send/")
    late_closed = ingest()["ticket_id"]
    client.post(f"/api/v1/tickets/{late_closed}/close/", {"reason": "dup"}, format="json")
    in_time = ingest()["ticket_id"]
    for minutes, ticket_id in enumerate((late_open, late_working, late_replied, late_closed)):
        _set_deadline(ticket_id, timedelta(minutes=-10 + minutes))
    _set_deadline(in_time, timedelta(minutes=10))

    breached = client.get("/api/v1/tickets/?breached=true")
    not_breached = client.get("/api/v1/tickets/?breached=false")

    assert _ids(breached) == [late_open, late_working]
    assert [item["breached"] for item in breached.json()["results"]] == [True, True]
    assert _ids(not_breached) == [late_replied, late_closed, in_time]
    assert [item["breached"] for item in not_breached.json()["results"]] == [False, False, False]


# ---- fields --------------------------------------------------------------------------


def test_ticket_list_seconds_left_counts_down_to_the_deadline(api, agent, ingest, monkeypatch):
    now = timezone.now().replace(microsecond=0)
    ahead, behind = ingest()["ticket_id"], ingest()["ticket_id"]
    Ticket.objects.filter(pk=ahead).update(deadline=now + timedelta(seconds=600))
    Ticket.objects.filter(pk=behind).update(deadline=now - timedelta(seconds=90))
    monkeypatch.setattr(timezone, "now", lambda: now)

    results = api(agent).get("/api/v1/tickets/").json()["results"]

    assert [(item["id"], item["seconds_left"], item["breached"]) for item in results] == [
        (behind, -90, True),
        (ahead, 600, False),
    ]


def test_ticket_list_answered_ticket_past_its_deadline_is_not_breached(api, agent, claimed_ticket):
    client = api(agent)
    ticket_id = claimed_ticket()
    client.post(f"/api/v1/replies/{_draft(client, ticket_id)}/send/")
    _set_deadline(ticket_id, timedelta(minutes=-30))

    item = client.get("/api/v1/tickets/").json()["results"][0]

    assert item["state"] == "replied"
    assert item["seconds_left"] < 0
    assert item["breached"] is False


def test_ticket_list_item_shows_the_customer_and_triage(api, agent, ingest):
    result = ingest(
        text="@NorthwindBank my card was stolen, this is terrible",
        author={"external_id": "c-77", "handle": "mia", "display_name": "Mia R."},
    )

    item = api(agent).get("/api/v1/tickets/").json()["results"][0]

    assert item["id"] == result["ticket_id"]
    assert item["customer"] == {"external_id": "c-77", "handle": "mia", "display_name": "Mia R."}
    assert (item["priority"], item["sentiment"], item["regulated"]) == (
        "high",
        "negative",
        False,
    )
    assert (item["state"], item["assignee"], item["channel"]) == ("open", None, "sim")


def test_ticket_list_excerpt_is_the_first_posts_first_140_characters(api, agent, ingest):
    first_text = "@NorthwindBank " + "é" * 100 + " " + "x" * 100
    first = ingest(
        external_id="ex-1",
        text=first_text,
        posted_at=(timezone.now() - timedelta(minutes=10)).isoformat(),
    )
    ingest(
        external_id="ex-2",
        text="@NorthwindBank second post, should not be the excerpt",
        in_reply_to_external_id="ex-1",
    )

    item = api(agent).get("/api/v1/tickets/").json()["results"][0]

    assert item["id"] == first["ticket_id"]
    assert item["excerpt"] == first_text[:140]
    assert len(item["excerpt"]) == 140


def test_ticket_list_short_post_excerpt_is_the_whole_text(api, agent, ingest):
    ingest(text="@NorthwindBank hi")

    item = api(agent).get("/api/v1/tickets/").json()["results"][0]

    assert item["excerpt"] == "@NorthwindBank hi"


# ---- pagination ----------------------------------------------------------------------


def test_ticket_list_paginates_with_limit_and_offset(api, agent, ingest):
    ids = [ingest()["ticket_id"] for _ in range(5)]
    for minutes, ticket_id in enumerate(ids, start=1):
        _set_deadline(ticket_id, timedelta(minutes=minutes))

    page = api(agent).get("/api/v1/tickets/?limit=2&offset=2")
    last = api(agent).get("/api/v1/tickets/?limit=2&offset=4")
    beyond = api(agent).get("/api/v1/tickets/?limit=2&offset=10")

    assert page.json()["count"] == 5
    assert _ids(page) == ids[2:4]
    assert page.json()["next"].endswith("limit=2&offset=4")
    assert page.json()["previous"].endswith("limit=2")
    assert _ids(last) == ids[4:]
    assert last.json()["next"] is None
    assert _ids(beyond) == []
    assert beyond.json()["count"] == 5


def test_ticket_list_count_reflects_the_filters(api, agent, ingest):
    ingest(text=LENDING_QUESTION)
    ingest()
    ingest()

    response = api(agent).get("/api/v1/tickets/?regulated=false&limit=1")

    assert response.json()["count"] == 2
    assert len(response.json()["results"]) == 1


# ---- query counts --------------------------------------------------------------------


def _varied_tickets(api, agent, agent2, ingest, count: int) -> None:
    """Tickets on two channels by different customers, some claimed, some with follow-ups."""
    ChannelFactory(name="x-main", platform="x")
    for number in range(count):
        result = ingest(
            channel="x-main" if number % 2 else "sim",
            text=LENDING_QUESTION if number % 3 == 0 else "@NorthwindBank help please",
        )
        if number % 3 == 1:
            api(agent if number % 2 else agent2).post(
                f"/api/v1/tickets/{result['ticket_id']}/claim/"
            )
        if number % 4 == 0:
            ingest(
                channel="x-main" if number % 2 else "sim",
                in_reply_to_external_id=Ticket.objects.get(pk=result["ticket_id"])
                .mentions.get()
                .external_id,
            )


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_ticket_list_query_count_does_not_grow_with_tickets(
    api, agent, agent2, ingest, django_assert_num_queries
):
    client = api(agent)
    _varied_tickets(api, agent, agent2, ingest, 3)
    queries_for_three = _queries(client, "/api/v1/tickets/")
    _varied_tickets(api, agent, agent2, ingest, 7)
    assert Ticket.objects.count() == 10

    with django_assert_num_queries(queries_for_three):
        response = client.get("/api/v1/tickets/")

    assert len(response.json()["results"]) == 10


def test_ticket_list_filtered_query_count_does_not_grow_with_tickets(
    api, agent, agent2, ingest, django_assert_num_queries
):
    client = api(agent)
    path = "/api/v1/tickets/?state=open,in_progress&regulated=true&assignee=none&breached=false"
    _varied_tickets(api, agent, agent2, ingest, 3)
    queries_for_three = _queries(client, path)
    _varied_tickets(api, agent, agent2, ingest, 9)

    with django_assert_num_queries(queries_for_three):
        response = client.get(path)

    assert response.json()["count"] > 1


def _replies_in_review(api, agent, lawyer, claimed_ticket, count: int) -> list[int]:
    """Regulated replies waiting for legal; every other one already sent back once."""
    client = api(agent)
    reply_ids = []
    for number in range(count):
        ticket_id = claimed_ticket(LENDING_QUESTION)
        reply_id = _draft(client, ticket_id)
        client.post(f"/api/v1/replies/{reply_id}/submit/")
        if number % 2:
            api(lawyer).post(
                f"/api/v1/replies/{reply_id}/request-changes/",
                {"comment": "Add the disclosure."},
                format="json",
            )
            client.patch(
                f"/api/v1/replies/{reply_id}/",
                {"body": SAFE_ANSWER + " Terms apply."},
                format="json",
            )
            client.post(f"/api/v1/replies/{reply_id}/submit/")
        reply_ids.append(reply_id)
    return reply_ids


def test_review_queue_query_count_does_not_grow_with_items(
    api, agent, lawyer, claimed_ticket, django_assert_num_queries
):
    client = api(lawyer)
    _replies_in_review(api, agent, lawyer, claimed_ticket, 2)
    queries_for_two = _queries(client, "/api/v1/reviews/")
    _replies_in_review(api, agent, lawyer, claimed_ticket, 6)

    with django_assert_num_queries(queries_for_two):
        response = client.get("/api/v1/reviews/")

    assert response.json()["count"] == 8
    assert sum(len(item["reviews"]) for item in response.json()["results"]) == 4


def test_review_queue_item_shows_the_customers_post(api, agent, lawyer, claimed_ticket):
    _replies_in_review(api, agent, lawyer, claimed_ticket, 1)

    item = api(lawyer).get("/api/v1/reviews/").json()["results"][0]

    assert item["ticket_summary"]["excerpt"] == LENDING_QUESTION
    assert item["ticket_summary"]["regulated"] is True
    assert item["body"] == SAFE_ANSWER


# ---- who may read the list -----------------------------------------------------------


@pytest.mark.parametrize("role_fixture", ["agent", "lawyer", "supervisor"])
def test_ticket_list_is_for_desk_roles(request, api, ingest, role_fixture):
    ticket_id = ingest()["ticket_id"]

    response = api(request.getfixturevalue(role_fixture)).get("/api/v1/tickets/")

    assert _ids(response) == [ticket_id]


@pytest.mark.parametrize("role_fixture", ["outsider", "integration"])
def test_ticket_list_is_refused_to_other_users(request, api, ingest, role_fixture):
    ingest()

    response = api(request.getfixturevalue(role_fixture)).get("/api/v1/tickets/")

    assert response.status_code == 403
    assert response.json()["code"] == "role_required"
    assert "results" not in response.json()


def test_ticket_list_anonymous_is_not_authenticated(api, ingest):
    ingest()

    response = api(None).get("/api/v1/tickets/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
