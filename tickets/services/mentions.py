"""Ingesting inbound posts: one mention per delivery, one ticket per conversation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.screening import screen
from connectors.models import ChannelAccount
from servicedesk.audit import audit_record
from tickets.clock import stamp_now
from tickets.enums import WORKING_STATES, TicketState
from tickets.models import Customer, Mention, Reply, Ticket
from tickets.services.common import apply_transition, lock_ticket
from tickets.services.tickets import ticket_mark_regulated
from tickets.triage import triage
from tickets.windows import deadline_for


@dataclass(frozen=True)
class IngestResult:
    mention: Mention
    ticket: Ticket
    created: bool


def _customer_upsert(*, platform: str, author: dict[str, str]) -> Customer:
    """The customer, created or with the handle and name of their latest post: one statement."""
    (customer,) = Customer.objects.bulk_create(
        [
            Customer(
                platform=platform,
                external_id=author["external_id"],
                handle=author.get("handle", ""),
                display_name=author.get("display_name", ""),
                created_at=timezone.now(),
            )
        ],
        update_conflicts=True,
        unique_fields=["platform", "external_id"],
        update_fields=["handle", "display_name"],
    )
    return customer


def _thread_ticket_id(*, channel: ChannelAccount, in_reply_to: str) -> int | None:
    """The ticket of the post this one answers: a customer's post or one of our replies."""
    if not in_reply_to:
        return None
    ticket_id = (
        Mention.objects.filter(channel=channel, external_id=in_reply_to)
        .values_list("ticket_id", flat=True)
        .first()
    )
    if ticket_id is None:
        ticket_id = (
            Reply.objects.filter(ticket__channel=channel, external_id=in_reply_to)
            .values_list("ticket_id", flat=True)
            .first()
        )
    return ticket_id


def mention_ingest(
    *,
    channel: ChannelAccount,
    external_id: str,
    author: dict[str, str],
    text: str,
    url: str = "",
    posted_at: datetime,
    in_reply_to_external_id: str = "",
    raw: dict[str, Any] | None = None,
    reply_context: dict[str, Any] | None = None,
    actor=None,
) -> IngestResult:
    """Turn one inbound post into a mention on a ticket, exactly once.

    The same (channel, external_id) twice returns the first mention and its ticket
    with created=False. A post answering a known post or reply joins that ticket,
    reopening it if it was replied or closed; any other post opens a new ticket,
    triaged at once, with its deadline from the customer's own `posted_at`.
    """
    # New posts are the common case, so the insert comes first and the unique
    # (channel, external_id) constraint spots a redelivery: its transaction is rolled
    # back whole and the first delivery's mention and ticket are returned.
    try:
        with transaction.atomic():
            return _mention_create(
                channel=channel,
                external_id=external_id,
                author=author,
                text=text,
                url=url,
                posted_at=posted_at,
                in_reply_to_external_id=in_reply_to_external_id,
                raw=raw or {},
                reply_context=reply_context or {},
                actor=actor,
            )
    except IntegrityError:
        existing = (
            Mention.objects.select_related("ticket")
            .filter(channel=channel, external_id=external_id)
            .first()
        )
        if existing is None:
            raise
        return IngestResult(existing, existing.ticket, created=False)


def _mention_create(
    *,
    channel: ChannelAccount,
    external_id: str,
    author: dict[str, str],
    text: str,
    url: str,
    posted_at: datetime,
    in_reply_to_external_id: str,
    raw: dict[str, Any],
    reply_context: dict[str, Any],
    actor,
) -> IngestResult:
    now = stamp_now()
    customer = _customer_upsert(platform=channel.platform, author=author)
    screening = screen(text)
    parent_id = _thread_ticket_id(channel=channel, in_reply_to=in_reply_to_external_id)
    if parent_id is not None:
        ticket = lock_ticket(parent_id)
    else:
        ticket = _ticket_open(
            channel=channel,
            customer=customer,
            text=text,
            screening=screening,
            posted_at=posted_at,
            now=now,
        )
    mention = Mention.objects.create(
        channel=channel,
        external_id=external_id,
        customer=customer,
        ticket=ticket,
        text=text,
        url=url,
        posted_at=posted_at,
        received_at=now,
        in_reply_to_external_id=in_reply_to_external_id,
        raw=raw,
        screening=screening.as_dict(),
        reply_context=reply_context,
    )
    if parent_id is None:
        audit_record(
            action="ticket.triage",
            actor=actor,
            ticket_id=ticket.pk,
            obj=ticket,
            from_state=TicketState.NEW,
            to_state=ticket.state,
            data=triage_event_data(ticket, mention.pk),
        )
    else:
        _ticket_follow_up(ticket=ticket, mention=mention, screening=screening, actor=actor)
    return IngestResult(mention, ticket, created=True)


