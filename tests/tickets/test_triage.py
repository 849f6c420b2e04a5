"""Inbound triage: sentiment and priority that a supervisor would agree with."""

from __future__ import annotations

import pytest

from approvals.screening import screen
from tickets.triage import triage_priority, triage_sentiment

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("text", "sentiment"),
    [
        ("Worst bank ever. Three hours on hold and nobody helps 😡", "negative"),
        ("Thanks so much to the Hillcrest team, amazing service!", "positive"),
        ("What time does the Riverside branch open on Saturday?", "neutral"),
        ("El servicio es pésimo, estoy furioso", "negative"),
        ("Gracias, excelente atención", "positive"),
    ],
)
def test_sentiment_reads_social_media_text(text, sentiment):
    assert triage_sentiment(text) == sentiment


@pytest.mark.parametrize(
    ("text", "priority"),
    [
        ("someone hacked my account and stole $900, I'm locked out", "high"),
        ("I'm filing a complaint with the CFPB about how you treated me, awful", "high"),
        ("What time does the Riverside branch open on Saturday?", "normal"),
        ("love the new app design", "normal"),
    ],
)
def test_priority_rises_for_fraud_regulators_and_anger(text, priority):
    assert triage_priority(text, screen(text)) == priority


def test_reach_raises_priority_of_a_mildly_negative_post():
    text = "kinda annoyed the app logged me out again"

    assert triage_priority(text, screen(text)) == "normal"
    assert triage_priority(text, screen(text), followers=250_000) == "high"


def test_an_ingested_fraud_post_is_a_high_priority_negative_ticket(api, agent, ingest):
    ticket_id = ingest(text="@NorthwindBank FRAUD on my card, $2,000 gone. furious")["ticket_id"]

    ticket = api(agent).get(f"/api/v1/tickets/{ticket_id}/").json()
    assert ticket["priority"] == "high"
    assert ticket["sentiment"] == "negative"
