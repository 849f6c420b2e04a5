"""The audit log exported as JSON lines for a period, checked on its own by
`verify_audit --file`, and archived (never deleted) past the retention period."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from servicedesk import audit
from servicedesk.audit import audit_record
from servicedesk.audit_export import archive_due, export_events, verify_file
from servicedesk.models import AuditArchive, AuditEvent


def _events(count: int, *, days_ago: int = 0, **data) -> None:
    """Append events; `days_ago` backdates them (the log itself can never be edited).

    PostgreSQL's append stamps the database's time, which no test can move: backdated
    events go through the portable append (SQLite's), which hashes the time it is given."""
    at = timezone.now() - timedelta(days=days_ago)
    with (
        mock.patch("servicedesk.audit.timezone.now", return_value=at),
        mock.patch("servicedesk.audit._append_postgresql", audit._append_portable),
    ):
        for number in range(count):
            with transaction.atomic():
                audit_record(action="test.event", data={"n": number, **data})


@pytest.fixture
def exported(db, tmp_path):
    _events(5, note="héllo ✓")
    path = tmp_path / "audit.jsonl"
    call_command("export_audit", "--out", str(path), stderr=io.StringIO())
    return path


def test_an_export_verifies_and_names_its_checkpoint(exported):
    out = io.StringIO()

    call_command("verify_audit", "--file", str(exported), "--against-db", stdout=out)

    last = AuditEvent.objects.order_by("-seq").first()
    assert "audit export OK: 5 events verified" in out.getvalue()
    assert last.hash in out.getvalue()
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["type"] == "header"
    assert json.loads(lines[-1]) | {"lines_sha256": "-"} == {
        "type": "checkpoint",
        "count": 5,
        "first_seq": 1,
        "last_seq": 5,
        "last_hash": last.hash,
        "lines_sha256": "-",
    }


def _rewrite(path, change) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    change(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda ls: ls.__setitem__(2, ls[2].replace('"n": 1', '"n": 7')), "content does not match"),
        (lambda ls: ls.pop(3), "is missing"),
        (lambda ls: ls.insert(2, ls.pop(3)), "is missing"),
        (lambda ls: ls.pop(), "no checkpoint"),
        (lambda ls: ls.__setitem__(0, ls[0].replace("servicedesk-audit/1", "x")), "not a"),
    ],
)
def test_any_change_to_the_file_is_caught_with_its_line(exported, tamper, reason):
    _rewrite(exported, tamper)

    with pytest.raises(CommandError, match=reason):
        call_command("verify_audit", "--file", str(exported))


def test_a_period_export_is_a_segment_anchored_on_the_event_before(db, tmp_path):
    _events(3, days_ago=2)
    _events(2)
    path = tmp_path / "today.jsonl"
    with open(path, "wb") as out:
        result = export_events(out, since=timezone.now() - timedelta(days=1))

    report = verify_file(path)

    assert (result.count, result.first_seq) == (2, 4)
    assert report.ok and report.anchor_hash == AuditEvent.objects.get(seq=3).hash
    call_command("verify_audit", "--file", str(path), "--against-db", stdout=io.StringIO())


def test_export_refuses_a_bad_period(db):
    with pytest.raises(CommandError, match="--since must be an ISO date"):
        call_command("export_audit", "--since", "yesterday")


@override_settings(AUDIT_RETENTION_DAYS=30)
def test_retention_archives_old_events_once_and_keeps_the_rows(db, tmp_path, settings):
    settings.AUDIT_ARCHIVE_DIR = str(tmp_path / "archive")
    _events(3, days_ago=40)
    _events(1)

    archive = archive_due()

    assert (archive.from_seq, archive.to_seq, archive.count) == (1, 3, 3)
    assert verify_file(archive.path).ok
    assert AuditEvent.objects.count() == 4  # archived, not deleted
    assert archive_due() is None  # nothing new to archive
    assert AuditArchive.objects.count() == 1
