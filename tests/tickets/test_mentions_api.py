"""POST /api/v1/mentions/: one mention per delivery, one ticket per conversation."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone

from connectors.models import SimulatedPost
from servicedesk.audit import audit_verify
from servicedesk.models import AuditEvent
from tests.conftest import mention_payload
from tickets.models import Customer, Mention, Ticket, WindowPolicy
from tickets.windows import windows_changed

pytestmark = pytest.mark.django_db

LENDING_QUESTION = "@NorthwindBank what is your 30-year fixed mortgage rate today?"
SAFE_ANSWER = "Hi! Rates change daily; please see northwind.example/rates or DM us."
# The simulated platform's windows from the default WindowPolicy rows.
SIM_NORMAL_MINUTES = 30
SIM_HIGH_MINUTES = 15


def _ago(minutes: float) -> datetime:
    return timezone.now() - timedelta(minutes=minutes)


def _post(client, payload):
    return client.post("/api/v1/mentions/", payload, format="json")


def _deadline(response_json) -> datetime:
    return datetime.fromisoformat(response_json["ticket"]["deadline"])


def _reply_and_send(client, ticket_id, body=SAFE_ANSWER):
    """Claim, draft and send: the ticket ends up `replied`. Returns the sent reply's JSON."""
    assert client.post(f"/api/v1/tickets/{ticket_id}/claim/").status_code == 200
    draft = client.post(f"/api/v1/tickets/{ticket_id}/replies/", {"body": body}, format="json")
    assert draft.status_code == 201, draft.content
    sent = client.post(f"/api/v1/replies/{draft.json()['id']}/send/")
    assert sent.status_code == 202, sent.content
    return client.get(f"/api/v1/replies/{draft.json()['id']}/").json()


# ---- new mentions and duplicates ---------------------------------------------------


def test_mention_new_delivery_is_created_with_a_ticket(api, agent, channel):
    response = _post(api(agent), mention_payload(external_id="x-100"))

    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True
    assert body["ticket_id"] == Ticket.objects.get().pk
    assert body["mention_id"] == Mention.objects.get().pk
    assert body["ticket"]["state"] == "open"


def test_mention_same_delivery_twice_is_one_mention_on_the_same_ticket(api, agent, channel):
    payload = mention_payload(external_id="x-dup")
    first = _post(api(agent), payload)

    second = _post(api(agent), payload)

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["created"] is False
    assert second.json()["ticket_id"] == first.json()["ticket_id"]
    assert second.json()["mention_id"] == first.json()["mention_id"]
    assert Mention.objects.count() == 1
    assert Ticket.objects.count() == 1


def test_mention_redelivery_with_changed_text_keeps_the_first_version(api, agent, channel):
    payload = mention_payload(external_id="x-edit", text="@NorthwindBank first words")
    _post(api(agent), payload)

    again = _post(api(agent), {**payload, "text": "@NorthwindBank edited words"})

    assert again.status_code == 200
    assert Mention.objects.get().text == "@NorthwindBank first words"


def test_mention_same_external_id_on_another_channel_is_a_new_mention(api, agent, channel):
    from tests.factories import ChannelFactory

    ChannelFactory(name="sim2", platform="simulated")
    first = _post(api(agent), mention_payload(external_id="shared-1"))

    other = _post(api(agent), mention_payload(external_id="shared-1", channel="sim2"))

    assert first.status_code == 201
    assert other.status_code == 201
    assert other.json()["ticket_id"] != first.json()["ticket_id"]
    assert Mention.objects.count() == 2


# ---- the answer window -------------------------------------------------------------


def test_mention_deadline_is_posted_at_plus_the_window(api, agent, channel):
    posted_at = _ago(7).replace(microsecond=123456)

    response = _post(api(agent), mention_payload(posted_at=posted_at.isoformat()))

    expected = posted_at + timedelta(minutes=SIM_NORMAL_MINUTES)
    assert response.json()["ticket"]["priority"] == "normal"
    assert _deadline(response.json()) == expected
    assert Ticket.objects.get().deadline == expected


