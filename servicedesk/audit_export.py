"""The audit chain as JSON lines, and the check of such a file on its own.

An export holds one header line, one line per event (the hashed payload plus `prev_hash`
and `hash`) in chain order, and a checkpoint line: the last event's seq and hash, the
count, and the SHA-256 of every line before it. `verify_file` recomputes each event's
hash from its payload and the hash before it, so a file edited anywhere — an event
changed, removed, reordered or added — fails, with the line that broke. A file that
starts mid-chain is anchored on its first `prev_hash`: compare that with the previous
export's checkpoint (or with the database) to join the segments.

Retention archives, never deletes: events older than `AUDIT_RETENTION_DAYS` are written
to `AUDIT_ARCHIVE_DIR` once, recorded in `AuditArchive`; the rows stay (the table is
append-only).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from servicedesk.audit import GENESIS_HASH, event_hash, event_payload
from servicedesk.models import AuditArchive, AuditEvent

FORMAT = "servicedesk-audit/1"


@dataclass(frozen=True)
class ExportResult:
    count: int
    first_seq: int | None
    last_seq: int | None
    last_hash: str


def _line(value: dict) -> bytes:
    return (json.dumps(value, sort_keys=True, ensure_ascii=False) + "\n").encode()


def export_events(
    out: IO[bytes],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    from_seq: int | None = None,
    to_seq: int | None = None,
) -> ExportResult:
    """Write the events in the period (and/or seq range) to `out`, in chain order."""
    events = AuditEvent.objects.order_by("seq")
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    if from_seq is not None:
        events = events.filter(seq__gte=from_seq)
    if to_seq is not None:
        events = events.filter(seq__lte=to_seq)
    digest = hashlib.sha256()

    def write(value: dict) -> None:
        data = _line(value)
        digest.update(data)
        out.write(data)

    write(
        {
            "type": "header",
            "format": FORMAT,
            "exported_at": timezone.now().isoformat(),
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        }
    )
    count, first_seq, last_seq, last_hash = 0, None, None, ""
    with transaction.atomic():  # one consistent snapshot on PostgreSQL
        for event in events.iterator(chunk_size=2000):
            write(
                {
                    "type": "event",
                    **event_payload(event),
                    "prev_hash": event.prev_hash,
                    "hash": event.hash,
                }
            )
            count += 1
            first_seq = event.seq if first_seq is None else first_seq
            last_seq, last_hash = event.seq, event.hash
    checkpoint = {
        "type": "checkpoint",
        "count": count,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "last_hash": last_hash,
        "lines_sha256": digest.hexdigest(),
    }
    out.write(_line(checkpoint))
    return ExportResult(count, first_seq, last_seq, last_hash)


@dataclass(frozen=True)
class FileReport:
    ok: bool
    count: int
    anchor_hash: str = ""
    last_hash: str = ""
    line: int | None = None
    reason: str = ""


def verify_file(path: str | os.PathLike) -> FileReport:
    digest = hashlib.sha256()
    count, prev_hash, anchor, expected_seq = 0, None, "", None
    checkpoint = None
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if checkpoint is not None:
                return FileReport(
                    False, count, anchor, prev_hash or "", number, "lines after the checkpoint"
                )
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                return FileReport(False, count, anchor, prev_hash or "", number, "not JSON")
            kind = value.get("type") if isinstance(value, dict) else None
            if number == 1:
                if kind != "header" or value.get("format") != FORMAT:
                    return FileReport(False, 0, line=1, reason=f"not a {FORMAT} export")
                digest.update(raw)
                continue
            if kind == "checkpoint":
                checkpoint = (number, value)
                continue
            if kind != "event":
                return FileReport(False, count, anchor, prev_hash or "", number, "unknown line")
            digest.update(raw)
            payload = {key: value.get(key) for key in _PAYLOAD_KEYS}
            if prev_hash is None:
                anchor = prev_hash = value.get("prev_hash", "")
                expected_seq = value.get("seq")
            if value.get("seq") != expected_seq:
                return FileReport(
                    False, count, anchor, prev_hash, number, f"event #{expected_seq} is missing"
                )
            if value.get("prev_hash") != prev_hash:
                return FileReport(
                    False,
                    count,
                    anchor,
                    prev_hash,
                    number,
                    "prev_hash does not match the event before",
                )
            if event_hash(prev_hash, payload) != value.get("hash"):
                return FileReport(
                    False, count, anchor, prev_hash, number, "content does not match its hash"
                )
            prev_hash = value["hash"]
            expected_seq += 1
            count += 1
    if checkpoint is None:
        return FileReport(
            False, count, anchor, prev_hash or "", None, "no checkpoint line (cut short?)"
        )
    number, value = checkpoint
    if value.get("count") != count or (count and value.get("last_hash") != prev_hash):
        return FileReport(
            False, count, anchor, prev_hash or "", number, "checkpoint does not match the events"
        )
    if value.get("lines_sha256") != digest.hexdigest():
        return FileReport(
            False, count, anchor, prev_hash or "", number, "checkpoint digest does not match"
        )
    return FileReport(True, count, anchor, prev_hash or "")


_PAYLOAD_KEYS = (
    "seq",
    "created_at",
    "actor_id",
    "actor_name",
    "action",
    "ticket_id",
    "object_type",
    "object_id",
    "from_state",
    "to_state",
    "data",
)


def anchor_known(anchor_hash: str, first_seq: int | None) -> bool:
    """Whether a segment's anchor is the genesis or the hash of the event before it here."""
    if not anchor_hash or anchor_hash == GENESIS_HASH:
        return first_seq in (None, 1)
    return AuditEvent.objects.filter(seq=(first_seq or 1) - 1, hash=anchor_hash).exists()


def archive_due(now: datetime | None = None) -> AuditArchive | None:
    """Write the events older than the retention period that no archive holds yet."""
    days = settings.AUDIT_RETENTION_DAYS
    if not days:
        return None
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    last = AuditArchive.objects.order_by("-to_seq").first()
    from_seq = (last.to_seq + 1) if last else 1
    to_seq = (
        AuditEvent.objects.filter(seq__gte=from_seq, created_at__lt=cutoff)
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    if to_seq is None:
        return None
    directory = Path(settings.AUDIT_ARCHIVE_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"audit-{from_seq:012d}-{to_seq:012d}.jsonl"
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as out:
        result = export_events(out, from_seq=from_seq, to_seq=to_seq)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return AuditArchive.objects.create(
        from_seq=from_seq,
        to_seq=to_seq,
        count=result.count,
        last_hash=result.last_hash,
        path=str(path),
    )
