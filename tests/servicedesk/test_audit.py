"""The audit log: append-only, hash-chained, verifiable, and written with every change."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from servicedesk.audit import audit_record, audit_verify
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
