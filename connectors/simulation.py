"""Realistic customer posts for the simulated channel (the demo's live stream)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from connectors.models import ChannelAccount
from tickets.models import Mention, Reply

CUSTOMERS = [
    ("1001", "maria_g", "María González"),
    ("1002", "tjohnson", "Tom Johnson"),
    ("1003", "priya.k", "Priya Kumar"),
    ("1004", "dwalsh88", "Dan Walsh"),
    ("1005", "lin_chen", "Lin Chen"),
    ("1006", "okafor_e", "Emeka Okafor"),
    ("1007", "sarah_b", "Sarah Brooks"),
    ("1008", "jrivera", "José Rivera"),
    ("1009", "kowalski_a", "Anna Kowalski"),
    ("1010", "bigmike", "Mike Dunn"),
]

POSTS = [
    # lending questions: regulated
    "@NorthwindBank what's your current 30-year fixed mortgage rate? buying this spring",
    "@NorthwindBank can I refinance my car loan with you? my current APR is awful",
    "@NorthwindBank how long does a HELOC application take? need it for a kitchen remodel",
    "@NorthwindBank is there a prepayment penalty on your personal loans?",
    "@NorthwindBank my credit limit got lowered without any notice, why??",
    "@NorthwindBank ¿cuál es la tasa de interés para un préstamo personal?",
    "@NorthwindBank what's the minimum down payment for a first-time home buyer mortgage?",
    "@NorthwindBank does the balance transfer offer on the Platinum card still apply?",
    # service, complaints, praise
    "@NorthwindBank the app has been down all morning, I can't see my balance",
    "@NorthwindBank waiting 40 minutes on hold, this is ridiculous",
    "@NorthwindBank thanks to Jess at the Elm St branch, super helpful today!",
    "@NorthwindBank I think my card was stolen, there's a charge I didn't make",
    "@NorthwindBank got a text saying my account is locked with a link, is this a scam?",
    "@NorthwindBank how do I order new checks?",
    "@NorthwindBank why was I charged an overdraft fee when the deposit was pending?",
    "@NorthwindBank love the new app update, dark mode finally 🙌",
    "@NorthwindBank what time does the downtown branch open on Saturdays?",
    "@NorthwindBank zelle transfer still not showing after 2 days, frustrated",
    "@NorthwindBank is there a fee for international wire transfers?",
    "@NorthwindBank FREE CRYPTO GIVEAWAY click here!!! 🚀🚀",
]

FOLLOW_UPS = [
    "@NorthwindBank thanks, that helps!",
    "@NorthwindBank still waiting for an answer...",
    "@NorthwindBank ok but what would the monthly payment be on 250k?",
    "@NorthwindBank I sent you a DM",
    "@NorthwindBank that didn't fix it, the app still crashes",
]


@dataclass(frozen=True)
class SimulatedPost:
    author: dict[str, str]
    text: str
    in_reply_to: str = ""


def next_mention(rng: random.Random, channel: ChannelAccount) -> SimulatedPost:
    """A new post, or now and then a follow-up to a recent post or one of our replies."""
    if rng.random() < 0.2:
        parent = _recent_parent(rng, channel)
        if parent is not None:
            external_id, customer = parent
            return SimulatedPost(customer, rng.choice(FOLLOW_UPS), in_reply_to=external_id)
    external_id, handle, name = rng.choice(CUSTOMERS)
    author = {"external_id": external_id, "handle": handle, "display_name": name}
    return SimulatedPost(author, rng.choice(POSTS))


def _recent_parent(rng: random.Random, channel: ChannelAccount):
    sent = list(
        Reply.objects.filter(ticket__channel=channel)
        .exclude(external_id="")
        .select_related("ticket__customer")
        .order_by("-sent_at")[:5]
    )
    if sent and rng.random() < 0.6:
        reply = rng.choice(sent)
        customer = reply.ticket.customer
    else:
        mentions = list(
            Mention.objects.filter(channel=channel).select_related("customer").order_by("-id")[:10]
        )
        if not mentions:
            return None
        reply = rng.choice(mentions)
        customer = reply.customer
    author = {
        "external_id": customer.external_id,
        "handle": customer.handle,
        "display_name": customer.display_name,
    }
    return reply.external_id, author
