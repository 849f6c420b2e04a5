"""End to end in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against a live server: what agents and lawyers do all day, click by click.

Screenshots of each screen go to artifacts/screenshots/ (CI keeps them as artefacts).
Data is arranged before a page is open and checked after it is closed: on SQLite the
live server shares the test's database connection, and the pages poll.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from approvals.services import review_approve
from connectors.models import SimulatedPost
from tests.factories import ChannelFactory, UserFactory
from tickets.models import Reply, Ticket
from tickets.services import mention_ingest, reply_create, reply_submit, ticket_claim

pytestmark = [
    pytest.mark.browser,
    # Committed rows (the live server reads them); the roles and policy come back after.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(settings.BASE_DIR) / "artifacts" / "screenshots"
LAPTOP = {"width": 1366, "height": 860}
TABLET = {"width": 820, "height": 1180}


@pytest.fixture
def chromium(transactional_db):
    # Playwright's sync API keeps an event loop running in this thread, and while it
    # runs Django hands this thread other connection objects. So the browser starts
    # after the test database is set up for the test (and its serialized rows are
    # restored) and stops before it is flushed. The ORM calls the tests make between
    # page actions are ordinary synchronous ones.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()
        # The connections this thread opened while the loop ran are its own: close them,
        # or the test database could not be dropped at the end.
        from django.db import connections

        connections.close_all()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def people(db):
    return {
        "agent": UserFactory(
            username="agent", first_name="Alex", last_name="Agent", roles=["agent"]
        ),
        "lawyer": UserFactory(
            username="lawyer", first_name="Lee", last_name="Lawyer", roles=["legal"]
        ),
        "lawyer2": UserFactory(username="lawyer2", roles=["legal"]),
    }


@pytest.fixture
def sim(db):
    return ChannelFactory()


_posts = iter(range(1, 10_000))


def _mention(channel, text):
    number = next(_posts)
    return mention_ingest(
        channel=channel,
        external_id=f"e2e-{number}",
        author={"external_id": f"e2e-cust-{number}", "handle": f"customer{number}"},
        text=text,
        url=f"https://simulated.invalid/p/{number}",
        posted_at=timezone.now() - timedelta(minutes=3),
    ).ticket


@pytest.fixture
def console_errors():
    """What the pages reported as errors: a CSP violation, a script error, a failed load."""
    return []


@pytest.fixture
def session(chromium, live_server, console_errors):
    """session(username) → a logged-in page in its own browser context."""
    contexts = []

    def _open(username, viewport=LAPTOP):
        context = chromium.new_context(viewport=viewport)
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: console_errors.append(message.text) if message.type == "error" else 0,
        )
        page.on("pageerror", lambda error: console_errors.append(str(error)))
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill("pw")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        return page

    yield _open
    for context in contexts:
        context.close()


def shot(page, name):
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _wait_send_reason(page, text):
    page.locator("#send-reason", has_text=text).wait_for()


# ---- (1) the legal gate, end to end ----------------------------------------------------------


def test_lending_mention_claimed_drafted_flagged_submitted_approved_and_sent(
    session, people, sim, live_server, chromium, console_errors
):
    ticket = _mention(sim, "@NorthwindBank what rate would I get to refinance my mortgage?")
    draft = (
        "Thanks for asking! Our 30-year fixed mortgage refinance rate is 6.25% APR today; "
        "the full terms are at https://northwind.example/rates"
    )
    login = chromium.new_page(viewport=LAPTOP)
    login.goto(f"{live_server.url}/login/")
    shot(login, "01-login")
    login.close()

    agent = session("agent")
    assert agent.url.endswith("/inbox/")
    row = agent.locator(f'tr[data-ticket-id="{ticket.pk}"]')
    assert "Regulated" in row.inner_text()
    shot(agent, "02-inbox")
    row.get_by_role("button", name=f"Claim ticket {ticket.pk}").click()
    agent.wait_for_url(f"**/tickets/{ticket.pk}/")
    agent.locator("#draft-body").fill(draft)
    agent.locator("#screening .badge-regulated").wait_for()
    _wait_send_reason(agent, "a lawyer must approve this exact text")
    assert agent.get_by_role("button", name="Send reply").is_disabled()
    assert agent.locator("#screening mark.hl-rule").count() >= 1
    shot(agent, "03-ticket-draft-flagged")
    agent.get_by_role("button", name="Submit for legal review").click()
    agent.get_by_text("Submitted for legal review.").wait_for()

    lawyer = session("lawyer")
    assert lawyer.url.endswith("/legal/")
    shot(lawyer, "04-legal-queue")
    lawyer.locator("#queue-rows a.row-link").first.click()
    lawyer.get_by_role("heading", name="The draft to decide on").wait_for()
    assert lawyer.locator("#draft-text").inner_text() == draft
    shot(lawyer, "05-review")
    lawyer.get_by_role("button", name="Approve").click()
    lawyer.get_by_text("Approved: the agent can send this exact text.").wait_for()

    agent.reload()
    agent.get_by_role("button", name="Send reply").click()
    agent.get_by_text("Reply sent to the platform.").wait_for()
    agent.locator(".post-reply").wait_for()
    shot(agent, "06-ticket-sent")
    agent.context.close()
    lawyer.context.close()

    assert list(SimulatedPost.objects.values_list("text", flat=True)) == [draft]
    assert Ticket.objects.get(pk=ticket.pk).state == "replied"
    assert console_errors == []  # no CSP violation: htmx and our script run without any


# ---- (2) an edit after approval voids it --------------------------------------------------------


def test_editing_after_approval_disables_send_again_with_the_reason(session, people, sim):
    ticket = _mention(sim, "@NorthwindBank is a HELOC a good idea for a kitchen?")
    ticket_claim(ticket_id=ticket.pk, actor=people["agent"])
    reply = reply_create(
        ticket_id=ticket.pk, actor=people["agent"], body="A specialist will DM you today."
    )
    reply_submit(reply_id=reply.pk, actor=people["agent"])
    review_approve(reply_id=reply.pk, actor=people["lawyer"])

    agent = session("agent")
    agent.goto(agent.url.replace("/inbox/", f"/tickets/{ticket.pk}/"))
    send = agent.get_by_role("button", name="Send reply")
    assert send.is_enabled()
    agent.locator("#draft-body").press_sequentially(" Thanks!")
    _wait_send_reason(
        agent, "The text changed after legal approved it; submit it for review again."
    )
    assert send.is_disabled()
    assert agent.get_by_role("button", name="Submit for legal review").is_enabled()
    shot(agent, "07-approval-voided-by-edit")
    agent.context.close()

    assert SimulatedPost.objects.count() == 0


# ---- (3) a plain question in under five interactions --------------------------------------------


def test_plain_question_is_claimed_answered_and_sent_in_under_five_interactions(
    session, people, sim
):
    ticket = _mention(sim, "@NorthwindBank what time does the Main Street branch open?")
    answer = "Hi! Main Street opens at 9am Monday to Saturday."
    agent = session("agent")
    interactions = 0

    agent.locator(f'tr[data-ticket-id="{ticket.pk}"]').get_by_role("button", name="Claim").click()
    interactions += 1
    agent.locator("#draft-body").fill(answer)
    interactions += 1
    agent.get_by_role("button", name="Send reply").click()
    interactions += 1
    agent.get_by_text("Reply sent to the platform.").wait_for()
    agent.context.close()

    assert interactions < 5
    assert list(SimulatedPost.objects.values_list("text", flat=True)) == [answer]


def test_keyboard_moves_opens_claims_and_sends(session, people, sim):
    first = _mention(sim, "@NorthwindBank card declined at the pump")
    answer = "Sorry about that! Please try again: the outage is fixed."
    agent = session("agent")

    agent.keyboard.press("j")
    assert agent.locator("tr.is-selected").get_attribute("data-ticket-id") == str(first.pk)
    agent.keyboard.press("c")
    agent.wait_for_url(f"**/tickets/{first.pk}/")
    agent.locator("#draft-body").fill(answer)
    agent.locator("#send-button:not([disabled])").wait_for()
    agent.locator("#draft-body").press("Control+Enter")
    agent.get_by_text("Reply sent to the platform.").wait_for()
    agent.goto(agent.url.split("/tickets/")[0] + "/inbox/?state=replied")
    agent.keyboard.press("j")
    agent.keyboard.press("Enter")
    agent.wait_for_url(f"**/tickets/{first.pk}/")
    agent.context.close()

    assert list(SimulatedPost.objects.values_list("text", flat=True)) == [answer]


# ---- (4) no lawyer approves their own words ------------------------------------------------------


def test_lawyer_asked_to_draft_cannot_approve_their_own_draft(session, people, sim):
    ticket = _mention(sim, "@NorthwindBank can I get a car loan with bad credit?")
    ticket_claim(ticket_id=ticket.pk, actor=people["agent"])
    text = "We look at every application individually: please DM us and we will call you."

    agent = session("agent")
    agent.goto(agent.url.replace("/inbox/", f"/tickets/{ticket.pk}/"))
    agent.get_by_label("Ask a colleague").select_option(label="Lee Lawyer (lawyer)")
    agent.get_by_label("To", exact=True).select_option("draft")
    agent.get_by_role("button", name="Invite").click()
    agent.get_by_text("Colleague invited").wait_for()

    lawyer = session("lawyer")
    lawyer.get_by_role("link", name=re.compile(r"Notifications: 1 new")).click()
    shot(lawyer, "08-notifications")
    lawyer.get_by_role("link", name=re.compile("asked you to draft")).click()
    lawyer.locator("#draft-body").fill(text)
    lawyer.get_by_role("button", name="Save draft").click()
    lawyer.get_by_text("Draft saved.").wait_for()
    assert lawyer.get_by_role("button", name="Send reply").is_disabled()

    agent.reload()
    agent.get_by_role("button", name="Submit for legal review").click()
    agent.get_by_text("Submitted for legal review.").wait_for()

    lawyer.goto(lawyer.url.split("/tickets/")[0] + "/legal/")
    lawyer.locator("#queue-rows a.row-link").first.click()
    lawyer.locator("#own-draft").wait_for()
    assert lawyer.get_by_role("button", name="Approve").count() == 0
    assert lawyer.get_by_role("button", name="Request changes").is_visible()
    shot(lawyer, "09-review-own-draft")
    agent.context.close()
    lawyer.context.close()

    reply = Reply.objects.get(ticket=ticket)
    assert (reply.author.username, reply.state, reply.body) == ("lawyer", "in_review", text)


# ---- (5) hostile text stays text -----------------------------------------------------------------


def test_xss_payload_in_a_post_renders_inert(session, people, sim, console_errors):
    payload = '<img src=x onerror="alert(1)"><script>alert(2)</script> mortgage?'
    ticket = mention_ingest(
        channel=sim,
        external_id="e2e-xss",
        author={"external_id": "evil", "handle": "<svg onload=alert(3)>", "display_name": "<b>x"},
        text=payload,
        url="javascript:alert(4)",
        posted_at=timezone.now() - timedelta(minutes=1),
    ).ticket
    agent = session("agent")
    dialogs = []
    agent.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    agent.reload()
    inbox_text = agent.locator(f'tr[data-ticket-id="{ticket.pk}"]').inner_text()
    agent.goto(agent.url.replace("/inbox/", f"/tickets/{ticket.pk}/"))
    post_text = agent.locator(".post-post .post-text").inner_text()
    shot(agent, "10-xss-inert")
    links = agent.locator('a[href^="javascript"]').count()
    injected = agent.locator("main img, main script, main svg").count()
    agent.context.close()

    assert dialogs == []
    assert console_errors == []
    assert post_text == payload
    assert '<img src=x onerror="alert(1)">' in inbox_text
    assert links == 0
    assert injected == 0


# ---- the clock and the tablet -------------------------------------------------------------


def test_countdown_uses_the_servers_clock_not_the_computers(chromium, live_server, people, sim):
    ticket = _mention(sim, "@NorthwindBank app won't open")
    left = (ticket.deadline - timezone.now()).total_seconds()
    context = chromium.new_context(viewport=LAPTOP)
    page = context.new_page()
    # This computer thinks it is 2001: a countdown from its own clock would be years off.
    page.clock.install(time=datetime(2001, 1, 1, tzinfo=UTC))
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("agent")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.clock.run_for(2000)

    text = page.locator(f'tr[data-ticket-id="{ticket.pk}"] time.countdown').inner_text()
    context.close()

    minutes, seconds = re.fullmatch(r"(\d+)m (\d+)s left", text).groups()
    assert abs(int(minutes) * 60 + int(seconds) - left) < 120


def test_inbox_is_usable_on_a_tablet(session, people, sim):
    ticket = _mention(sim, "@NorthwindBank thanks for the quick help yesterday!")
    agent = session("agent", viewport=TABLET)

    claim = agent.locator(f'tr[data-ticket-id="{ticket.pk}"]').get_by_role("button", name="Claim")
    assert claim.is_visible()
    box = claim.bounding_box()
    table = agent.locator(".table-wrap").bounding_box()
    page_width = agent.evaluate("document.documentElement.scrollWidth")
    shot(agent, "11-inbox-tablet")
    agent.context.close()

    assert box["x"] + box["width"] <= table["x"] + table["width"]  # not cut off
    assert box["height"] >= 32  # a finger's target
    assert page_width <= TABLET["width"]
