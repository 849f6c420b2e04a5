"""A post that shows personal data: masked for everyone but the assignee, legal and
supervisors, and the approved "please DM us" reply offered."""

from __future__ import annotations

from approvals import template_services

POST = "@NorthwindBank my card 4539 1488 0343 6467 was charged twice, call me 312-555-0187"


def test_lists_show_personal_data_masked_to_everyone(api, agent, lawyer, ingest):
    ticket_id = ingest(text=POST)["ticket_id"]

    for user in (agent, lawyer):
        rows = api(user).get("/api/v1/tickets/").json()["results"]
        excerpt = next(row["excerpt"] for row in rows if row["id"] == ticket_id)
        assert "4539 1488" not in excerpt and "312-555" not in excerpt
        assert "6467" in excerpt


def test_the_full_post_is_shown_only_to_the_assignee_legal_and_supervisors(
    api, agent, agent2, lawyer, supervisor, claimed_ticket
):
    ticket_id = claimed_ticket(POST)  # claimed by alice

    def thread_text(user):
        return api(user).get(f"/api/v1/tickets/{ticket_id}/").json()["thread"][0]

    assert thread_text(agent)["text"] == POST
    for user in (lawyer, supervisor):
        assert thread_text(user)["text"] == POST
    other = thread_text(agent2)
    assert other["text_masked"] is True
    assert "4539 1488 0343" not in other["text"] and "charged twice" in other["text"]


def test_the_move_to_dm_template_is_offered_when_a_post_shows_personal_data(
    api, agent, lawyer, lawyer2, ingest
):
    version = template_services.template_create(
        actor=lawyer,
        name="DM us",
        purpose="move_to_dm",
        body="Hi {first_name}, please delete your post and send us a direct message.",
    )
    template_services.template_approve(template_id=version.template_id, actor=lawyer2)
    with_pii = ingest(text=POST)["ticket_id"]
    without = ingest(text="@NorthwindBank app is down")["ticket_id"]

    offered = api(agent).get(f"/api/v1/tickets/{with_pii}/").json()["suggested_templates"]
    assert [t["name"] for t in offered] == ["DM us"]
    assert api(agent).get(f"/api/v1/tickets/{without}/").json()["suggested_templates"] == []
