"""Pages cost a fixed number of queries, however many tickets, posts or reviews exist."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory
from tickets.services import mention_ingest, reply_create, reply_submit, ticket_claim
from tickets.services.collab import ticket_invite, ticket_note_add

pytestmark = pytest.mark.django_db

# Session, user and groups (the roles), then each page's own reads.
INBOX_QUERIES = 7
INBOX_ROWS_QUERIES = 4
LEGAL_QUEUE_QUERIES = 8
TICKET_PAGE_QUERIES = 16
REVIEW_PAGE_QUERIES = 10


def _make_tickets(post, count, text="@NorthwindBank my card was declined"):
    return [post(text) for _ in range(count)]


def _in_review(post, agent, count):
    replies = []
    for ticket in _make_tickets(post, count, "@NorthwindBank mortgage rates?"):
        ticket_claim(ticket_id=ticket.pk, actor=agent)
        reply = reply_create(ticket_id=ticket.pk, actor=agent, body="Please DM us.")
        reply_submit(reply_id=reply.pk, actor=agent)
        replies.append(reply)
    return replies


@pytest.mark.parametrize("count", [2, 12])
def test_inbox_queries_do_not_grow_with_tickets(web, agent, post, count, django_assert_num_queries):
    for ticket in _make_tickets(post, count):
        if ticket.pk % 2:
            ticket_claim(ticket_id=ticket.pk, actor=agent)
    client = web(agent)

    with django_assert_num_queries(INBOX_QUERIES):
        response = client.get("/inbox/")

    assert response.content.decode().count('class="inbox-row') == count


@pytest.mark.parametrize("count", [2, 12])
def test_inbox_rows_fragment_queries_do_not_grow_with_tickets(
    web, agent, post, count, django_assert_num_queries
):
    _make_tickets(post, count)
    client = web(agent)

    with django_assert_num_queries(INBOX_ROWS_QUERIES):
        response = client.get("/inbox/rows/")

    assert response.content.decode().count('class="inbox-row') == count


@pytest.mark.parametrize("count", [1, 6])
def test_legal_queue_queries_do_not_grow_with_reviews(
    web, agent, lawyer, post, count, django_assert_num_queries
):
    _in_review(post, agent, count)
    client = web(lawyer)

    with django_assert_num_queries(LEGAL_QUEUE_QUERIES):
        response = client.get("/legal/")

    assert response.content.decode().count('class="inbox-row') == count


@pytest.mark.parametrize("size", [1, 5])
def test_ticket_page_queries_do_not_grow_with_the_thread(
    web, agent, agent2, channel, post, size, django_assert_num_queries
):
    ticket = post("@NorthwindBank mortgage question")
    for number in range(size - 1):
        mention_ingest(
            channel=channel,
            external_id=f"follow-{ticket.pk}-{number}",
            author={"external_id": ticket.customer.external_id, "handle": "x"},
            text=f"and another thing {number}",
            posted_at=ticket.posted_at,
            in_reply_to_external_id=ticket.mentions.first().external_id,
        )
    for _ in range(size):
        post("@NorthwindBank older", author={"external_id": ticket.customer.external_id})
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    reply_create(ticket_id=ticket.pk, actor=agent, body="Please DM us.")
    for number in range(size):
        ticket_note_add(ticket_id=ticket.pk, actor=agent, body=f"note {number}")
        ticket_invite(
            ticket_id=ticket.pk,
            actor=agent,
            invitee_id=UserFactory(username=f"helper{number}").pk,
            role="advise",
        )
    client = web(agent)

    with django_assert_num_queries(TICKET_PAGE_QUERIES):
        response = client.get(f"/tickets/{ticket.pk}/")

    assert response.content.decode().count('class="post post-post"') == size


@pytest.mark.parametrize("count", [1, 4])
def test_review_page_queries_do_not_grow_with_revisions(
    web, agent, lawyer, post, count, django_assert_num_queries
):
    ticket = post("@NorthwindBank mortgage?")
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    reply = reply_create(ticket_id=ticket.pk, actor=agent, body="draft 0")
    from tickets.services import reply_update

    for number in range(1, count):
        reply_update(reply_id=reply.pk, actor=agent, body=f"draft {number}")
    reply_submit(reply_id=reply.pk, actor=agent)
    client = web(lawyer)

    with django_assert_num_queries(REVIEW_PAGE_QUERIES):
        response = client.get(f"/legal/reviews/{reply.pk}/")

    assert response.status_code == 200
