"""The first screening policy: lending words, credit terms in drafts, PII, with exact spans."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals.screening import screen

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("text", "rule", "match"),
    [
        ("What's your mortgage rate?", "lending.product", "mortgage"),
        ("can I refi my house", "lending.product", "refi"),
        ("Is a HELOC a good idea?", "lending.product", "HELOC"),
        ("¿Ofrecen préstamos personales?", "lending.product", "préstamos"),
        ("What's the APR on the Platinum card?", "lending.rate", "APR"),
        ("lower my credit limit", "lending.terms", "credit limit"),
        ("We can offer 4.5% on that.", "lending.quoted_rate", "4.5%"),
        ("That would be $312/month.", "lending.quoted_payment", "$312/month"),
        ("Repay in 36 monthly payments.", "lending.repayment_period", "36 monthly payments"),
    ],
)
def test_screen_lending_texts_are_regulated_with_the_matched_words(text, rule, match):
    result = screen(text)

    assert result.regulated is True
    assert (rule, match) in {(reason.rule, reason.match) for reason in result.reasons}


@pytest.mark.parametrize(
    "text",
    [
        "The app keeps logging me out",
        "What's your savings rate?",
        "Our savings account rates are on the website, APY 4.1%",
        "Thanks for the help today!",
        "I'm 100% sure I locked my card",
    ],
)
def test_screen_ordinary_and_excluded_texts_are_not_regulated(text):
    assert screen(text).regulated is False


def test_screen_sees_through_invisible_characters_and_fullwidth_digits():
    hidden = "Our mort\u200bgage is fixed at ４.５%"

    result = screen(hidden)

    matched = {reason.match for reason in result.reasons}
    assert "mort\u200bgage" in matched
    assert "４.５%" in matched


def test_screen_spans_point_at_the_original_text():
    text = "Hello\u200b\u200b — our loan APR is 7.9%."

    result = screen(text)

    assert result.reasons
    for reason in result.reasons:
        assert text[reason.start : reason.end] == reason.match


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("my card is 4111 1111 1111 1111", "card_number"),
        ("card 5500-0000-0000-0004 please", "card_number"),
        ("SSN 123-45-6789", "ssn"),
        ("account number: 000123456789", "account_number"),
        ("acct # 98765432", "account_number"),
    ],
)
def test_screen_pii_blocks_and_is_masked(text, kind):
    result = screen(text)

    assert result.blocked is True
    assert [finding.kind for finding in result.pii] == [kind]
    finding = result.pii[0]
    assert finding.masked.endswith(text[finding.start : finding.end].replace(" ", "")[-4:])
    assert "•" in finding.masked


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112 shipped",  # fails the Luhn check
        "call 555-123-4567",
        "SSN-like 000-12-3456",
        "it costs $1,250,000",
    ],
)
def test_screen_numbers_that_are_not_pii_do_not_block(text):
    assert screen(text).blocked is False


def test_screen_result_records_the_policy_version():
    assert screen("loan").as_dict()["policy_version"] == "keywords-1"


def test_screen_api_returns_the_screening_for_desk_users(api, agent, outsider):
    response = api(agent).post("/api/v1/screen/", {"text": "Our APR is 5%"}, format="json")
    refused = api(outsider).post("/api/v1/screen/", {"text": "x"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["regulated"] is True
    assert body["blocked"] is False
    assert {reason["match"] for reason in body["reasons"]} == {"APR", "5%"}
    assert refused.status_code == 403


@given(st.text(max_size=300))
def test_screen_spans_always_match_the_original_text(text):
    result = screen(text)

    for item in [*result.reasons, *result.pii]:
        assert 0 <= item.start < item.end <= len(text)
    for reason in result.reasons:
        assert text[reason.start : reason.end] == reason.match
    assert result.blocked == bool(result.pii)
    assert result.regulated == bool(result.reasons)


@given(
    prefix=st.text(alphabet=st.characters(categories=["L", "Zs"]), max_size=40),
    digits=st.lists(st.integers(0, 9), min_size=15, max_size=15),
)
def test_screen_any_luhn_valid_16_digit_card_is_blocked(prefix, digits):
    body = "".join(map(str, digits))
    check = next(d for d in range(10) if _luhn_ok(body + str(d)))
    card = body + str(check)
    spaced = " ".join(card[i : i + 4] for i in range(0, 16, 4))

    result = screen(f"{prefix} {spaced} ")

    assert "card_number" in {finding.kind for finding in result.pii}


def _luhn_ok(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0
