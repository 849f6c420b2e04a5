"""Inbound events → mentions and tickets, a batch at a time.

In a busy batch nearly every event is a new post that starts a conversation. Those are
ingested together (`_new_threads_ingest`): a handful of statements and one commit for
the whole batch instead of a transaction per post. Every other event — an edit, a
deletion, a follow-up in a thread we know, a post whose id we already have, a post that
refers to an earlier event of the same batch — goes through the ticket services one at a
time, in the batch's order, after the new threads: the path a lone event takes. An
event can only be moved ahead of the batch's other events when none of them concerns it,
so the result is the one event-by-event processing gives.

The batch path builds what `tickets.services.mentions.mention_ingest` builds for a post
that opens a ticket — the same customer upsert, screening, triage, deadline, ticket,
mention and audit event — and tests/connectors/test_batch_ingest.py holds the two paths
to the same result, field by field.

Per event the outcome is True (a new mention), False (nothing new: our own post, a
duplicate, an edit, a deletion) or the exception it raised: an event fails alone.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, replace

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connectors.base import InboundEvent
from connectors.models import ChannelAccount
from servicedesk.bulk import bulk_insert
from tickets.clock import stamp_now

logger = logging.getLogger(__name__)

Outcome = bool | Exception


@dataclass(frozen=True)
class _Item:
    index: int
    channel: ChannelAccount
    event: InboundEvent


def events_ingest(items: list[tuple[ChannelAccount, InboundEvent]]) -> list[Outcome]:
    """Ingest events in order; one outcome per event (see the module's docstring)."""
    outcomes: list[Outcome | None] = [None] * len(items)
    todo: list[_Item] = []
    for index, (channel, event) in enumerate(items):
        if event.is_own:
            outcomes[index] = False  # our own post: answering it would talk to ourselves
            continue
        # One normal form for every platform's text (screening and hashes compare it).
        event = replace(event, text=unicodedata.normalize("NFC", event.text))
        todo.append(_Item(index, channel, event))
    fresh, rest = _split(todo)
    if fresh:
        try:
            created = _new_threads_ingest(fresh)
        except Exception:  # e.g. a value a column refuses: each then fails (or not) alone
            logger.exception("batch ingest of %d new posts failed; one by one instead", len(fresh))
            rest = sorted([*rest, *fresh], key=lambda item: item.index)
        else:
            # A post stored by another worker meanwhile (the insert-first dedupe spotted
            # it) goes the one-at-a-time way: a duplicate, or an edit if its text differs.
            late = [item for item in fresh if item.index not in created]
            for index in created:
                outcomes[index] = True
            rest = sorted([*rest, *late], key=lambda item: item.index)
    for item in rest:
        try:
            outcomes[item.index] = _apply_event(item.channel, item.event)
        except Exception as exc:  # one bad event must not lose the others
            logger.exception("event %s failed", item.event.external_id)
            outcomes[item.index] = exc
    return outcomes  # type: ignore[return-value]


def _split(items: list[_Item]) -> tuple[list[_Item], list[_Item]]:
    """(new posts opening a conversation, everything else), each in the batch's order.

    A post is new when neither its id nor the post it edits is stored or named by an
    earlier event of the batch, and it answers no stored post, reply of ours or earlier
    event of the batch. Two queries, whatever the batch's size."""
    from tickets.models import Mention, Reply

    wanted: dict[int, set[str]] = {}
    for item in items:
        ids = wanted.setdefault(item.channel.pk, set())
        ids.update(_keys(item.event))
        if item.event.in_reply_to_external_id:
            ids.add(item.event.in_reply_to_external_id)
    known: set[tuple[int, str]] = set()
    if wanted:
        known.update(
            Mention.objects.filter(_any_of("channel_id", wanted)).values_list(
                "channel_id", "external_id"
            )
        )
        parents = {
            channel_id: {
                item.event.in_reply_to_external_id
                for item in items
                if item.channel.pk == channel_id and item.event.in_reply_to_external_id
            }
            - {external_id for known_channel, external_id in known if known_channel == channel_id}
            for channel_id in wanted
        }
        parents = {channel_id: ids for channel_id, ids in parents.items() if ids}
        if parents:
            known.update(
                Reply.objects.filter(_any_of("ticket__channel_id", parents)).values_list(
                    "ticket__channel_id", "external_id"
                )
            )
    fresh: list[_Item] = []
    rest: list[_Item] = []
    seen: set[tuple[int, str]] = set()
    for item in items:
        event, channel_id = item.event, item.channel.pk
        keys = {(channel_id, key) for key in _keys(event)}
        parent = (channel_id, event.in_reply_to_external_id)
        is_new = (
            event.kind == "post"
            and bool(event.author.get("external_id"))
            and not keys & known
            and not keys & seen
            and not (event.in_reply_to_external_id and (parent in known or parent in seen))
        )
        (fresh if is_new else rest).append(item)
        seen |= keys
    return fresh, rest


def _keys(event: InboundEvent) -> set[str]:
    """The stored posts an event concerns: its own id, and the one it edits (X)."""
    return {event.external_id} | ({event.extra["edit_of"]} if event.extra.get("edit_of") else set())


def _any_of(channel_field: str, ids_by_channel: dict[int, set[str]]) -> Q:
    query = Q()
    for channel_id, ids in ids_by_channel.items():
        query |= Q(**{channel_field: channel_id, "external_id__in": sorted(ids)})
    return query


def _apply_event(channel: ChannelAccount, event: InboundEvent) -> bool:
    """One event through the ticket services. True when a new mention was stored."""
    from tickets.services import mention_delete, mention_edit, mention_ingest

    if event.kind == "delete":
        mention_delete(channel=channel, external_id=event.external_id)
        return False
    # X reports an edit as a new post naming the one it replaces.
    edited_id = event.extra.get("edit_of") or event.external_id
    if mention_edit(channel=channel, external_id=edited_id, text=event.text, raw=event.raw):
        return False
    result = mention_ingest(
        channel=channel,
        external_id=event.external_id,
        author=event.author,
        text=event.text,
        url=event.url,
        posted_at=event.posted_at or timezone.now(),
        in_reply_to_external_id=event.in_reply_to_external_id,
        raw=event.raw,
        reply_context=event.extra,
    )
    return result.created


def _new_threads_ingest(items: list[_Item]) -> set[int]:
    """New posts, each opening a triaged ticket, in one transaction; the indexes of the
    posts stored (a post another worker stored meanwhile is left out).

    Locks are taken in the order every ingest takes them — customers, then mentions
    (the unique (channel, external_id) entry), then the audit chain's head — and within
    each kind in a sorted order, so two batches, or a batch and a lone ingest, wait for
    each other instead of deadlocking. Raises on any error: nothing of the batch is kept.
    """
    from approvals.screening import screen
    from servicedesk.audit import audit_record_many
    from tickets.enums import TicketState
    from tickets.models import Mention, Ticket
    from tickets.services.mentions import ticket_triaged, triage_event_data

    items = sorted(items, key=lambda item: (item.channel.pk, item.event.external_id))
    now = stamp_now()
    with transaction.atomic():
        customer_of = _customers_upsert(items, now)
        tickets: list[Ticket] = []
        mentions: list[Mention] = []
        screenings = []
        for item in items:
            event, channel = item.event, item.channel
            screening = screen(event.text)
            ticket = ticket_triaged(
                channel=channel,
                customer_id=customer_of[(channel.platform, event.author["external_id"])],
                text=event.text,
                screening=screening,
                posted_at=event.posted_at or now,
                now=now,
            )
            tickets.append(ticket)
            screenings.append(screening)
        bulk_insert(tickets)
        for item, ticket, screening in zip(items, tickets, screenings, strict=True):
            event = item.event
            mentions.append(
                Mention(
                    channel=item.channel,
                    external_id=event.external_id,
                    customer_id=ticket.customer_id,
                    ticket=ticket,
                    text=event.text,
                    url=event.url,
                    posted_at=ticket.posted_at,
                    received_at=now,
                    in_reply_to_external_id=event.in_reply_to_external_id,
                    raw=event.raw or {},
                    screening=screening.as_dict(),
                    reply_context=event.extra or {},
                )
            )
        # Insert first: the unique (channel, external_id) constraint spots a post that
        # another worker stored meanwhile; its ticket here is then dropped unseen.
        stored = {
            ticket_id: mention_id
            for mention_id, ticket_id in bulk_insert(
                mentions, ignore_conflicts=True, returning=("id", "ticket")
            )
        }
        dropped = [ticket.pk for ticket in tickets if ticket.pk not in stored]
        if dropped:
            Ticket.objects.filter(pk__in=dropped).delete()
        created: set[int] = set()
        triaged = []
        for item, ticket in zip(items, tickets, strict=True):
            if ticket.pk not in stored:
                continue
            triaged.append(
                {
                    "action": "ticket.triage",
                    "ticket_id": ticket.pk,
                    "obj": ticket,
                    "from_state": TicketState.NEW,
                    "to_state": ticket.state,
                    "data": triage_event_data(ticket, stored[ticket.pk]),
                }
            )
            created.add(item.index)
        audit_record_many(triaged)  # one append for the batch: the chain is held once
    return created


def _customers_upsert(items: list[_Item], now) -> dict[tuple[str, str], int]:
    """Each author's customer id, the customer created or given the handle and name of
    their latest post in the batch. Most authors are known and unchanged: one SELECT
    finds them, and only the others are written (one upsert, in a sorted order)."""
    from tickets.models import Customer

    latest: dict[tuple[str, str], dict[str, str]] = {}
    for item in sorted(items, key=lambda item: item.index):
        author = item.event.author
        latest[(item.channel.platform, author["external_id"])] = {
            "handle": author.get("handle", ""),
            "display_name": author.get("display_name", ""),
        }
    by_platform: dict[str, list[str]] = {}
    for platform, external_id in latest:
        by_platform.setdefault(platform, []).append(external_id)
    query = Q()
    for platform, external_ids in by_platform.items():
        query |= Q(platform=platform, external_id__in=external_ids)
    ids: dict[tuple[str, str], int] = {}
    for pk, platform, external_id, handle, display_name in Customer.objects.filter(
        query
    ).values_list("pk", "platform", "external_id", "handle", "display_name"):
        wanted = latest[(platform, external_id)]
        if (handle, display_name) == (wanted["handle"], wanted["display_name"]):
            ids[(platform, external_id)] = pk
    changed = sorted(key for key in latest if key not in ids)
    if changed:
        customers = Customer.objects.bulk_create(
            [
                Customer(platform=platform, external_id=external_id, created_at=now, **latest[key])
                for key in changed
                for platform, external_id in [key]
            ],
            update_conflicts=True,
            unique_fields=["platform", "external_id"],
            update_fields=["handle", "display_name"],
        )
        ids.update({(c.platform, c.external_id): c.pk for c in customers})
    return ids
