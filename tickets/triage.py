"""Inbound triage: sentiment (VADER, made for social-media text) and a priority score.

Priority adds up what makes a post urgent for a bank: negative sentiment, fraud or
lock-out words, a regulator or a lawyer named, a fair-lending red flag, and reach when
the platform tells us how many people follow the author.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from approvals.screening import Screening
from tickets.enums import Priority, Sentiment

# VADER reads English; a few Spanish words keep Spanish posts from all reading neutral.
_ES_NEGATIVE = re.compile(
    r"\b(?:p[eé]sim[oa]|terrible|horrible|mal[oa]?|furios[oa]|molest[oa]|enojad[oa]|"
    r"harto|harta|odio|fraude|robo|robaron|estafa|nunca|peor|queja|verg[uü]enza)\b",
    re.IGNORECASE,
)
_ES_POSITIVE = re.compile(
    r"\b(?:gracias|excelente|genial|buen[oa]?|incre[ií]ble|encanta|feliz|perfecto|"
    r"amables?|r[aá]pido)\b",
    re.IGNORECASE,
)
_URGENT = re.compile(
    r"\b(?:locked out|can'?t (?:log ?in|access)|cannot access|emergency|urgent|asap|"
    r"bloquead[oa]|urgente)\b",
    re.IGNORECASE,
)

_analyzer = None
_analyzer_lock = threading.Lock()


def _vader():
    global _analyzer
    if _analyzer is None:
        with _analyzer_lock:
            if _analyzer is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


def sentiment_score(text: str) -> float:
    """VADER's compound score in [-1, 1], nudged by Spanish words VADER does not know."""
    compound = _vader().polarity_scores(text[:2000])["compound"]
    if compound == 0.0:
        negative = len(_ES_NEGATIVE.findall(text))
        positive = len(_ES_POSITIVE.findall(text))
        compound = max(-1.0, min(1.0, 0.3 * (positive - negative)))
    return compound


@dataclass(frozen=True)
class Triage:
    sentiment: str
    priority: str


def triage(text: str, screening: Screening, *, followers: int | None = None) -> Triage:
    """A new post's sentiment and priority, from one reading of its sentiment."""
    compound = sentiment_score(text)
    score = priority_score(text, screening, followers=followers, compound=compound)
    return Triage(
        sentiment=_sentiment_label(compound),
        priority=Priority.HIGH if score >= 3 else Priority.NORMAL,
    )


def _sentiment_label(score: float) -> str:
    if score <= -0.05:
        return Sentiment.NEGATIVE
    if score >= 0.05:
        return Sentiment.POSITIVE
    return Sentiment.NEUTRAL


def triage_sentiment(text: str) -> str:
    return _sentiment_label(sentiment_score(text))


def priority_score(
    text: str,
    screening: Screening,
    *,
    followers: int | None = None,
    compound: float | None = None,
) -> int:
    """`compound`: the text's sentiment_score when the caller has it already."""
    categories = set(screening.categories)
    score = 0
    if compound is None:
        compound = sentiment_score(text)
    if compound <= -0.6:
        score += 2
    elif compound <= -0.05:
        score += 1
    if "fraud" in categories or _URGENT.search(text):
        score += 3
    if "complaint" in categories:
        score += 2
    if "fair_lending" in categories:
        score += 2
    if screening.pii:
        score += 1
    if followers:
        score += 2 if followers >= 100_000 else 1 if followers >= 10_000 else 0
    return score


def triage_priority(text: str, screening: Screening, *, followers: int | None = None) -> str:
    return triage(text, screening, followers=followers).priority
