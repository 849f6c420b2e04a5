"""Legal's pages for templates and the screening policy: what a lawyer does there."""

from __future__ import annotations

from django.test import Client

from approvals import template_services
from approvals.models import PolicyState, PolicyVersion, TemplateState, TemplateVersion


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_lawyer_creates_a_template_and_another_approves_it_with_an_expiry(lawyer, lawyer2):
    created = _browser(lawyer).post(
        "/legal/templates/new/",
        {"name": "Rates", "purpose": "answer", "body": "Hi {first_name}, rates: {url}"},
    )
    assert created.status_code == 302
    page = _browser(lawyer).get(created["Location"]).content.decode()
    assert "another lawyer must approve it" in page and 'id="approve-template"' not in page

    approved = _browser(lawyer2).post(
        created["Location"], {"action": "approve", "expires_on": "2099-01-31", "comment": "ok"}
    )

    version = TemplateVersion.objects.get()
    assert approved.status_code == 302
    assert (version.state, version.approved_by, version.expires_at.date().isoformat()) == (
        TemplateState.APPROVED,
        lawyer2,
        "2099-01-31",
    )


def test_template_errors_are_shown_on_the_page_not_as_a_crash(lawyer):
    response = _browser(lawyer).post(
        "/legal/templates/new/", {"name": "Bad", "purpose": "answer", "body": "Hi {nme}"}
    )

    assert response.status_code == 400
    assert "{nme} is not a slot" in response.content.decode()


def test_agents_cannot_open_legal_pages(agent):
    for path in ("/legal/templates/", "/legal/policy/", "/legal/policy/1/"):
        assert _browser(agent).get(path).status_code == 403


def test_a_lawyer_edits_a_draft_policy_tries_a_text_and_publishes(
    lawyer, django_capture_on_commit_callbacks
):
    browser = _browser(lawyer)
    started = browser.post("/legal/policy/draft/", {"note": "Add the Zorblax loan"})
    draft = PolicyVersion.objects.get(state=PolicyState.DRAFT)
    assert started["Location"] == f"/legal/policy/{draft.number}/"

    saved = browser.post(
        started["Location"],
        {
            "action": "save_rule",
            "rule_id": "lending.zorblax",
            "category": "lending",
            "kind": "terms",
            "applies_to": "any",
            "language": "en",
            "terms": "zorblax*",
            "distance": "6",
        },
    )
    assert saved.status_code == 302
    tried = browser.post(
        started["Location"], {"action": "try", "text": "how do zorblaxes work?", "kind": "post"}
    ).content.decode()
    assert 'id="try-result"' in tried
    assert tried.count("badge-regulated") == 1  # the draft flags it, the active one does not

    with django_capture_on_commit_callbacks(execute=True):
        browser.post(started["Location"], {"action": "publish"})

    draft.refresh_from_db()
    assert draft.state == PolicyState.ACTIVE
    assert "policy-" + str(draft.number) in browser.get("/legal/policy/").content.decode()


def test_a_broken_rule_is_refused_on_the_page_with_its_name(lawyer):
    draft = template_services.policy_draft_create(actor=lawyer)

    response = _browser(lawyer).post(
        f"/legal/policy/{draft.number}/",
        {
            "action": "save_rule",
            "rule_id": "lending.bad",
            "category": "lending",
            "kind": "pattern",
            "terms": "(oops",
            "distance": "6",
            "applies_to": "any",
        },
    )

    assert response.status_code == 400
    assert "lending.bad" in response.content.decode()
    assert not draft.rules.filter(rule_id="lending.bad").exists()


def test_an_active_version_cannot_be_edited_from_the_page(lawyer):
    active = PolicyVersion.objects.get(state=PolicyState.ACTIVE)
    rule = active.rules.first()

    response = _browser(lawyer).post(
        f"/legal/policy/{active.number}/", {"action": "delete_rule", "rule_pk": str(rule.pk)}
    )

    assert response.status_code == 409
    assert active.rules.filter(pk=rule.pk).exists()
