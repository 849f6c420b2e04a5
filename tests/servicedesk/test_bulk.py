"""`bulk_insert`: the ingest path's many-rows INSERT stores what `bulk_create` stores."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from servicedesk import bulk
from servicedesk.bulk import bulk_insert
from tests.factories import ChannelFactory
from tickets.models import Customer, Escalation, Mention, Ticket

pytestmark = pytest.mark.django_db

# Unicode a hostile post may carry: accents, emoji, RTL, a quote, a backslash.
TEXT = 'Préstamo 4,9 % 🏦 ‏مرحبا‏ "quoted" back\\slash'


NOW = timezone.now()


def _ticket(channel, customer, n: int) -> Ticket:
    now = NOW
    return Ticket(
        channel=channel,
        customer=customer,
        priority="high" if n % 2 else "normal",
        sentiment="negative",
        regulated=bool(n % 2),
        regulated_reasons=[{"source": "inbound", "match": TEXT, "n": n}],
        pii_flags=["card_number"] if n % 3 == 0 else [],
        posted_at=now - timedelta(minutes=n),
        received_at=now,
        deadline=now + timedelta(minutes=60 - n),
    )


def _fields(obj) -> dict:
    values = model_to_dict(obj, exclude=["id", "created_at", "updated_at"])
    return {key: value for key, value in values.items()}


def test_rows_are_stored_as_bulk_create_stores_them_and_get_their_keys():
    channel = ChannelFactory()
    customer = Customer.objects.create(platform="simulated", external_id="c-1", handle="h")
    ours = [_ticket(channel, customer, n) for n in range(6)]
    theirs = [_ticket(channel, customer, n) for n in range(6)]

    with transaction.atomic():
        bulk_insert(ours)
        Ticket.objects.bulk_create(theirs)

    assert all(ticket.pk is not None and not ticket._state.adding for ticket in ours)
    assert len({ticket.pk for ticket in ours}) == 6
    for mine, reference in zip(ours, theirs, strict=True):
        stored = Ticket.objects.get(pk=mine.pk)
        assert _fields(stored) == _fields(Ticket.objects.get(pk=reference.pk))
        assert stored.regulated_reasons[0]["match"] == TEXT
        assert stored.updated_at is not None  # auto_now, filled in as bulk_create fills it


def test_conflicting_rows_are_skipped_and_only_the_inserted_ones_returned():
    channel = ChannelFactory()
    customer = Customer.objects.create(platform="simulated", external_id="c-1", handle="h")
    tickets = [_ticket(channel, customer, n) for n in range(3)]
    bulk_insert(tickets)
    now = timezone.now()

    def mention(external_id: str, ticket: Ticket) -> Mention:
        return Mention(
            channel=channel,
            external_id=external_id,
            customer=customer,
            ticket=ticket,
            text=TEXT,
            posted_at=now,
            received_at=now,
            raw={"id_str": external_id, "text": TEXT},
        )

    bulk_insert([mention("p-1", tickets[0])])
    returned = bulk_insert(
        [mention("p-1", tickets[1]), mention("p-2", tickets[2])],
        ignore_conflicts=True,
        returning=("external_id", "ticket"),
    )

    assert returned == [("p-2", tickets[2].pk)]
    assert sorted(Mention.objects.values_list("external_id", "ticket_id")) == [
        ("p-1", tickets[0].pk),
        ("p-2", tickets[2].pk),
    ]
    assert Mention.objects.get(external_id="p-2").raw == {"id_str": "p-2", "text": TEXT}


def test_a_conflict_without_ignore_conflicts_raises_and_stores_nothing_of_the_statement():
    channel = ChannelFactory()
    customer = Customer.objects.create(platform="simulated", external_id="c-1", handle="h")
    now = timezone.now()
    rows = [
        Customer(platform="simulated", external_id=external_id, handle="x", created_at=now)
        for external_id in ("c-2", "c-1")
    ]

    with pytest.raises(IntegrityError), transaction.atomic():
        bulk_insert(rows)

    assert list(Customer.objects.values_list("external_id", flat=True)) == ["c-1"]
    assert channel.pk and customer.pk


def test_a_batch_larger_than_one_statement_takes_is_split_in_order(monkeypatch):
    channel = ChannelFactory()
    customer = Customer.objects.create(platform="simulated", external_id="c-1", handle="h")
    fields = len([f for f in Ticket._meta.concrete_fields if not f.primary_key])
    monkeypatch.setattr(bulk, "MAX_PARAMETERS", fields * 2)  # two rows a statement
    tickets = [_ticket(channel, customer, n) for n in range(5)]

    bulk_insert(tickets)

    stored = Ticket.objects.in_bulk([ticket.pk for ticket in tickets])
    assert [stored[ticket.pk].deadline for ticket in tickets] == [t.deadline for t in tickets]
    assert [ticket.pk for ticket in tickets] == sorted(ticket.pk for ticket in tickets)


def test_database_defaults_are_refused_with_the_field_named():
    with pytest.raises(TypeError, match="created_at"):
        bulk_insert([Escalation()])
