"""The HTML pages through Django's test client: who may see what, what the pages say,
and that every action goes through the services with its refusals shown, not a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals.services import review_approve, review_request_changes
from connectors.models import SimulatedPost
from servicedesk.models import AuditEvent
from tests.factories import UserFactory
from tickets.models import Notification, Reply, Ticket, TicketInvitation, TicketNote
from tickets.selectors import notifications_for
from tickets.services import reply_create, reply_submit, ticket_claim
from tickets.services.collab import ticket_invite

pytestmark = pytest.mark.django_db

CARD = "4111 1111 1111 1111"


def _html(response) -> str:
    return response.content.decode()


# ---- login, landing, roles ----------------------------------------------------------------


def test_login_page_has_labelled_username_and_password_fields(web):
    response = web(None).get("/login/")

    html = _html(response)
    assert response.status_code == 200
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("role", "landing"),
    [("agent", "/inbox/"), ("legal", "/legal/"), ("supervisor", "/reports/")],
)
def test_login_lands_each_role_on_its_page(web, role, landing):
    UserFactory(username="someone", roles=[role])

    response = web(None).post("/login/", {"username": "someone", "password": "pw"})

    assert response.status_code == 302
    assert response["Location"] == landing


def test_login_with_a_wrong_password_says_so(web, agent):
    response = web(None).post("/login/", {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in _html(response)


@pytest.mark.parametrize("path", ["/inbox/", "/tickets/1/", "/legal/", "/notifications/"])
def test_anonymous_visitor_is_sent_to_the_login_page(web, path):
    response = web(None).get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_navigation_shows_the_users_name_and_role(web, agent):
    agent.first_name, agent.last_name = "Alex", "Agent"
    agent.save(update_fields=["first_name", "last_name"])

    html = _html(web(agent).get("/inbox/"))

    assert '<span class="who-name">Alex Agent</span>' in html
    assert '<span class="who-role" title="Role">Agent</span>' in html
    assert "Legal queue" not in html


def test_lawyer_navigation_offers_the_legal_queue(web, lawyer):
    html = _html(web(lawyer).get("/legal/"))

    assert 'href="/legal/" aria-current="page">Legal queue</a>' in html


def test_logout_ends_the_session(web, agent):
    client = web(agent)

    response = client.post("/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert client.get("/inbox/")["Location"] == "/login/?next=/inbox/"


def test_agent_opening_the_legal_queue_gets_a_403_page(web, agent):
    response = web(agent).get("/legal/")

    assert response.status_code == 403
    assert "This page is for legal or supervisor users." in _html(response)
    assert "Content-Security-Policy" in response.headers


def test_user_without_a_desk_role_gets_a_403_page_for_the_inbox(web, outsider):
    response = web(outsider).get("/inbox/")

    assert response.status_code == 403
    assert "Not allowed" in _html(response)


def test_lawyer_claiming_a_ticket_gets_a_403_page(web, lawyer, post):
    ticket = post()

    response = web(lawyer).post(f"/tickets/{ticket.pk}/claim/")

    assert response.status_code == 403
    assert "Your role does not allow" in _html(response)
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.state == "open"


def test_outsider_cannot_open_a_ticket_they_were_not_invited_to(web, outsider, post):
    ticket = post()

    response = web(outsider).get(f"/tickets/{ticket.pk}/")

    assert response.status_code == 403
    assert "You were not invited to this ticket." in _html(response)


def test_unknown_ticket_is_a_404_page(web, agent):
    response = web(agent).get("/tickets/999999/")

    assert response.status_code == 404
    assert "No such ticket." in _html(response)


def test_forms_without_the_csrf_token_are_refused(agent, post):
    ticket = post()
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)

    response = client.post(f"/tickets/{ticket.pk}/claim/")

    assert response.status_code == 403
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.state == "open"


def test_every_form_on_the_ticket_page_carries_the_csrf_token(web, agent, post):
    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent)

    html = _html(web(agent).get(f"/tickets/{ticket.pk}/"))

    assert html.count('<form method="post"') == html.count('name="csrfmiddlewaretoken"')
    assert html.count('<form method="post"') >= 4


# ---- inbox ------------------------------------------------------------------------------------


def test_inbox_lists_tickets_least_time_left_first(web, agent, post):
    later = post("@NorthwindBank my card does not work", minutes_ago=1)
    sooner = post("@NorthwindBank the app is down", minutes_ago=20)

    html = _html(web(agent).get("/inbox/"))

    assert html.index(f'data-ticket-id="{sooner.pk}"') < html.index(f'data-ticket-id="{later.pk}"')


def test_inbox_masks_personal_data_in_the_first_line(web, agent, post):
    post(f"@NorthwindBank charge on card {CARD} is wrong\nsecond line")

    html = _html(web(agent).get("/inbox/"))

    assert "4111 1111 1111 1111" not in html
    assert "1111" in html  # the last four digits stay, as on a statement
    assert "charge on card" in html
    assert "second line" not in html


def test_inbox_row_shows_channel_customer_sentiment_regulated_state_and_assignee(web, agent, post):
    ticket = post("@NorthwindBank what is your mortgage rate?")
    ticket_claim(ticket_id=ticket.pk, actor=agent)

    html = _html(web(agent).get("/inbox/"))

    row = html[html.index(f'data-ticket-id="{ticket.pk}"') :]
    row = row[: row.index("</tr>")]
    assert 'aria-label="Simulated — sim"' in row
    assert ticket.customer.handle in row
    assert 'class="sentiment sentiment-' in row
    assert "Regulated" in row
    assert "In progress" in row
    assert '<td class="c-assignee">alice</td>' in row


def test_inbox_filters_mine_unassigned_regulated_and_state(web, agent, agent2, post):
    mine = post("@NorthwindBank help with my mortgage")
    ticket_claim(ticket_id=mine.pk, actor=agent)
    theirs = post("@NorthwindBank app crash")
    ticket_claim(ticket_id=theirs.pk, actor=agent2)
    nobody = post("@NorthwindBank hello")
    client = web(agent)

    def shown(query):
        html = _html(client.get(f"/inbox/?{query}"))
        return {t.pk for t in (mine, theirs, nobody) if f'data-ticket-id="{t.pk}"' in html}

    assert shown("view=all") == {mine.pk, theirs.pk, nobody.pk}
    assert shown("view=mine") == {mine.pk}
    assert shown("view=unassigned") == {nobody.pk}
    assert shown("regulated=true") == {mine.pk}
    assert shown("regulated=false") == {theirs.pk, nobody.pk}
    assert shown("state=open") == {nobody.pk}
    assert shown("channel=sim") == {mine.pk, theirs.pk, nobody.pk}
    assert shown("channel=elsewhere") == set()


def test_inbox_rows_are_polled_and_show_new_tickets_without_a_reload(web, agent, post):
    client = web(agent)
    page = _html(client.get("/inbox/?view=unassigned"))
    assert 'hx-get="/inbox/rows/?view=unassigned" hx-trigger="every 5s"' in page

    arrived = post("@NorthwindBank just posted")
    fragment = _html(client.get("/inbox/rows/?view=unassigned"))

    assert fragment.startswith("<tbody")
    assert f'data-ticket-id="{arrived.pk}"' in fragment
    assert "<nav" not in fragment


@pytest.mark.parametrize(
    ("used", "level", "text"),
    [(0.2, "cd-ok", "left"), (0.6, "cd-amber", "left"), (0.85, "cd-red", "left")],
)
def test_countdown_turns_amber_at_half_and_red_at_80_percent(web, agent, post, used, level, text):
    ticket = post()
    now = timezone.now()
    Ticket.objects.filter(pk=ticket.pk).update(
        posted_at=now - timedelta(minutes=100 * used),
        deadline=now + timedelta(minutes=100 * (1 - used)),
    )

    html = _html(web(agent).get("/inbox/"))

    assert f'class="countdown {level}"' in html
    assert f"{text}</time>" in html


def test_countdown_after_the_deadline_says_overdue_by(web, agent, post):
    ticket = post()
    now = timezone.now()
    Ticket.objects.filter(pk=ticket.pk).update(
        posted_at=now - timedelta(minutes=40), deadline=now - timedelta(minutes=10, seconds=5)
    )

    html = _html(web(agent).get("/inbox/"))

    assert 'class="countdown cd-overdue"' in html
    assert "overdue by 10m 05s" in html


def test_countdown_carries_the_server_clock_for_the_browser(web, agent, post):
    ticket = post()

    html = _html(web(agent).get("/inbox/"))

    assert f'data-deadline="{int(ticket.deadline.timestamp() * 1000)}"' in html
    assert 'data-server-now="' in html


def test_claim_from_the_inbox_takes_the_ticket_and_opens_it(web, agent, post):
    ticket = post()

    response = web(agent).post(f"/tickets/{ticket.pk}/claim/")

    assert response.status_code == 302
    assert response["Location"] == f"/tickets/{ticket.pk}/"
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert (ticket.state, ticket.assignee) == ("in_progress", agent)


def test_claiming_a_ticket_someone_already_took_says_so(web, agent, agent2, post):
    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent2)
    client = web(agent)

    response = client.post(f"/tickets/{ticket.pk}/claim/", follow=True)

    assert "cannot claim" in _html(response)
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.assignee == agent2


# ---- ticket page ---------------------------------------------------------------------------


def test_ticket_page_shows_the_labelled_buttons(web, agent, post):
    ticket = post()
    client = web(agent)

    open_html = _html(client.get(f"/tickets/{ticket.pk}/"))
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    claimed_html = _html(client.get(f"/tickets/{ticket.pk}/"))

    assert ">Claim</button>" in open_html
    for label in ("Send reply", "Submit for legal review", "Close", "Ignore"):
        assert f">{label}</button>" in claimed_html
    assert ">Claim</button>" not in claimed_html


def test_send_reply_is_disabled_with_the_reason_before_anything_is_written(web, agent, post):
    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent)

    html = _html(web(agent).get(f"/tickets/{ticket.pk}/"))

    assert 'id="send-button" class="btn btn-primary"\n            disabled' in html
    assert "Write a reply first." in html


def test_inbound_screening_highlights_the_matched_words_and_escapes_the_rest(web, agent, post):
    ticket = post("<b>bold</b> what is the mortgage rate & fees?")

    html = _html(web(agent).get(f"/tickets/{ticket.pk}/"))

    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<b>bold</b>" not in html
    assert 'class="hl-rule" title="lending:' in html
    assert ">mortgage" in html


def test_ticket_page_shows_personal_data_to_the_assignee_but_masks_it_for_others(
    web, agent, agent2, post
):
    ticket = post(f"@NorthwindBank my card {CARD} was charged twice")
    ticket_claim(ticket_id=ticket.pk, actor=agent)

    assignee_view = _html(web(agent).get(f"/tickets/{ticket.pk}/"))
    colleague_view = _html(web(agent2).get(f"/tickets/{ticket.pk}/"))

    assert CARD in assignee_view
    assert 'class="hl-pii"' in assignee_view
    assert CARD not in colleague_view


def test_ticket_page_thread_links_only_to_web_addresses(web, agent, post):
    ticket = post("hello", url="javascript:alert(1)")

    html = _html(web(agent).get(f"/tickets/{ticket.pk}/"))

    assert 'href="javascript:' not in html
    assert "View on the platform" not in html


def test_ticket_page_lists_the_customers_earlier_tickets(web, agent, post):
    author = {"external_id": "same-customer", "handle": "repeat", "display_name": "R"}
    first = post("@NorthwindBank first question", author=author)
    second = post("@NorthwindBank second question", author=author)

    html = _html(web(agent).get(f"/tickets/{second.pk}/"))

    assert f'<a href="/tickets/{first.pk}/">#{first.pk}</a>' in html
    assert "first question" in html


def test_live_screening_flags_lending_and_says_why_send_is_disabled(web, agent, post):
    ticket = post("@NorthwindBank question about my account")
    ticket_claim(ticket_id=ticket.pk, actor=agent)

    response = web(agent).post(
        f"/tickets/{ticket.pk}/screen/", {"body": "Our mortgage rate is 5.9% APR today."}
    )

    html = _html(response)
    assert response.status_code == 200
    assert "Regulated</span>" in html
    assert 'class="hl-rule"' in html
    assert 'id="editor-actions" hx-swap-oob="true"' in html
    assert "a lawyer must approve this exact text" in html
    assert "<nav" not in html


def test_live_screening_blocks_personal_data_and_counts_characters(web, agent, post):
    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    text = f"Your card {CARD} is fine"

    html = _html(web(agent).post(f"/tickets/{ticket.pk}/screen/", {"body": text}))

    assert "Personal data — cannot be sent" in html
    assert "Remove the personal data" in html
    assert f"{len(text)} characters" in html


def test_live_screening_counts_against_the_platforms_limit(web, agent, channel, post):
    channel.platform = "x"
    channel.save(update_fields=["platform"])
    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent)

    html = _html(web(agent).post(f"/tickets/{ticket.pk}/screen/", {"body": "a" * 300}))

    assert "300 / 280 characters" in html
    assert "Too long for X: 300 of 280 characters." in html


def test_plain_reply_is_sent_and_reaches_the_channel(
    web, agent, post, django_capture_on_commit_callbacks
):
    ticket = post("@NorthwindBank how do I reset my password?")
    client = web(agent)
    client.post(f"/tickets/{ticket.pk}/claim/")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/tickets/{ticket.pk}/reply/",
            {"body": "Tap 'Forgot password' on the login screen.", "action": "send"},
        )

    assert response.status_code == 302
    assert list(SimulatedPost.objects.values_list("text", flat=True)) == [
        "Tap 'Forgot password' on the login screen."
    ]
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.state == "replied"
    page = _html(client.get(f"/tickets/{ticket.pk}/"))
    assert "Tap &#x27;Forgot password&#x27; on the login screen." in page
    assert "This ticket is replied: nothing to draft." in page
    assert 'id="draft-body"' not in page


def test_sending_a_regulated_reply_without_approval_is_refused_and_keeps_the_text(web, agent, post):
    ticket = post("@NorthwindBank what is your mortgage rate?")
    client = web(agent)
    client.post(f"/tickets/{ticket.pk}/claim/")

    response = client.post(
        f"/tickets/{ticket.pk}/reply/",
        {"body": "Rates start at 6.1% APR.", "action": "send"},
    )

    html = _html(response)
    assert response.status_code == 409
    assert "a lawyer must approve this exact text" in html
    assert "Rates start at 6.1% APR.</textarea>" in html
    assert SimulatedPost.objects.count() == 0


def test_second_agent_cannot_send_and_is_told_who_the_assignee_is(web, agent, agent2, post):
    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    reply_create(ticket_id=ticket.pk, actor=agent, body="We are on it.")

    response = web(agent2).post(
        f"/tickets/{ticket.pk}/reply/", {"body": "We are on it.", "action": "send"}
    )

    assert response.status_code == 409
    assert "it is assigned to alice" in _html(response)
    assert SimulatedPost.objects.count() == 0


def test_second_agent_sees_send_disabled_naming_the_assignee(web, agent, agent2, post):
    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent)

    html = _html(web(agent2).get(f"/tickets/{ticket.pk}/"))

    assert "Only the assignee (alice) can send or submit this reply." in html


def test_submit_for_legal_review_saves_and_submits(web, agent, post):
    ticket = post("@NorthwindBank can I refinance my mortgage?")
    client = web(agent)
    client.post(f"/tickets/{ticket.pk}/claim/")

    response = client.post(
        f"/tickets/{ticket.pk}/reply/",
        {"body": "A specialist will DM you about refinancing.", "action": "submit"},
    )

    assert response.status_code == 302
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.state == "in_legal_review"
    html = _html(client.get(f"/tickets/{ticket.pk}/"))
    assert "With legal: waiting for their decision." in html
    assert "readonly" in html


def test_editing_after_approval_disables_send_again_with_the_reason(web, agent, lawyer, post):
    ticket = post("@NorthwindBank mortgage question")
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    reply = reply_create(ticket_id=ticket.pk, actor=agent, body="Please DM us your question.")
    reply_submit(reply_id=reply.pk, actor=agent)
    review_approve(reply_id=reply.pk, actor=lawyer)
    client = web(agent)
    assert 'id="send-button" class="btn btn-primary"\n            >' in _html(
        client.get(f"/tickets/{ticket.pk}/")
    )

    html = _html(
        client.post(f"/tickets/{ticket.pk}/screen/", {"body": "Please DM us your question!"})
    )

    assert "The text changed after legal approved it; submit it for review again." in html
    assert 'id="send-button" class="btn btn-primary"\n            disabled' in html


def test_close_and_ignore_from_the_ticket_page(web, agent, post):
    first, second = post(), post()
    client = web(agent)

    client.post(f"/tickets/{first.pk}/close/", {"reason": "answered by DM"})
    client.post(f"/tickets/{second.pk}/ignore/", {"reason": "spam"})

    first = Ticket.objects.get(pk=first.pk)
    second = Ticket.objects.get(pk=second.pk)
    assert (first.state, first.close_reason) == ("closed", "answered by DM")
    assert (second.state, second.close_reason) == ("ignored", "spam")


def test_internal_notes_are_added_and_shown_escaped(web, agent, post):
    ticket = post()
    client = web(agent)

    client.post(f"/tickets/{ticket.pk}/notes/", {"body": "<i>call</i> the branch"})

    assert TicketNote.objects.get(ticket=ticket).body == "<i>call</i> the branch"
    assert "&lt;i&gt;call&lt;/i&gt; the branch" in _html(client.get(f"/tickets/{ticket.pk}/"))


def test_a_nul_character_in_a_form_is_refused_not_a_500(web, agent, post):
    ticket = post()
    client = web(agent)
    client.post(f"/tickets/{ticket.pk}/claim/")

    response = client.post(f"/tickets/{ticket.pk}/reply/", {"body": "a\x00b", "action": "save"})

    assert response.status_code == 400
    assert "NUL" in _html(response)


# ---- ask a colleague, presence, supervisor actions -------------------------------------------


def test_invited_colleague_is_notified_and_can_draft_but_not_send(web, agent, outsider, post):
    ticket = post("@NorthwindBank mortgage for a second home?")
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    web(agent).post(
        f"/tickets/{ticket.pk}/invite/",
        {"invitee": outsider.pk, "role": "draft", "message": "you know mortgages"},
    )
    client = web(outsider)

    bell = _html(client.get("/notifications/"))
    saved = client.post(
        f"/tickets/{ticket.pk}/reply/", {"body": "Happy to help: DM us.", "action": "save"}
    )
    send = client.post(
        f"/tickets/{ticket.pk}/reply/", {"body": "Happy to help: DM us.", "action": "send"}
    )

    assert "alice asked you to draft the reply to ticket" in bell
    assert saved.status_code == 302
    assert Reply.objects.get(ticket=ticket).author == outsider
    assert send.status_code == 403
    assert SimulatedPost.objects.count() == 0


def test_invited_adviser_can_read_and_add_notes_but_not_draft(web, agent, outsider, post):
    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    ticket_invite(ticket_id=ticket.pk, actor=agent, invitee_id=outsider.pk, role="advise")
    client = web(outsider)

    page = client.get(f"/tickets/{ticket.pk}/")
    client.post(f"/tickets/{ticket.pk}/notes/", {"body": "Ask for the branch"})
    draft = client.post(f"/tickets/{ticket.pk}/reply/", {"body": "Hi", "action": "save"})

    assert page.status_code == 200
    assert TicketNote.objects.filter(ticket=ticket, author=outsider).count() == 1
    assert draft.status_code == 403
    assert not Reply.objects.filter(ticket=ticket).exists()


def test_invitation_is_audited(web, agent, agent2, post):
    ticket = post()

    web(agent).post(f"/tickets/{ticket.pk}/invite/", {"invitee": agent2.pk, "role": "advise"})

    assert TicketInvitation.objects.get(ticket=ticket).invitee == agent2
    assert AuditEvent.objects.filter(ticket_id=ticket.pk, action="ticket.invite").count() == 1


def test_presence_shows_who_else_is_drafting_on_the_ticket_and_in_the_inbox(
    web, agent, agent2, post
):
    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    web(agent2).post(f"/tickets/{ticket.pk}/presence/", {"activity": "drafting"})
    client = web(agent)

    beat = _html(client.post(f"/tickets/{ticket.pk}/presence/", {"activity": "viewing"}))
    inbox = _html(client.get("/inbox/"))

    assert "Also here now:" in beat
    assert "bob" in beat and "(drafting)" in beat
    assert "Only the assignee, alice, can send." in beat
    assert '<span class="who-chip">bob ✎</span>' in inbox


def test_supervisor_reassigns_a_ticket_audited_and_notified(web, supervisor, agent, agent2, post):
    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent)

    response = web(supervisor).post(
        f"/tickets/{ticket.pk}/reassign/", {"assignee": agent2.pk, "reason": "alice is out"}
    )

    assert response.status_code == 302
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.assignee == agent2
    event = AuditEvent.objects.get(ticket_id=ticket.pk, action="ticket.reassign")
    assert event.data == {"from": "alice", "to": "bob", "reason": "alice is out"}
    assert Notification.objects.get(recipient=agent2).kind == "assigned"


def test_supervisor_assigning_an_open_ticket_claims_it_for_the_agent(web, supervisor, agent, post):
    ticket = post()

    web(supervisor).post(f"/tickets/{ticket.pk}/reassign/", {"assignee": agent.pk})

    ticket = Ticket.objects.get(pk=ticket.pk)
    assert (ticket.state, ticket.assignee) == ("in_progress", agent)


def test_agent_cannot_reassign(web, agent, agent2, post):
    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent)

    response = web(agent).post(f"/tickets/{ticket.pk}/reassign/", {"assignee": agent2.pk})

    assert response.status_code == 403
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.assignee == agent


def test_reassigning_to_a_lawyer_is_refused_with_the_reason(web, supervisor, lawyer, post):
    ticket = post()

    response = web(supervisor).post(
        f"/tickets/{ticket.pk}/reassign/", {"assignee": lawyer.pk}, follow=True
    )

    assert "lena is not an agent or supervisor." in _html(response)


def test_supervisor_clears_the_regulated_flag_only_with_a_reason(web, supervisor, post):
    ticket = post("@NorthwindBank I have an interest in your mortgage museum")
    assert ticket.regulated
    client = web(supervisor)

    refused = client.post(f"/tickets/{ticket.pk}/clear-regulated/", {"reason": " "}, follow=True)
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.regulated
    assert "a reason is required" in _html(refused)

    client.post(f"/tickets/{ticket.pk}/clear-regulated/", {"reason": "a museum, not a loan"})
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert not ticket.regulated
    event = AuditEvent.objects.get(ticket_id=ticket.pk, action="ticket.regulated_cleared")
    assert event.data["reason"] == "a museum, not a loan"


def test_agent_cannot_clear_the_regulated_flag(web, agent, post):
    ticket = post("@NorthwindBank mortgage?")

    response = web(agent).post(f"/tickets/{ticket.pk}/clear-regulated/", {"reason": "no"})

    assert response.status_code == 403
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.regulated


# ---- notifications -----------------------------------------------------------------------


def test_bell_counts_reviews_waiting_for_a_lawyer(web, agent, lawyer, post):
    ticket = post("@NorthwindBank mortgage?")
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    reply = reply_create(ticket_id=ticket.pk, actor=agent, body="DM us please.")
    reply_submit(reply_id=reply.pk, actor=agent)
    client = web(lawyer)

    page = _html(client.get("/legal/"))
    listing = _html(client.get("/notifications/"))

    assert 'aria-label="Notifications: 1 new"' in page
    assert f'href="/legal/reviews/{reply.pk}/"' in listing


def test_bell_warns_the_assignee_of_a_ticket_about_to_breach(web, agent, post):
    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    now = timezone.now()
    Ticket.objects.filter(pk=ticket.pk).update(
        posted_at=now - timedelta(minutes=9), deadline=now + timedelta(minutes=1)
    )

    html = _html(web(agent).get("/notifications/"))

    assert f"Ticket #{ticket.pk} is about to breach its window." in html


def test_bell_lists_a_ticket_the_window_check_already_warned_about_once(web, agent, post):
    from tickets.services.escalation import escalations_check

    ticket = post()
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    now = timezone.now()
    Ticket.objects.filter(pk=ticket.pk).update(
        posted_at=now - timedelta(minutes=9), deadline=now + timedelta(minutes=1)
    )
    escalations_check()  # the 80% warning, stored for the assignee

    bell = notifications_for(user=agent)

    assert [item["url"] for item in bell["items"]] == [f"/tickets/{ticket.pk}/"]
    assert Notification.objects.filter(recipient=agent, ticket=ticket).count() == 1


def test_opening_the_ticket_marks_its_invitation_read(web, agent, agent2, post):
    ticket = post()
    ticket_invite(ticket_id=ticket.pk, actor=agent, invitee_id=agent2.pk, role="advise")
    client = web(agent2)
    assert 'aria-label="Notifications: 1 new"' in _html(client.get("/inbox/"))

    client.get(f"/tickets/{ticket.pk}/")

    assert 'aria-label="Notifications: 0 new"' in _html(client.get("/inbox/"))


# ---- legal queue and review -----------------------------------------------------------------


def _in_review(agent, post, text="@NorthwindBank what is your mortgage rate?", body=None):
    ticket = post(text)
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    reply = reply_create(ticket_id=ticket.pk, actor=agent, body=body or "Please DM us.")
    reply_submit(reply_id=reply.pk, actor=agent)
    return ticket, reply


def test_legal_queue_shows_time_left_legal_clock_and_who_submitted(web, agent, lawyer, post):
    ticket, reply = _in_review(agent, post)

    html = _html(web(lawyer).get("/legal/"))

    assert f'href="/legal/reviews/{reply.pk}/"' in html
    assert 'class="elapsed" data-since="' in html
    assert "<td>alice</td>" in html
    assert 'class="countdown cd-' in html


def test_legal_queue_orders_by_the_customers_time_left(web, agent, lawyer, post):
    _, later = _in_review(agent, post)
    ticket, sooner = _in_review(agent, post)
    Ticket.objects.filter(pk=ticket.pk).update(deadline=timezone.now() + timedelta(minutes=1))

    html = _html(web(lawyer).get("/legal/"))

    assert html.index(f"/legal/reviews/{sooner.pk}/") < html.index(f"/legal/reviews/{later.pk}/")


def test_review_page_shows_the_draft_the_rules_and_approve(web, agent, lawyer, post):
    _, reply = _in_review(agent, post, body="Our mortgage rates start at 6.1% APR.")

    html = _html(web(lawyer).get(f"/legal/reviews/{reply.pk}/"))

    assert ">Approve</button>" in html
    assert ">Request changes</button>" in html
    assert 'class="hl-rule"' in html
    assert "First review of this reply" in html
    assert "What the customer wrote" in html


def test_review_page_diffs_against_the_last_reviewed_version(web, agent, lawyer, post):
    ticket, reply = _in_review(agent, post, body="Rates are <low> this week.")
    review_request_changes(reply_id=reply.pk, actor=lawyer, comment="no rate talk")
    client = web(agent)
    client.post(
        f"/tickets/{ticket.pk}/reply/",
        {"body": "Rates are shown on our site.", "action": "submit"},
    )

    html = _html(web(lawyer).get(f"/legal/reviews/{reply.pk}/"))

    assert "<del>&lt;low&gt; this week.</del>" in html
    assert "<ins>shown on our site.</ins>" in html
    assert "no rate talk" in html


def test_lawyers_own_draft_shows_no_approve_button(web, agent, lawyer, lawyer2, post):
    ticket = post("@NorthwindBank HELOC question")
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    ticket_invite(ticket_id=ticket.pk, actor=agent, invitee_id=lawyer.pk, role="draft")
    reply = reply_create(ticket_id=ticket.pk, actor=lawyer, body="Please DM us.")
    reply_submit(reply_id=reply.pk, actor=agent)

    own = web(lawyer).get(f"/legal/reviews/{reply.pk}/")
    forced = web(lawyer).post(f"/legal/reviews/{reply.pk}/approve/")
    other = _html(web(lawyer2).get(f"/legal/reviews/{reply.pk}/"))

    assert ">Approve</button>" not in _html(own)
    assert "another lawyer must approve it" in _html(own)
    assert forced.status_code == 403
    assert ">Approve</button>" in other


def test_request_changes_without_a_comment_is_refused(web, agent, lawyer, post):
    _, reply = _in_review(agent, post)

    response = web(lawyer).post(f"/legal/reviews/{reply.pk}/request-changes/", {"comment": ""})

    assert response.status_code == 400
    assert "a comment is required" in _html(response)
    reply.refresh_from_db()
    assert reply.state == "in_review"


def test_approve_from_the_review_page_lets_the_agent_send(
    web, agent, lawyer, post, django_capture_on_commit_callbacks
):
    ticket, reply = _in_review(agent, post)

    response = web(lawyer).post(f"/legal/reviews/{reply.pk}/approve/", {"comment": "ok"})
    with django_capture_on_commit_callbacks(execute=True):
        web(agent).post(f"/tickets/{ticket.pk}/reply/", {"body": reply.body, "action": "send"})

    assert response.status_code == 302
    assert response["Location"] == "/legal/"
    assert list(SimulatedPost.objects.values_list("text", flat=True)) == ["Please DM us."]


def test_supervisor_can_read_a_review_but_not_decide(web, agent, supervisor, post):
    _, reply = _in_review(agent, post)

    page = _html(web(supervisor).get(f"/legal/reviews/{reply.pk}/"))
    forced = web(supervisor).post(f"/legal/reviews/{reply.pk}/approve/")

    assert ">Approve</button>" not in page
    assert forced.status_code == 403


# ---- hostile text -----------------------------------------------------------------------------

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_hostile_post_text_name_and_url_render_inert_on_every_page(web, agent, lawyer, post):
    ticket = post(
        f"mortgage {XSS}",
        author={"external_id": "evil", "handle": "<svg onload=alert(2)>", "display_name": XSS},
        url="javascript:alert(3)",
    )
    ticket_claim(ticket_id=ticket.pk, actor=agent)
    reply = reply_create(ticket_id=ticket.pk, actor=agent, body=f"Hi {XSS}")
    reply_submit(reply_id=reply.pk, actor=agent)

    pages = [
        _html(web(agent).get("/inbox/")),
        _html(web(agent).get(f"/tickets/{ticket.pk}/")),
        _html(web(lawyer).get("/legal/")),
        _html(web(lawyer).get(f"/legal/reviews/{reply.pk}/")),
    ]

    for html in pages:
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "<svg onload" not in html
        assert 'href="javascript:' not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_presence_heartbeat_from_someone_not_invited_is_refused(web, outsider, post):
    ticket = post()

    response = web(outsider).post(f"/tickets/{ticket.pk}/presence/", {"activity": "viewing"})

    assert response.status_code == 403
    assert "You were not invited to this ticket." in _html(response)
