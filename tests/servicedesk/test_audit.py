"""The audit log: append-only, hash-chained, verifiable, and written with every change."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servicedesk.audit import audit_record, audit_record_many, audit_verify
from servicedesk.models import AuditEvent, AuditImmutableError


def _append(count: int, **data):
    with transaction.atomic():
        for index in range(count):
            audit_record(action="test.event", data={"n": index, **data})


@pytest.mark.django_db
def test_audit_events_form_a_chain_that_verifies():
    _append(3)

    events = list(AuditEvent.objects.order_by("seq"))

    assert [event.seq for event in events] == [1, 2, 3]
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    assert audit_verify().ok
    assert audit_verify().checked == 3


def test_audit_record_refuses_to_run_outside_a_transaction():
    # No database mark: autocommit, where an event could not share its change's transaction.
    assert not connection.in_atomic_block

    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(action="test.event")


@pytest.mark.django_db
def test_audit_events_cannot_be_changed_or_deleted_through_the_orm():
    _append(1)
    event = AuditEvent.objects.get()

    event.action = "forged"
    with pytest.raises(AuditImmutableError):
        event.save()
    with pytest.raises(AuditImmutableError):
        event.delete()
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().action == "test.event"


@pytest.mark.django_db
def test_verify_audit_reports_the_first_tampered_event():
    if connection.vendor == "postgresql":
        # Only an owner bypassing the append-only trigger can tamper; the test's
        # transaction rolls this back.
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE servicedesk_auditevent DISABLE TRIGGER USER")
    _append(5)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE servicedesk_auditevent SET data = %s WHERE seq = 3", ['{"n": 99}'])

    report = audit_verify()

    assert report.ok is False
    assert report.broken_at == 3
    assert report.checked == 2
    with pytest.raises(CommandError, match="BROKEN at event #3"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_verify_audit_command_says_ok(capsys):
    _append(2)

    call_command("verify_audit")

    assert "audit chain OK: 2 events verified" in capsys.readouterr().out


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_events_carry_the_database_time_whatever_the_process_clock_says():
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    from tickets.clock import db_now

    wrong = timezone.now() - timedelta(hours=3)
    with mock.patch("servicedesk.audit.timezone.now", return_value=wrong):
        _append(2)
    database_time = db_now()

    events = list(AuditEvent.objects.order_by("seq"))
    assert all(abs((database_time - event.created_at).total_seconds()) < 60 for event in events)
    assert events[0].created_at <= events[1].created_at
    assert audit_verify().ok  # the hash covers the time the database wrote


def _linked(events: list[AuditEvent]) -> bool:
    return all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))


def _records(count: int, start: int = 0, **data) -> list[dict]:
    return [{"action": "test.batch", "data": {"n": start + i, **data}} for i in range(count)]


@pytest.mark.django_db
def test_a_batch_append_continues_the_chain_like_single_appends_do():
    _append(2)
    with transaction.atomic():
        batch = audit_record_many(_records(3, note="prêt à 4,9 % — ✓"))
    _append(1)

    events = list(AuditEvent.objects.order_by("seq"))

    assert [event.seq for event in events] == [1, 2, 3, 4, 5, 6]
    assert [event.action for event in events[2:5]] == ["test.batch"] * 3
    assert [event.data["n"] for event in events[2:5]] == [0, 1, 2]
    assert _linked(events)
    assert [event.pk for event in batch] == [event.pk for event in events[2:5]]
    assert [event.hash for event in batch] == [event.hash for event in events[2:5]]
    assert len({event.created_at for event in events[2:5]}) == 1  # the batch's one moment
    report = audit_verify()
    assert report.ok and report.checked == 6


@pytest.mark.django_db
def test_a_batch_starts_the_chain_of_a_new_database_and_an_empty_batch_writes_nothing():
    from servicedesk.models import AuditChainHead

    AuditChainHead.objects.all().delete()
    with transaction.atomic():
        assert audit_record_many([]) == []
    assert not AuditEvent.objects.exists()

    with transaction.atomic():
        audit_record_many(_records(2))

    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2]
    assert audit_verify().ok


def test_audit_record_many_refuses_to_run_outside_a_transaction():
    assert not connection.in_atomic_block

    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record_many(_records(1))


@pytest.mark.django_db
def test_a_tampered_event_inside_a_batch_is_found():
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE servicedesk_auditevent DISABLE TRIGGER USER")
    with transaction.atomic():
        audit_record_many(_records(4))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE servicedesk_auditevent SET action = 'forged' WHERE seq = 3")

    report = audit_verify()

    assert (report.ok, report.broken_at, report.checked) == (False, 3, 2)


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_a_batch_carries_the_database_time_and_times_never_run_backwards():
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    from tickets.clock import db_now

    _append(1)
    wrong = timezone.now() - timedelta(hours=3)
    with mock.patch("servicedesk.audit.timezone.now", return_value=wrong), transaction.atomic():
        audit_record_many(_records(3))
    _append(1)
    database_time = db_now()

    events = list(AuditEvent.objects.order_by("seq"))
    assert all(abs((database_time - event.created_at).total_seconds()) < 60 for event in events)
    times = [event.created_at for event in events]
    assert times == sorted(times)
    assert audit_verify().ok


# PostgreSQL stores no NUL character in text or jsonb (the API refuses them first).
_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@pytest.mark.django_db
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    appends=st.lists(
        st.lists(st.dictionaries(_text, _json_values, max_size=3), min_size=1, max_size=5),
        min_size=1,
        max_size=6,
    ),
    single=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_property_any_mix_of_single_and_batch_appends_is_one_chain_that_verifies(appends, single):
    """Whatever the data and however the events are grouped, the chain is contiguous,
    each event links to the one before, and verification passes and counts them all."""
    with transaction.atomic():
        before = AuditEvent.objects.count()
        written = []
        for group, one_by_one in zip(appends, single, strict=False):
            if one_by_one:
                written += [audit_record(action="test.single", data=data) for data in group]
            else:
                written += audit_record_many(
                    [{"action": "test.batch", "data": data} for data in group]
                )
        events = list(AuditEvent.objects.order_by("seq")[before:])
        assert [event.seq for event in events] == list(range(before + 1, before + len(written) + 1))
        assert [event.data for event in events] == [event.data for event in written]
        assert _linked(events)
        report = audit_verify()
        assert report.ok and report.checked == before + len(written)
        transaction.set_rollback(True)