def test_mention_deadline_counts_from_posted_at_in_any_offset(api, agent, channel):
    plus_two = dt_timezone(timedelta(hours=2))
    posted_at = _ago(20).astimezone(plus_two).replace(microsecond=0)

    response = _post(api(agent), mention_payload(posted_at=posted_at.isoformat()))

    assert _deadline(response.json()) == posted_at + timedelta(minutes=SIM_NORMAL_MINUTES)


def test_mention_deadline_of_an_old_post_is_already_past(api, agent, channel):
    posted_at = _ago(45).replace(microsecond=0)

    response = _post(api(agent), mention_payload(posted_at=posted_at.isoformat()))

    ticket = api(agent).get(f"/api/v1/tickets/{response.json()['ticket_id']}/").json()
    assert _deadline(response.json()) == posted_at + timedelta(minutes=SIM_NORMAL_MINUTES)
    assert ticket["breached"] is True


def test_mention_high_priority_post_gets_the_shorter_window(api, agent, channel):
    posted_at = _ago(1).replace(microsecond=0)

    response = _post(
        api(agent),
        mention_payload(
            text="@NorthwindBank my card was stolen, there is fraud on my account",
            posted_at=posted_at.isoformat(),
        ),
    )

    assert response.json()["ticket"]["priority"] == "high"
    assert _deadline(response.json()) == posted_at + timedelta(minutes=SIM_HIGH_MINUTES)


def test_mention_uses_a_changed_window_for_the_next_ticket(api, agent, channel):
    before = _post(api(agent), mention_payload(posted_at=_ago(2).isoformat())).json()
    WindowPolicy.objects.filter(platform="simulated", priority="normal").update(
        first_response_minutes=90
    )
    windows_changed()  # what saving in the admin does; other processes follow within 30 s
    posted_at = _ago(1).replace(microsecond=0)

    after = _post(api(agent), mention_payload(posted_at=posted_at.isoformat())).json()

    assert _deadline(after) == posted_at + timedelta(minutes=90)
    assert Ticket.objects.get(pk=before["ticket_id"]).deadline == _deadline(before)


# ---- follow-ups ----------------------------------------------------------------------


def test_mention_follow_up_joins_the_open_ticket_in_order(api, agent, channel):
    author = {"external_id": "cust-thread", "handle": "threader", "display_name": "T"}
    first = _post(
        api(agent),
        mention_payload(
            external_id="t-1",
            author=author,
            text="@NorthwindBank first question",
            posted_at=_ago(10).isoformat(),
        ),
    ).json()

    follow = _post(
        api(agent),
        mention_payload(
            external_id="t-2",
            author=author,
            text="@NorthwindBank anyone there?",
            posted_at=_ago(5).isoformat(),
            in_reply_to_external_id="t-1",
        ),
    )

    assert follow.status_code == 201
    assert follow.json()["ticket_id"] == first["ticket_id"]
    assert Ticket.objects.count() == 1
    detail = api(agent).get(f"/api/v1/tickets/{first['ticket_id']}/").json()
    assert [post["external_id"] for post in detail["thread"]] == ["t-1", "t-2"]
    assert [post["text"] for post in detail["thread"]] == [
        "@NorthwindBank first question",
        "@NorthwindBank anyone there?",
    ]
    assert detail["state"] == "open"


def test_mention_follow_up_on_open_ticket_keeps_the_original_deadline(api, agent, channel):
    first = _post(
        api(agent), mention_payload(external_id="d-1", posted_at=_ago(10).isoformat())
    ).json()

    follow = _post(
        api(agent),
        mention_payload(
            external_id="d-2", posted_at=_ago(1).isoformat(), in_reply_to_external_id="d-1"
        ),
    ).json()

    assert _deadline(follow) == _deadline(first)


def test_mention_reply_to_an_unknown_post_opens_a_new_ticket(api, agent, channel):
    first = _post(api(agent), mention_payload(external_id="u-1")).json()

    other = _post(
        api(agent), mention_payload(external_id="u-2", in_reply_to_external_id="never-seen")
    )

    assert other.status_code == 201
    assert other.json()["ticket_id"] != first["ticket_id"]
    assert Ticket.objects.count() == 2