def _ticket_open(*, channel, customer, text, screening, posted_at, now) -> Ticket:
    ticket = ticket_triaged(
        channel=channel,
        customer_id=customer.pk,
        text=text,
        screening=screening,
        posted_at=posted_at,
        now=now,
    )
    ticket.save()
    return ticket


def ticket_triaged(*, channel, customer_id, text, screening, posted_at, now) -> Ticket:
    """A new post's ticket, triaged: moved from new to open, not saved yet (a batch saves
    many at once). Its triage event's data is `triage_event_data`."""
    result = triage(text, screening)
    ticket = Ticket(
        channel=channel,
        customer_id=customer_id,
        priority=result.priority,
        sentiment=result.sentiment,
        regulated=screening.regulated,
        regulated_reasons=[
            {"source": "inbound", **reason.__dict__} for reason in screening.reasons
        ],
        pii_flags=sorted({finding.kind for finding in screening.pii}),
        posted_at=posted_at,
        received_at=now,
        deadline=deadline_for(
            posted_at=posted_at, platform=channel.platform, priority=result.priority
        ),
    )
    apply_transition(ticket, "triage", None)
    return ticket


def triage_event_data(ticket: Ticket, mention_id: int) -> dict[str, Any]:
    return {
        "mention_id": mention_id,
        "regulated": ticket.regulated,
        "reasons": ticket.regulated_reasons,
        "priority": ticket.priority,
        "deadline": ticket.deadline.isoformat(),
    }


def _ticket_follow_up(*, ticket: Ticket, mention: Mention, screening, actor) -> None:
    """A customer's follow-up: join a ticket in work; reopen one we answered or closed.

    An ignored ticket stays ignored (a spammer's thread does not come back to the queue).
    """
    if screening.regulated and ticket.state != TicketState.IGNORED:
        ticket_mark_regulated(ticket=ticket, source="inbound", screening=screening, actor=actor)
    if ticket.state in WORKING_STATES or ticket.state == TicketState.IGNORED:
        audit_record(
            action="ticket.follow_up",
            actor=actor,
            ticket_id=ticket.pk,
            obj=ticket,
            data={"mention_id": mention.pk},
        )
        return
    from_state = apply_transition(ticket, "reopen", None)
    # A follow-up after our answer starts a new clock from the customer's new post.
    ticket.posted_at = mention.posted_at
    ticket.deadline = deadline_for(
        posted_at=mention.posted_at, platform=ticket.channel.platform, priority=ticket.priority
    )
    ticket.closed_at = None
    ticket.close_reason = ""
    ticket.save(
        update_fields=["state", "posted_at", "deadline", "closed_at", "close_reason", "updated_at"]
    )
    audit_record(
        action="ticket.reopen",
        actor=actor,
        ticket_id=ticket.pk,
        obj=ticket,
        from_state=from_state,
        to_state=ticket.state,
        data={"mention_id": mention.pk, "deadline": ticket.deadline.isoformat()},
    )


def mention_edit(
    *, channel: ChannelAccount, external_id: str, text: str, raw=None
) -> Mention | None:
    """The platform reports an edited post: keep the earlier text, screen the new one.

    An edit that brings in lending words makes the ticket regulated. Returns None when
    we never saw the post (then it is ingested as new by the caller).
    """
    with transaction.atomic():
        mention = (
            Mention.objects.select_for_update(of=("self",))
            .filter(channel=channel, external_id=external_id)
            .first()
        )
        if mention is None:
            return None
        if mention.text == text:
            return mention
        ticket = lock_ticket(mention.ticket_id)
        screening = screen(text)
        mention.edit_history = [
            *mention.edit_history,
            {"text": mention.text, "replaced_at": timezone.now().isoformat()},
        ]
        mention.text = text
        mention.screening = screening.as_dict()
        if raw:
            mention.raw = raw
        mention.save(update_fields=["edit_history", "text", "screening", "raw"])
        if screening.regulated and ticket.state != TicketState.IGNORED:
            ticket_mark_regulated(ticket=ticket, source="inbound", screening=screening)
        audit_record(
            action="mention.edited",
            ticket_id=ticket.pk,
            obj=mention,
            data={"mention_id": mention.pk, "edits": len(mention.edit_history)},
        )
    return mention


def mention_delete(*, channel: ChannelAccount, external_id: str) -> Mention | None:
    """The platform reports a deleted post: the archived text stays, marked deleted."""
    with transaction.atomic():
        mention = (
            Mention.objects.select_for_update(of=("self",))
            .filter(channel=channel, external_id=external_id, deleted_at__isnull=True)
            .first()
        )
        if mention is None:
            return None
        mention.deleted_at = stamp_now()
        mention.save(update_fields=["deleted_at"])
        audit_record(
            action="mention.deleted",
            ticket_id=mention.ticket_id,
            obj=mention,
            data={"mention_id": mention.pk},
        )
    return mention
