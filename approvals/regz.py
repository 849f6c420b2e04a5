"""Reg Z advertising trigger terms in our drafts, and the disclosures they then require.

A public reply that promotes credit can be an advertisement. When a draft states a
triggering term, the screening names the term, the section, the disclosures that
section then requires, and whether the draft already carries each one (or links to
the full disclosures, which satisfies them in an electronic advertisement). This is
advice for the agent and the lawyer; the lawyer decides. Sources:
12 CFR 1026.24(d) (closed-end), 1026.16(b) (open-end), 1026.16(d) (home-equity plans),
1026.16(c) and 1026.24(e) (electronic advertisements); see
../shared/reference/regulatory.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_MONEY = r"(?:[$€£]\s?\d[\d,]*(?:\.\d+)?\s?k?|\d[\d,]*(?:\.\d+)?\s?(?:dollars|usd|pesos))"
_PCT = r"\d{1,3}(?:[.,]\d{1,3})?\s?%"
_PERIOD = r"(?:months?|mos?|years?|yrs?|meses|anos)"

# Each term with a few words one of which the text must contain before its pattern runs.
PREFILTER: dict[str, tuple[str, ...]] = {
    "down_payment": ("down", "enganche", "inicial"),
    "repayment_terms": ("mo", "yr", "year", "mes", "ano", "payments", "installments", "pagos"),
    "payment_amount": ("$", "€", "£", "payment", "pago", "mensualidad", "dollar", "peso"),
    "finance_charge": ("finance", "interest"),
    "open_end_rate": ("%",),
    "open_end_fee": ("fee", "cuota", "comision"),
}

TERMS: dict[str, tuple[str, str, re.Pattern[str]]] = {
    "down_payment": (
        "closed_end",
        "12 CFR 1026.24(d)(1)(i)",
        re.compile(
            rf"(?:{_MONEY}|{_PCT})\s(?:down\b|(?:as a |as |for a |for the )?down ?payment)"
            rf"|down ?payments?\s(?:of|is|as low as|from|starting at|:)?\s?(?:only |just )?"
            rf"(?:{_MONEY}|{_PCT})"
            rf"|(?:enganche|pago inicial)\s(?:de|del)?\s?(?:solo )?(?:{_MONEY}|{_PCT})"
        ),
    ),
    "repayment_terms": (
        "closed_end",
        "12 CFR 1026.24(d)(1)(ii)",
        re.compile(
            rf"\b\d{{1,3}}\s?-?\s?{_PERIOD}\s?-?\s?(?:fixed|terms?|loan|mortgage|arm|refi|"
            rf"refinance|repayment|financing|auto loan|car loan|plazos?)\b"
            rf"|\b(?:term|terms|repay\w*|financ\w*|loan|pay it off|plazos?)\s(?:of|over|in|for|"
            rf"up to|from|de|a)\s(?:up to |hasta )?\d{{1,3}}(?:\s?(?:to|-|–|a)\s?\d{{1,3}})?"
            rf"\s?{_PERIOD}\b"
            rf"|\b\d{{1,3}}\s(?:monthly\s|equal\s)?(?:payments|installments|instalments|pagos|"
            rf"mensualidades)\b"
            rf"|\b(?:over|in)\s\d{{1,3}}\s{_PERIOD}\b"
            # "for 60 months", unless it is a promotional period ("0% intro for 15 months").
            rf"|(?<!intro )(?<!introductory )(?<!promo )(?<!% )\bfor\s\d{{1,3}}\s{_PERIOD}\b"
            rf"(?!.{{0,40}}\b(?:then|after that|afterwards|luego|despues)\b)"
        ),
    ),
    "payment_amount": (
        "closed_end",
        "12 CFR 1026.24(d)(1)(iii)",
        re.compile(
            rf"{_MONEY}\s?(?:/|per|a|each|every)\s?(?:mo|month|week|wk|two weeks|year|yr)\b"
            rf"|{_MONEY}\s(?:monthly|biweekly|al mes|mensuales?)"
            rf"|payments?\s(?:of|as low as|from|starting at|is|are|would be|around|about|"
            rf"under|:)\s?(?:only |just |about |around )?{_MONEY}"
            rf"|(?:pagos?|mensualidad(?:es)?)\s(?:\w+\s){{0,2}}(?:de|desde)\s(?:aprox\.?\s)?"
            rf"{_MONEY}"
        ),
    ),
    "finance_charge": (
        "closed_end",
        "12 CFR 1026.24(d)(1)(iv)",
        re.compile(
            rf"finance charges?\s(?:of|is|are|:|total(?:s|ing)?)?\s?{_MONEY}"
            rf"|{_MONEY}\s(?:in|of)\s(?:total\s)?(?:interest|finance charges?)"
            rf"|(?:total\s)?interest\s(?:of|is|would be|comes to|:|totals?)\s{_MONEY}"
        ),
    ),
    "open_end_rate": (
        "open_end",
        "12 CFR 1026.16(b)(1)(ii)",
        re.compile(
            rf"{_PCT}\s?(?:intro(?:ductory)?\s|promo(?:tional)?\s|variable\s|fixed\s|"
            rf"purchase\s|balance transfer\s)?(?:apr|annual percentage rate|interest|rate)"
            rf"|(?:apr|interest rate|rate|tasa)\s(?:\w+\s)?(?:of|is|as low as|from|starting at|de|"
            rf":)\s{_PCT}"
        ),
    ),
    "open_end_fee": (
        "open_end",
        "12 CFR 1026.16(b)(1)(i), (iii)",
        re.compile(
            rf"{_MONEY}\s(?:annual|membership|balance transfer|cash advance|late|"
            rf"foreign transaction|over-?limit|transaction|returned payment)\sfee"
            rf"|(?:annual|membership|balance transfer|cash advance|late|foreign transaction|"
            rf"over-?limit|returned payment)\sfees?\s(?:of|is|:)?\s?(?:{_MONEY}|{_PCT})"
            rf"|\bno\s(?:annual|membership|foreign transaction|balance transfer)\sfees?\b"
            rf"|(?:{_MONEY}|{_PCT})\s(?:[a-z]+\s)?fee"
            rf"|\bfees?\s(?:on\s)?(?:\w+\s){{0,4}}(?:is|are|of|:)\s(?:up to\s)?(?:{_MONEY}|{_PCT})"
            rf"|\bno\s(?:[a-z]+\s)?fees?\b"
            rf"|\b(?:sin|no tiene)\s(?:cuota anual|comision\w*)"
            rf"|\b(?:cuota anual|comision\w*)\s(?:de|del)\s(?:{_MONEY}|{_PCT})"
        ),
    ),
}

_OPEN_END = re.compile(
    r"\b(?:credit cards?|(?<!debit )cards?|heloc|home equity lines?|lines? of credit|credit lines?|"
    r"tarjetas?|linea de credito)\b"
)
_HOME_EQUITY = re.compile(r"\b(?:heloc|home equity)\b")
_APR_STATED = re.compile(
    rf"{_PCT}\s?(?:\w+\s)?(?:apr|annual percentage rate)|(?:apr|annual percentage rate)"
    rf"\s(?:of|is|as low as|from|starting at|:)?\s?{_PCT}"
)
_VARIABLE = re.compile(r"\b(?:variable|may increase|can increase|adjustable|may change)\b")
_MAX_APR = re.compile(r"\b(?:maximum|max|highest|cap|capped|up to)\s(?:\w+\s)?(?:apr|rate)\b")
_FEES_STATED = re.compile(r"\b(?:annual|membership|participation)\sfees?\b|\bfees?\b")
_OPENING_COSTS = re.compile(r"\b(?:closing|opening)\s(?:costs|fees)\b")
_DIGIT = re.compile(r"\d")
_URL = re.compile(r"\b(?:https?://|www\.)([a-z0-9.-]+\.[a-z]{2,})(?:[/?#][^\s]*)?")


@dataclass(frozen=True, slots=True)
class Trigger:
    term: str
    citation: str
    match: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Disclosure:
    item: str
    citation: str
    satisfied: bool
    how: str


@dataclass(frozen=True)
class RegZAdvice:
    triggers: list[Trigger] = field(default_factory=list)
    disclosures: list[Disclosure] = field(default_factory=list)
    disclosure_link: str = ""

    @property
    def complete(self) -> bool:
        return all(item.satisfied for item in self.disclosures)

    def as_dict(self) -> dict:
        return {
            "triggers": [
                {
                    "term": t.term,
                    "citation": t.citation,
                    "match": t.match,
                    "start": t.start,
                    "end": t.end,
                }
                for t in self.triggers
            ],
            "disclosures": [
                {"item": d.item, "citation": d.citation, "satisfied": d.satisfied, "how": d.how}
                for d in self.disclosures
            ],
            "disclosure_link": self.disclosure_link,
            "complete": self.complete,
        }


def _link(text: str, domains: tuple[str, ...]) -> str:
    for match in _URL.finditer(text):
        host = match.group(1).lower()
        if any(host == d or host.endswith("." + d) for d in domains):
            return match.group()
    return ""


def check(folded, original: str, *, lending_context: bool, link_domains: tuple[str, ...]):
    """The Reg Z advice for one draft (None when it states no triggering term)."""
    text = folded.text
    open_end = bool(_OPEN_END.search(text))
    triggers: list[Trigger] = []
    has_digit = bool(_DIGIT.search(text))
    for term, (family, citation, pattern) in TERMS.items():
        if not (has_digit or term == "open_end_fee"):
            continue
        if not any(word in text for word in PREFILTER[term]):
            continue
        if family == "open_end" and not open_end:
            continue
        if family == "closed_end" and not lending_context:
            continue
        for match in pattern.finditer(text):
            start, end = folded.span(*match.span())
            triggers.append(Trigger(term, citation, original[start:end], start, end))
    if not triggers:
        return None
    triggers.sort(key=lambda t: t.start)
    link = _link(text, link_domains)
    terms = {t.term for t in triggers}

    def item(name: str, citation: str, present: bool, how: str) -> Disclosure:
        if present:
            return Disclosure(name, citation, True, how)
        if link:
            return Disclosure(name, citation, True, "link to the full disclosures")
        return Disclosure(name, citation, False, "missing")

    disclosures: list[Disclosure] = []
    if terms & {"down_payment", "repayment_terms", "payment_amount", "finance_charge"}:
        disclosures += [
            item(
                "the down payment",
                "12 CFR 1026.24(d)(2)(i)",
                "down_payment" in terms or bool(re.search(r"\bno down ?payment\b", text)),
                "stated",
            ),
            item(
                "the terms of repayment",
                "12 CFR 1026.24(d)(2)(ii)",
                "repayment_terms" in terms,
                "stated",
            ),
            item(
                'the "annual percentage rate" (APR), and that it may increase if it can',
                "12 CFR 1026.24(d)(2)(iii)",
                bool(_APR_STATED.search(text)),
                "stated",
            ),
        ]
    if open_end and terms & {"open_end_rate", "open_end_fee"}:
        disclosures += [
            item(
                "each periodic rate as an APR, and whether it is variable",
                "12 CFR 1026.16(b)(1)(ii)",
                bool(_APR_STATED.search(text)) and bool(_VARIABLE.search(text)),
                "stated",
            ),
            item(
                "any minimum, fixed, transaction or activity charge, and any membership fee",
                "12 CFR 1026.16(b)(1)(i), (iii)",
                "open_end_fee" in terms or bool(_FEES_STATED.search(text)),
                "stated",
            ),
        ]
    if _HOME_EQUITY.search(text):
        disclosures += [
            item(
                "loan fees as a percentage of the credit line, and an estimate of opening costs",
                "12 CFR 1026.16(d)(1)(i)",
                bool(_OPENING_COSTS.search(text)),
                "stated",
            ),
            item(
                "the highest APR that can be imposed",
                "12 CFR 1026.16(d)(1)(iii)",
                bool(_MAX_APR.search(text)),
                "stated",
            ),
        ]
    return RegZAdvice(triggers=triggers, disclosures=disclosures, disclosure_link=link)