def test_mention_follow_up_reopens_a_replied_ticket_with_a_new_deadline(api, agent, channel):
    first = _post(
        api(agent), mention_payload(external_id="r-1", posted_at=_ago(20).isoformat())
    ).json()
    _reply_and_send(api(agent), first["ticket_id"])
    assert Ticket.objects.get().state == "replied"
    follow_posted_at = _ago(1).replace(microsecond=0)

    follow = _post(
        api(agent),
        mention_payload(
            external_id="r-2",
            posted_at=follow_posted_at.isoformat(),
            in_reply_to_external_id="r-1",
        ),
    )

    assert follow.status_code == 201
    assert follow.json()["ticket_id"] == first["ticket_id"]
    detail = api(agent).get(f"/api/v1/tickets/{first['ticket_id']}/").json()
    assert detail["state"] == "open"
    expected = follow_posted_at + timedelta(minutes=SIM_NORMAL_MINUTES)
    assert datetime.fromisoformat(detail["deadline"]) == expected
    assert Ticket.objects.count() == 1


def test_mention_reopened_ticket_is_answered_again_in_the_new_thread(api, agent, channel):
    first = _post(api(agent), mention_payload(external_id="again-1")).json()
    _reply_and_send(api(agent), first["ticket_id"])
    _post(api(agent), mention_payload(external_id="again-2", in_reply_to_external_id="again-1"))

    second = _reply_and_send(api(agent), first["ticket_id"], body="Following up: fixed now.")

    assert second["state"] == "sent"
    detail = api(agent).get(f"/api/v1/tickets/{first['ticket_id']}/").json()
    assert detail["state"] == "replied"
    assert [reply["state"] for reply in detail["replies"]] == ["sent", "sent"]
    posts = SimulatedPost.objects.order_by("posted_at", "id")
    assert [post.in_reply_to_external_id for post in posts] == ["again-1", "again-2"]


def test_mention_answer_to_our_published_reply_joins_its_ticket(api, agent, channel):
    first = _post(api(agent), mention_payload(external_id="p-1")).json()
    reply = _reply_and_send(api(agent), first["ticket_id"])
    assert reply["external_id"] != ""

    follow = _post(
        api(agent),
        mention_payload(external_id="p-2", in_reply_to_external_id=reply["external_id"]),
    )

    assert follow.status_code == 201
    assert follow.json()["ticket_id"] == first["ticket_id"]
    assert Ticket.objects.count() == 1
    detail = api(agent).get(f"/api/v1/tickets/{first['ticket_id']}/").json()
    assert [post["external_id"] for post in detail["thread"]] == ["p-1", "p-2"]
    assert detail["state"] == "open"


def test_mention_follow_up_reopens_a_closed_ticket(api, agent, channel):
    first = _post(api(agent), mention_payload(external_id="c-1")).json()
    closed = api(agent).post(
        f"/api/v1/tickets/{first['ticket_id']}/close/", {"reason": "answered by DM"}, format="json"
    )
    assert closed.json()["state"] == "closed"

    follow = _post(api(agent), mention_payload(external_id="c-2", in_reply_to_external_id="c-1"))

    assert follow.json()["ticket_id"] == first["ticket_id"]
    detail = api(agent).get(f"/api/v1/tickets/{first['ticket_id']}/").json()
    assert detail["state"] == "open"
    assert detail["close_reason"] == ""
    assert detail["closed_at"] is None


def test_mention_follow_up_on_an_ignored_ticket_stays_ignored(api, agent, channel):
    first = _post(api(agent), mention_payload(external_id="i-1")).json()
    api(agent).post(
        f"/api/v1/tickets/{first['ticket_id']}/ignore/", {"reason": "spam"}, format="json"
    )

    follow = _post(api(agent), mention_payload(external_id="i-2", in_reply_to_external_id="i-1"))

    assert follow.status_code == 201
    assert follow.json()["ticket_id"] == first["ticket_id"]
    detail = api(agent).get(f"/api/v1/tickets/{first['ticket_id']}/").json()
    assert detail["state"] == "ignored"
    assert [post["external_id"] for post in detail["thread"]] == ["i-1", "i-2"]
    assert Ticket.objects.count() == 1


