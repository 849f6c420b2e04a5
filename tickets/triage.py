"""Inbound triage: regulated or not (from screening), priority and sentiment.

A first lexicon; the compliance engine and a real sentiment model replace it later.
"""

from __future__ import annotations

import re

from approvals.screening import Screening
from tickets.enums import Priority, Sentiment

_URGENT = re.compile(
    r"\b(?:fraud|scam(?:med)?|stolen|hacked|unauthori[sz]ed|locked out|identity theft|"
    r"phishing|can'?t access|cannot access|emergency|urgent|robad[ao]|fraude)\b",
    re.IGNORECASE,
)
_NEGATIVE = re.compile(
    r"\b(?:terrible|awful|worst|angry|furious|ridiculous|useless|disappointed|hate|"
    r"unacceptable|scam|rip[- ]?off|never again|frustrat\w*|waiting|still no|horrible|"
    r"fraud|stolen|complain\w*|p[eé]simo|terrible)\b",
    re.IGNORECASE,
)
_POSITIVE = re.compile(
    r"\b(?:thanks?|thank you|great|love|awesome|excellent|helpful|amazing|appreciate\w*|"
    r"fantastic|gracias|perfect)\b",
    re.IGNORECASE,
)


def triage_priority(text: str, screening: Screening) -> str:
    if _URGENT.search(text):
        return Priority.HIGH
    return Priority.NORMAL


def triage_sentiment(text: str) -> str:
    negative = len(_NEGATIVE.findall(text))
    positive = len(_POSITIVE.findall(text))
    if negative > positive:
        return Sentiment.NEGATIVE
    if positive > negative:
        return Sentiment.POSITIVE
    return Sentiment.NEUTRAL
