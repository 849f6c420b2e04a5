"""The screening engine: what is regulated and why, PII, Reg Z advice, UDAAP wording —
with spans that point at exactly what the person wrote."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.pii import aba_ok, luhn_ok, mask_text
from approvals.policy import default_policy
from approvals.screening import screen

pytestmark = pytest.mark.django_db


def _rules(result) -> set[tuple[str, str]]:
    return {(reason.rule, reason.match) for reason in result.reasons}


@pytest.mark.parametrize(
    ("text", "rule", "match"),
    [
        ("What's your mortgage rate?", "lending.product", "mortgage"),
        ("can I refi my house", "lending.product", "refi"),
        ("Is a HELOC a good idea?", "lending.product", "HELOC"),
        ("morgage help pls", "lending.product", "morgage"),
        ("¿Ofrecen préstamos personales?", "lending.product.es", "préstamos"),
        ("¿Cuál es la tasa de interés?", "lending.product.es", "tasa de interés"),
        ("What's the APR on the Platinum card?", "lending.product", "APR"),
        ("is 6.2 good for a 30 yr fixed rn", "lending.term_structure", "30 yr fixed"),
        ("got denied for the card again 🙃 why", "lending.credit_decision", "denied"),
        ("what are the rates on boats these days", "lending.rate_near_credit", "rates"),
        ("Can I put 3.5% down with you guys", "lending.term_structure", "put 3.5% down"),
    ],
)
def test_lending_posts_are_regulated_with_the_rule_and_the_words(text, rule, match):
    result = screen(text)

    assert result.regulated is True
    assert "lending" in result.categories
    assert (rule, match) in _rules(result)


@pytest.mark.parametrize(
    "text",
    [
        "The app keeps logging me out",
        "What's your savings rate?",
        "Our savings account rates are on the website, APY 4.1%",
        "I have zero interest in your new logo",
        "rate my new debit card design 😂",
        "Can you loan me a book for the weekend",
        "my debit card got declined at the store",
        "I'm 100% sure I locked my card",
        "Credit where it's due, the Hillcrest team was great",
        "Thanks for the help today!",
    ],
)
def test_other_senses_of_lending_words_are_not_regulated(text):
    assert screen(text).regulated is False


def test_a_word_in_a_rule_is_matched_whole_not_inside_other_words():
    assert screen("The loaner car was great").regulated is False
    assert screen("Great loan service").regulated is True


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Our mort\u200bgage is fixed", "mort\u200bgage"),  # zero-width space
        ("ｍｏｒｔｇａｇｅ help", "ｍｏｒｔｇａｇｅ"),  # fullwidth letters
        ("m\u043ertgage help", "m\u043ertgage"),  # a Cyrillic о
        ("MORTGAGE!!", "MORTGAGE"),
        ("my l0an is late", "l0an"),  # leetspeak
        ("need a looooan", "looooan"),  # stretched for emphasis
        ("\u202emortgage\u202c", "mortgage"),  # bidi controls
        ("hipotéca", "hipotéca"),
    ],
)
def test_disguised_lending_words_are_seen_and_reported_as_written(text, match):
    result = screen(text)

    assert result.regulated is True
    assert match in {reason.match for reason in result.reasons}


def test_a_proximity_rule_names_the_word_that_made_it_count():
    result = screen("what rate would I get on the mortgage?")

    reason = next(r for r in result.reasons if r.rule == "lending.rate_near_credit")
    assert (reason.match, reason.near) == ("rate", "mortgage")


def test_a_rate_far_from_any_credit_word_does_not_count():
    text = "What is the rate " + "of the thing that we talked about at the event in " * 2 + "march"

    assert screen(text).regulated is False


@pytest.mark.parametrize(
    ("text", "category", "regulated"),
    [
        ("I'm filing a complaint with the CFPB", "complaint", False),
        ("my lawyer will hear about this", "complaint", False),
        ("someone hacked my account and stole $900", "fraud", False),
        ("they denied my loan because I'm pregnant", "fair_lending", True),
        ("Estafa! me robaron la tarjeta", "fraud", False),
    ],
)
def test_other_categories_are_reported_and_only_some_make_a_post_regulated(
    text, category, regulated
):
    result = screen(text)

    assert category in result.categories
    if category != "fair_lending":
        assert result.regulated is regulated or "lending" in result.categories
    else:
        assert result.regulated is True


def test_deposit_yield_in_a_post_is_noted_but_in_our_draft_needs_legal():
    question = screen("what's the APY on the high yield savings?")
    draft = screen("Our high yield savings pays 4.10% APY right now!", kind="draft")

    assert "deposit" in question.categories and question.regulated is False
    assert "deposit" in draft.categories and draft.regulated is True


# --- drafts: credit terms, Reg Z, UDAAP -------------------------------------------------


def test_a_draft_that_quotes_a_rate_or_a_payment_is_regulated_whatever_the_question():
    assert screen("We can offer 4.5% on that.", kind="draft").regulated is True
    assert screen("That would be $312/month.", kind="draft").regulated is True
    assert screen("We're open until 5pm.", kind="draft").regulated is False


def test_reg_z_names_the_closed_end_trigger_terms_and_the_disclosures_missing():
    draft = "New car loans: $299/mo for 60 months with $2,000 down."

    result = screen(draft, kind="draft")

    terms = {t.term for t in result.regz.triggers}
    assert {"payment_amount", "repayment_terms", "down_payment"} <= terms
    disclosures = {d.item: d for d in result.regz.disclosures}
    apr = next(d for item, d in disclosures.items() if "annual percentage rate" in item)
    assert apr.satisfied is False and apr.citation == "12 CFR 1026.24(d)(2)(iii)"
    assert result.regz.complete is False
    assert any("Reg Z" in line and "annual percentage rate" in line for line in result.advice)
    trigger = next(t for t in result.regz.triggers if t.term == "payment_amount")
    assert draft[trigger.start : trigger.end] == trigger.match == "$299/mo"


def test_reg_z_disclosures_are_satisfied_by_stating_them():
    draft = (
        "Auto loans: $2,000 down, 60 monthly payments of $386, 5.49% annual percentage "
        "rate (APR); the rate is fixed."
    )

    result = screen(draft, kind="draft")

    assert result.regz.triggers
    assert result.regz.complete is True


def test_reg_z_disclosures_are_satisfied_by_a_link_to_the_banks_own_site_only():
    base = "Auto loans from $299/mo for 60 months. Full terms: "

    own = screen(base + "https://www.northwind.example/auto", kind="draft")
    other = screen(base + "https://rates.example.org/auto", kind="draft")

    assert own.regz.complete is True
    assert own.regz.disclosure_link == "https://www.northwind.example/auto"
    assert other.regz.complete is False


def test_reg_z_open_end_rates_and_fees_including_negative_statements():
    result = screen(
        "The Cashback card: 0% intro APR for 15 months, then 19.99% variable APR. No annual fee!",
        kind="draft",
    )

    assert {t.term for t in result.regz.triggers} == {"open_end_rate", "open_end_fee"}
    assert all(d.citation.startswith("12 CFR 1026.16(b)") for d in result.regz.disclosures)


def test_reg_z_home_equity_plans_need_the_highest_apr():
    result = screen("Our HELOC is 8.25% APR variable, no annual fee.", kind="draft")

    items = {d.item: d.satisfied for d in result.regz.disclosures}
    assert items["the highest APR that can be imposed"] is False


def test_no_reg_z_advice_when_the_draft_states_no_term():
    result = screen("Happy to help with your mortgage question — please DM us!", kind="draft")

    assert result.regz is None
    assert result.regulated is True  # a lending draft still goes to legal


def test_reg_z_terms_are_not_looked_for_in_customer_posts():
    assert screen("they quoted me $299/mo for 60 months", kind="post").regz is None


@pytest.mark.parametrize("word", ["Guaranteed", "risk-free", "no fees", "FREE", "gratis"])
def test_udaap_wording_in_a_draft_is_flagged_for_the_lawyer(word):
    result = screen(f"Open an account today — {word}!", kind="draft")

    assert "udaap" in result.categories
    assert result.regulated is True
    assert any("UDAAP" in line for line in result.advice)


def test_everyday_free_is_not_udaap():
    result = screen("Feel free to DM us, or call our toll-free line.", kind="draft")

    assert "udaap" not in result.categories


# --- PII ----------------------------------------------------------------------------------


def _card(prefix: str, length: int = 16) -> str:
    body = prefix + "0" * (length - len(prefix) - 1)
    return body + next(str(d) for d in range(10) if luhn_ok(body + str(d)))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"my card {_card('4539')} was charged twice", "card_number"),
        ("card 4539-1488-0343-6467 pls help", "card_number"),
        ("ssn 123-45-6789", "ssn"),
        ("my social is 123456789", "ssn"),
        ("account number 00123456789 is frozen", "account_number"),
        ("loan # 7734 1209 88 is wrong", "account_number"),
        ("routing 011000015 right?", "routing_number"),
        ("email me at jane.doe@gmail.com", "email"),
        ("email me jdoe at gmail dot com", "email"),
        ("call me at (312) 555-0187", "phone"),
        ("text me 3 1 2 - 5 5 5 - 0 1 8 7", "phone"),
        (
            "it is four five three nine one four eight eight zero three four three six four six "
            "seven",
            "card_number",
        ),
        (f"card ４５３９{_card('4539')[4:]}", "card_number"),
        ("my address is 42 Elm Street, come by", "street_address"),
    ],
)
def test_pii_in_many_shapes_is_found_and_masked(text, kind):
    result = screen(text)

    assert kind in {finding.kind for finding in result.pii}
    finding = next(f for f in result.pii if f.kind == kind)
    assert result.blocked is True
    shown = text[finding.start : finding.end]
    if kind not in ("email", "street_address"):
        assert finding.masked.endswith(
            "".join(c for c in shown if c.isdigit())[-4:]
            if any(c.isdigit() for c in shown)
            else finding.masked[-4:]
        )
    assert shown not in finding.masked or kind == "street_address"


@pytest.mark.parametrize(
    "text",
    [
        "call us on 1-800-555-0199",  # the bank's own published number
        "write to help@northwind.example",
        "see you at 100 Harbor Street",
        "order 112-1380717-1095658 was charged twice",
        "ticket CS-20240415-0091 still open",
        "card ending in 4242 got declined",
        "I paid $1,250.00 on 03/04/2025",
        "the ATM at 2200 W Belmont Ave is out of cash",
        "my zip is 60614",
    ],
)
def test_look_alikes_and_the_banks_own_details_are_not_pii(text):
    assert screen(text).pii == []


def test_checksums_reject_numbers_that_only_look_valid():
    assert aba_ok("011000015") is True
    assert aba_ok("011000016") is False
    # Fails Luhn: not a card number, but a long number that still looks like someone's own.
    assert [f.kind for f in screen("my card 4539 1488 0343 6468 is blocked").pii] == ["long_number"]


def test_mask_text_hides_every_finding():
    text = "card 4539-1488-0343-6467, ssn 123-45-6789"

    masked = mask_text(text, screen(text).pii)

    assert "4539" not in masked and "123-45" not in masked
    assert "6467" in masked and "6789" in masked


def test_the_result_names_the_policy_version_and_the_kind():
    result = screen("loan", kind="draft").as_dict()

    assert result["policy_version"] == "policy-1"
    assert result["kind"] == "draft"
    assert set(result) >= {"regulated", "categories", "reasons", "pii", "blocked", "regz"}


# --- properties -------------------------------------------------------------------------

_WORDS = st.sampled_from(
    [
        "loan",
        "mortgage",
        "rate",
        "APR",
        "hi",
        "thanks",
        "card",
        "préstamo",
        "4.5%",
        "$300/mo",
        "\u200b",
        "ｍ",
        "🙂",
        "interest in",
        "4539 1488 0343 6467",
        "123-45-6789",
        "\u202e",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(_WORDS, st.text(max_size=6)), max_size=14),
    st.sampled_from(["post", "draft"]),
)
def test_every_span_points_at_the_original_text(parts, kind):
    text = " ".join(parts)

    result = screen(text, kind=kind)

    for reason in result.reasons:
        assert 0 <= reason.start < reason.end <= len(text)
        assert text[reason.start : reason.end] == reason.match
    for finding in result.pii:
        assert 0 <= finding.start < finding.end <= len(text)
    assert result.blocked == bool(result.pii)
    assert result.regulated == any(
        reason.category in ("lending", "fair_lending")
        or (kind == "draft" and reason.category in ("deposit", "udaap"))
        for reason in result.reasons
    )


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_a_lending_word_stays_regulated_whatever_surrounds_it(before, after):
    text = f"{before} mortgage {after}"

    assert screen(text, policy=default_policy()).regulated is True