def test_mention_lending_follow_up_makes_the_open_ticket_regulated(api, agent, channel):
    first = _post(api(agent), mention_payload(external_id="l-1")).json()
    assert first["ticket"]["regulated"] is False

    follow = _post(
        api(agent),
        mention_payload(external_id="l-2", text=LENDING_QUESTION, in_reply_to_external_id="l-1"),
    )

    assert follow.json()["ticket"]["regulated"] is True
    detail = api(agent).get(f"/api/v1/tickets/{first['ticket_id']}/").json()
    assert detail["regulated"] is True
    assert {reason["source"] for reason in detail["regulated_reasons"]} == {"inbound"}
    assert "mortgage" in {reason["match"] for reason in detail["regulated_reasons"]}


# ---- who may post mentions ---------------------------------------------------------


@pytest.mark.parametrize("role_fixture", ["integration", "agent", "supervisor"])
def test_mention_ingest_is_allowed_for_feed_and_desk_workers(request, api, channel, role_fixture):
    user = request.getfixturevalue(role_fixture)

    response = _post(api(user), mention_payload())

    assert response.status_code == 201
    assert Mention.objects.count() == 1


@pytest.mark.parametrize("role_fixture", ["lawyer", "outsider"])
def test_mention_ingest_is_refused_for_other_roles(request, api, channel, role_fixture):
    user = request.getfixturevalue(role_fixture)

    response = _post(api(user), mention_payload())

    assert response.status_code == 403
    assert response.json()["code"] == "role_required"
    assert Mention.objects.count() == 0
    assert Ticket.objects.count() == 0


def test_mention_ingest_anonymous_is_refused(api, channel):
    response = _post(api(None), mention_payload())

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert Mention.objects.count() == 0


def test_mention_ingest_with_a_bad_token_is_refused(api, channel):
    client = api(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = _post(client, mention_payload())

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert Mention.objects.count() == 0


# ---- customers and audit -----------------------------------------------------------


def test_mention_same_author_with_a_new_handle_updates_the_customer(api, agent, channel):
    first = _post(
        api(agent),
        mention_payload(
            author={"external_id": "cust-renamed", "handle": "oldname", "display_name": "Old"}
        ),
    ).json()

    _post(
        api(agent),
        mention_payload(
            author={"external_id": "cust-renamed", "handle": "newname", "display_name": "New"}
        ),
    )

    customer = Customer.objects.get()
    assert (customer.handle, customer.display_name) == ("newname", "New")
    detail = api(agent).get(f"/api/v1/tickets/{first['ticket_id']}/").json()
    assert detail["customer"] == {
        "external_id": "cust-renamed",
        "handle": "newname",
        "display_name": "New",
    }


def test_mention_every_new_ticket_writes_a_triage_event_in_the_chain(api, agent, channel):
    first = _post(api(agent), mention_payload(text=LENDING_QUESTION)).json()
    second = _post(api(agent), mention_payload()).json()

    events = AuditEvent.objects.filter(action="ticket.triage").order_by("seq")

    assert [event.ticket_id for event in events] == [first["ticket_id"], second["ticket_id"]]
    assert [(event.from_state, event.to_state) for event in events] == [
        ("new", "open"),
        ("new", "open"),
    ]
    assert [event.actor for event in events] == [agent, agent]
    assert events[0].data["regulated"] is True
    assert events[0].data["mention_id"] == first["mention_id"]
    assert audit_verify().ok


def test_mention_duplicate_delivery_writes_no_second_event(api, agent, channel):
    payload = mention_payload()
    _post(api(agent), payload)
    count = AuditEvent.objects.count()

    _post(api(agent), payload)

    assert AuditEvent.objects.count() == count
    assert audit_verify().ok


def test_mention_reopen_by_follow_up_is_audited(api, agent, channel):
    first = _post(api(agent), mention_payload(external_id="a-1")).json()
    api(agent).post(
        f"/api/v1/tickets/{first['ticket_id']}/close/", {"reason": "done"}, format="json"
    )

    _post(api(agent), mention_payload(external_id="a-2", in_reply_to_external_id="a-1"))

    event = AuditEvent.objects.get(action="ticket.reopen")
    assert (event.ticket_id, event.from_state, event.to_state) == (
        first["ticket_id"],
        "closed",
        "open",
    )
    assert audit_verify().ok
