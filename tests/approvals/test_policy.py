"""The screening policy is versioned and legal's to change: a draft is edited, publishing
makes it the policy every screening uses, and each result names its version."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from approvals import template_services
from approvals.evaluation import evaluate, load
from approvals.models import PolicyRule, PolicyState, PolicyVersion
from approvals.policy import default_policy, policy_changed
from approvals.screening import screen
from servicedesk.errors import ApplicationError
from servicedesk.models import AuditEvent

EVAL_SET = "tests/data/screening_eval.jsonl"


def test_the_first_version_is_active_and_screening_names_it(db):
    active = PolicyVersion.objects.get(state=PolicyState.ACTIVE)

    assert active.number == 1
    assert active.rules.filter(category="lending").exists()
    assert screen("mortgage").policy_version == "policy-1"


def test_a_published_draft_changes_what_is_regulated_and_is_audited(lawyer):
    word = "zorblax"  # a new product name legal wants screened
    assert screen("what is the zorblax rate").regulated is False

    draft = template_services.policy_draft_create(actor=lawyer, note="Add the Zorblax loan")
    assert draft.rules.count() == PolicyVersion.objects.get(number=1).rules.count()
    PolicyRule.objects.create(
        policy=draft, rule_id="lending.zorblax", category="lending", terms=word
    )
    template_services.policy_publish(version_id=draft.pk, actor=lawyer)
    policy_changed()

    result = screen(f"what is the {word} rate")
    assert result.regulated is True
    assert result.policy_version == f"policy-{draft.number}"
    assert PolicyVersion.objects.get(number=1).state == PolicyState.RETIRED
    assert AuditEvent.objects.filter(action="policy.publish").count() == 1


def test_only_legal_changes_the_policy(agent, supervisor):
    for user in (agent, supervisor):
        with pytest.raises(ApplicationError) as refused:
            template_services.policy_draft_create(actor=user)
        assert refused.value.status_code == 403


def test_a_rule_that_does_not_compile_is_refused_with_its_name(lawyer):
    draft = template_services.policy_draft_create(actor=lawyer)
    PolicyRule.objects.create(
        policy=draft, rule_id="lending.broken", category="lending", kind="pattern", terms="(oops"
    )

    with pytest.raises(ApplicationError) as refused:
        template_services.policy_publish(version_id=draft.pk, actor=lawyer)

    assert refused.value.code == "policy_invalid"
    assert "lending.broken" in refused.value.message
    assert PolicyVersion.objects.get(number=1).state == PolicyState.ACTIVE


def test_an_active_version_cannot_be_published_again_or_a_second_draft_started(lawyer):
    template_services.policy_draft_create(actor=lawyer)

    with pytest.raises(ApplicationError) as second:
        template_services.policy_draft_create(actor=lawyer)
    with pytest.raises(ApplicationError) as again:
        template_services.policy_publish(
            version_id=PolicyVersion.objects.get(number=1).pk, actor=lawyer
        )

    assert second.value.code == "policy_draft_exists"
    assert again.value.status_code == 409


def test_without_an_active_version_the_built_in_policy_still_screens(db):
    PolicyVersion.objects.update(state=PolicyState.RETIRED)
    policy_changed()

    result = screen("refi question")

    assert result.regulated is True
    assert result.policy_version == "default-1"


def test_the_policy_api_shows_the_active_rules(api, agent):
    body = api(agent).get("/api/v1/policy/").json()

    assert body["label"] == "policy-1"
    assert {"lending.product", "udaap.absolute_claims"} <= {r["rule_id"] for r in body["rules"]}


# --- the evaluation set -------------------------------------------------------------------


def test_the_policy_meets_its_targets_on_the_labelled_set(db):
    with open(EVAL_SET, encoding="utf-8") as handle:
        items = load(handle)
    assert len(items) >= 300

    report = evaluate(items, default_policy())

    lending, pii = report.scores["lending"], report.scores["pii"]
    assert lending.recall >= 0.97, [m for m in report.misses if m.question == "lending"]
    assert lending.precision >= 0.85
    assert pii.recall >= 0.95, [m for m in report.misses if m.question == "pii"]


def test_evaluate_policy_prints_the_scores_and_the_misses(db, tmp_path):
    path = tmp_path / "set.jsonl"
    rows = [
        {"id": "a", "kind": "post", "text": "refi rates?", "lending": True, "pii": False},
        {"id": "b", "kind": "post", "text": "nice logo", "lending": True, "pii": False},
        {
            "id": "c",
            "kind": "draft",
            "text": "$299/mo on the auto loan",
            "lending": True,
            "pii": False,
            "regz": ["payment_amount"],
        },
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows))
    out = io.StringIO()

    call_command("evaluate_policy", str(path), stdout=out)

    text = out.getvalue()
    assert "3 items, policy policy-1" in text
    assert "lending        1.000     0.667" in text
    assert "b lending: expected True, got False" in text


def test_evaluate_policy_says_which_line_is_wrong(db, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "x", "lending": true, "pii": false}\n{"text": oops}\n')

    with pytest.raises(CommandError, match="line 2: not JSON"):
        call_command("evaluate_policy", str(path))


def test_the_screen_api_returns_the_full_result_for_the_live_check(api, agent):
    response = api(agent).post(
        "/api/v1/screen/",
        {"text": "Auto loans from $299/mo for 60 months!", "kind": "draft"},
        format="json",
    )

    body = response.json()
    assert response.status_code == 200
    assert body["regulated"] is True and body["kind"] == "draft"
    assert {t["term"] for t in body["regz"]["triggers"]} >= {"payment_amount", "repayment_terms"}
    assert any(line.startswith("Reg Z") for line in body["advice"])
    bad = api(agent).post("/api/v1/screen/", {"text": "x", "kind": "tweet"}, format="json")
    assert bad.status_code == 400
