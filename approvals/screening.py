"""Screening of any text: is it regulated (lending), does it carry PII?

This is the first, keyword policy. Everything outside this module calls only
`screen(text)`, so the compliance engine can replace the policy without touching
callers. Reasons carry the rule id, the category and the matched span, so a lawyer
can see exactly why a text was flagged.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field

POLICY_VERSION = "keywords-1"

# Zero-width characters and bidi controls that can hide a word from a naive match.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    pattern: re.Pattern[str]
    description: str


def _words(*alternatives: str) -> str:
    return r"\b(?:" + "|".join(alternatives) + r")\b"


_I = re.IGNORECASE

LENDING_RULES: tuple[Rule, ...] = (
    Rule(
        "lending.product",
        "lending",
        re.compile(
            _words(
                r"loans?",
                r"mortgages?",
                r"morgages?",
                r"refinanc\w*",
                r"refis?",
                r"helocs?",
                r"home[- ]equity",
                r"line of credit",
                r"credit line",
                r"auto[- ]loan",
                r"car[- ]loan",
                r"pr[eé]stamos?",
                r"hipotecas?",
                r"refinanciar\w*",
            ),
            _I,
        ),
        "A lending product is named.",
    ),
    Rule(
        "lending.rate",
        "lending",
        re.compile(
            _words(
                r"APRs?",
                r"annual percentage rates?",
                r"interest rates?",
                r"(?:fixed|variable|mortgage|loan|card|promo(?:tional)?)[- ]rates?",
                r"tasa de inter[eé]s",
                r"TAE",
            ),
            _I,
        ),
        "A credit rate is named.",
    ),
    Rule(
        "lending.terms",
        "lending",
        re.compile(
            _words(
                r"credit limits?",
                r"down ?payments?",
                r"monthly payments?",
                r"finance charges?",
                r"minimum payments?",
                r"balance transfers?",
                r"credit terms?",
                r"pago inicial",
                r"cuota mensual",
            ),
            _I,
        ),
        "Credit terms are named.",
    ),
    Rule(
        "lending.quoted_rate",
        "lending",
        re.compile(r"\b\d{1,2}(?:[.,]\d{1,3})?\s?%", _I),
        "A percentage is quoted (a rate).",
    ),
    Rule(
        "lending.quoted_payment",
        "lending",
        re.compile(
            r"[$€£]\s?\d[\d,]*(?:\.\d{2})?\s?(?:/|per|a|each)\s?(?:mo(?:nth)?|month|week|wk|year|yr)\b",
            _I,
        ),
        "A payment amount is quoted.",
    ),
    Rule(
        "lending.repayment_period",
        "lending",
        re.compile(r"\b\d{1,3}\s?(?:monthly\s)?(?:payments|installments|instalments)\b", _I),
        "A number of payments is stated.",
    ),
)

# Exclusions: spans in these senses do not count as lending matches.
_PERCENT = r"\d{1,3}(?:[.,]\d{1,3})?\s?%"
_EXCLUSIONS = re.compile(
    _words(
        r"savings (?:account )?rates?",
        r"exchange rates?",
        rf"{_PERCENT} (?:of|off|sure|chance|satisfied|battery)",
        rf"{_PERCENT} APY",
    )
    + rf"|\bAPY\b(?:\s?(?:of|is|:)?\s?{_PERCENT})?",
    _I,
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-]|-\d)")
_SSN = re.compile(r"(?<!\d)(?!000|666|9\d\d)\d{3}[- ](?!00)\d{2}[- ](?!0000)\d{4}(?!\d)")
_ACCOUNT = re.compile(
    r"\b(?:account|acct|a/c|routing|cuenta)(?:\s?(?:number|no\.?|num|#|n[uú]mero))?\s?[:#]?\s?"
    r"(?P<number>\d[\d -]{6,20}\d)",
    _I,
)


@dataclass(frozen=True)
class Reason:
    rule: str
    category: str
    match: str
    start: int
    end: int


@dataclass(frozen=True)
class PiiFinding:
    kind: str
    masked: str
    start: int
    end: int


@dataclass(frozen=True)
class Screening:
    regulated: bool
    reasons: list[Reason] = field(default_factory=list)
    pii: list[PiiFinding] = field(default_factory=list)
    policy_version: str = POLICY_VERSION

    @property
    def blocked(self) -> bool:
        """A text carrying PII must never be published."""
        return bool(self.pii)

    def as_dict(self) -> dict:
        return {
            "regulated": self.regulated,
            "reasons": [asdict(reason) for reason in self.reasons],
            "pii": [asdict(finding) for finding in self.pii],
            "blocked": self.blocked,
            "policy_version": self.policy_version,
        }


def _normalize(text: str) -> tuple[str, list[int]]:
    """The text to match on, and for each of its characters the offset in `text`.

    Each character is NFKC-folded on its own (fullwidth digits, ligatures) and
    invisible characters are dropped, so "mort\u200bgage" still reads "mortgage" and
    every match maps back to a span of what the customer or agent wrote.
    """
    chars: list[str] = []
    offsets: list[int] = []
    for index, char in enumerate(text):
        if _INVISIBLE.match(char):
            continue
        for folded in unicodedata.normalize("NFKC", char):
            chars.append(folded)
            offsets.append(index)
    offsets.append(len(text))
    return "".join(chars), offsets


def _span(offsets: list[int], span: tuple[int, int]) -> tuple[int, int]:
    """A span of the normalized text as a span of the original text."""
    start, end = span
    return offsets[start], offsets[end - 1] + 1


def _mask(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return "•" * max(len(digits) - 4, 0) + digits[-4:]


def _find_pii(text: str, offsets: list[int]) -> list[PiiFinding]:
    findings: list[PiiFinding] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            findings.append(PiiFinding("card_number", _mask(digits), *_span(offsets, match.span())))
            taken.append(match.span())
    for match in _SSN.finditer(text):
        if free(*match.span()):
            findings.append(PiiFinding("ssn", _mask(match.group()), *_span(offsets, match.span())))
            taken.append(match.span())
    for match in _ACCOUNT.finditer(text):
        span = match.span("number")
        digits = re.sub(r"\D", "", match.group("number"))
        if 8 <= len(digits) <= 17 and free(*span):
            findings.append(PiiFinding("account_number", _mask(digits), *_span(offsets, span)))
            taken.append(span)
    return sorted(findings, key=lambda finding: finding.start)


def screen(text: str) -> Screening:
    """Screen one text with the current policy."""
    normalized, offsets = _normalize(text)
    excluded = [match.span() for match in _EXCLUSIONS.finditer(normalized)]
    reasons: list[Reason] = []
    for rule in LENDING_RULES:
        for match in rule.pattern.finditer(normalized):
            if any(match.start() < b and match.end() > a for a, b in excluded):
                continue
            start, end = _span(offsets, match.span())
            reasons.append(Reason(rule.id, rule.category, text[start:end], start, end))
    reasons.sort(key=lambda reason: (reason.start, reason.rule))
    return Screening(regulated=bool(reasons), reasons=reasons, pii=_find_pii(normalized, offsets))
