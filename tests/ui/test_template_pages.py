"""Templates on the ticket page: the picker, the holding reply, and the review diff."""

from __future__ import annotations

import pytest

from approvals import template_services
from approvals.models import Branch
from connectors.models import SimulatedPost
from tickets.models import Reply, Ticket
from tickets.services import reply_create, reply_submit, ticket_claim

LENDING = "@NorthwindBank what is your 30-year fixed mortgage rate today?"


@pytest.fixture
def templates(db, lawyer, lawyer2):
    Branch.objects.create(name="Harbor Street", phone="1-800-555-0142")

    def approved(name, body, purpose="answer"):
        version = template_services.template_create(
            actor=lawyer, name=name, body=body, purpose=purpose
        )
        return template_services.template_approve(template_id=version.template_id, actor=lawyer2)

    return {
        "rates": approved(
            "Rates", "Hi {first_name}! Rates change daily; visit the {branch} branch."
        ),
        "holding": approved(
            "Holding", "Thanks {first_name} — a specialist is checking this.", "holding"
        ),
    }


def _html(response) -> str:
    return response.content.decode()


def test_the_picker_fills_a_template_that_is_sent_at_once_on_a_regulated_ticket(
    web, agent, post, templates, django_capture_on_commit_callbacks
):
    ticket = post(LENDING)
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    browser = web(agent)
    page = _html(browser.get(f"/tickets/{ticket.pk}/"))
    assert 'id="template-picker"' in page and "Rates change daily" in page
    assert 'value="Casey"' in page  # the first name is filled in from the customer
    assert "Holding" not in page.split('id="template-picker"')[1]  # holding is not offered

    browser.post(
        f"/tickets/{ticket.pk}/template/",
        {
            "template": templates["rates"].template_id,
            "slot_first_name": "Casey",
            "slot_branch": "Harbor Street",
        },
    )
    reply = Reply.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        sent = browser.post(f"/tickets/{ticket.pk}/reply/", {"action": "send", "body": reply.body})

    assert sent.status_code == 302
    assert (
        SimulatedPost.objects.get().text
        == "Hi Casey! Rates change daily; visit the Harbor Street branch."
    )


def test_a_bad_slot_value_is_explained_and_nothing_is_drafted(web, agent, post, templates):
    ticket = post(LENDING)
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    browser = web(agent)

    response = browser.post(
        f"/tickets/{ticket.pk}/template/",
        {
            "template": templates["rates"].template_id,
            "slot_first_name": "Casey 2% APR",
            "slot_branch": "Harbor Street",
        },
        follow=True,
    )

    assert "{first_name}: letters only" in _html(response)
    assert Reply.objects.count() == 0


def test_the_holding_reply_button_appears_while_legal_reviews_and_sends_once(
    web, agent, post, templates, django_capture_on_commit_callbacks
):
    ticket = post(LENDING)
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    reply = reply_create(ticket_id=ticket.pk, actor=agent, body="Our 30-year fixed is 6.1% APR.")
    reply_submit(reply_id=reply.pk, actor=agent)
    browser = web(agent)
    page = _html(browser.get(f"/tickets/{ticket.pk}/"))
    assert "Send holding reply" in page

    with django_capture_on_commit_callbacks(execute=True):
        browser.post(
            f"/tickets/{ticket.pk}/holding/",
            {"template": templates["holding"].template_id, "slot_first_name": "Casey"},
        )

    assert SimulatedPost.objects.get().text == "Thanks Casey — a specialist is checking this."
    assert Ticket.objects.get(pk=ticket.pk).state == "in_legal_review"
    assert "Send holding reply" not in _html(browser.get(f"/tickets/{ticket.pk}/"))


def test_the_review_of_an_edited_template_shows_only_what_changed(
    web, agent, lawyer, post, templates
):
    ticket = post(LENDING)
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    reply = reply_create(
        ticket_id=ticket.pk,
        actor=agent,
        template_id=templates["rates"].template_id,
        slots={"first_name": "Casey", "branch": "Harbor Street"},
    )
    from tickets.services import reply_update

    reply_update(
        reply_id=reply.pk, actor=agent, body=reply.body.replace("daily", "daily; today 6.1%")
    )
    reply_submit(reply_id=reply.pk, actor=agent)

    page = _html(web(lawyer).get(f"/legal/reviews/{reply.pk}/"))

    assert 'id="template-diff"' in page
    assert "only the marked words differ" in page
    assert "<ins" in page.split('id="template-diff"')[1].split("</div>")[0]


def test_lawyers_see_templates_and_policy_in_the_navigation(web, lawyer, agent):
    assert 'href="/legal/templates/"' in _html(web(lawyer).get("/legal/"))
    assert 'href="/legal/policy/"' in _html(web(lawyer).get("/legal/"))
    assert 'href="/legal/templates/"' not in _html(web(agent).get("/inbox/"))
