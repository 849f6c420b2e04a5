"""Writing and verifying the audit chain. Called by services inside their transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from servicedesk.bulk import bulk_insert
from servicedesk.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(payload: dict[str, Any]) -> bytes:
    return _dumps(payload).encode()


def _canonical_around(payload: dict[str, Any], *holes: str) -> list[str]:
    """The canonical text split where the values of `holes` go: len(holes) + 1 parts.

    Joining the parts with each hole's canonical value in between gives exactly
    _dumps(payload with those values), because the canonical form is the keys in sorted
    order, each `"key":value`, joined by commas. The holes must be in sorted order.
    """
    if list(holes) != sorted(holes):
        raise ValueError("the holes must be given in sorted order")
    parts = {key: f"{_dumps(key)}:{_dumps(value)}" for key, value in payload.items()}
    pieces, current = [], "{"
    for index, key in enumerate(sorted(parts)):
        separator = "," if index else ""
        if key in holes:
            pieces.append(current + separator + _dumps(key) + ":")
            current = ""
        else:
            current += separator + parts[key]
    pieces.append(current + "}")
    return pieces


# On PostgreSQL one statement locks the chain head, reads the database's clock, computes
# the new hash from the previous one (sha256 over the previous hash and the canonical
# payload, exactly as `event_hash` does), moves the head and inserts the event: one round
# trip instead of three, with the head's row lock held to the end of the transaction as
# before. The time is the database's, written as `datetime.isoformat` writes it, so every
# web process and worker stamps events with one clock whatever their own clocks say.
_PG_APPEND = """
WITH old AS (
    SELECT seq, hash,
           to_char(date_trunc('microseconds', clock_timestamp()) AT TIME ZONE 'UTC',
                   'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00' AS at
    FROM servicedesk_auditchainhead WHERE id = 1 FOR UPDATE
), head AS (
    UPDATE servicedesk_auditchainhead AS h
    SET seq = old.seq + 1,
        hash = encode(sha256(convert_to(
            old.hash || %(part0)s || '"' || old.at || '"' || %(part1)s
            || (old.seq + 1)::text || %(part2)s, 'UTF8')), 'hex')
    FROM old
    WHERE h.id = 1
    RETURNING h.seq, h.hash, old.hash AS prev_hash, old.at::timestamptz AS created_at
)
INSERT INTO servicedesk_auditevent (
    seq, created_at, actor_id, actor_name, action, ticket_id, object_type, object_id,
    from_state, to_state, data, prev_hash, hash
)
SELECT head.seq, head.created_at, %(actor_id)s, %(actor_name)s, %(action)s, %(ticket_id)s,
       %(object_type)s, %(object_id)s, %(from_state)s, %(to_state)s, %(data)s::jsonb,
       head.prev_hash, head.hash
FROM head
RETURNING id, seq, prev_hash, hash, created_at
"""

# A batch's first step: the head moved by the batch's size, locked to the end of the
# transaction. RETURNING is evaluated once the row lock is held, so the clock is read
# after any wait for another append, and times never run backwards along the chain.
_PG_RESERVE = """
UPDATE servicedesk_auditchainhead SET seq = seq + %s WHERE id = 1
RETURNING seq, hash,
          date_trunc('microseconds', clock_timestamp()) AS created_at
"""


def event_payload(event: AuditEvent) -> dict[str, Any]:
    """The fields the hash covers, in a form that survives a database round trip."""
    return {
        "seq": event.seq,
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "ticket_id": event.ticket_id,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "data": event.data,
    }


def event_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(payload)).hexdigest()


def _event(
    *,
    action: str,
    actor=None,
    ticket_id: int | None = None,
    obj=None,
    from_state: str = "",
    to_state: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    # JSON round trip now, so the hashed payload equals what the database gives back.
    clean_data = json.loads(json.dumps(data or {}, default=str))
    authenticated = actor is not None and actor.is_authenticated
    return AuditEvent(
        # On PostgreSQL the append replaces this with the database's time (one clock for
        # every process); the embedded SQLite database runs in this process, on its clock.
        created_at=timezone.now(),
        actor=actor if authenticated else None,
        actor_name=actor.get_username() if authenticated else "",
        action=action,
        ticket_id=ticket_id,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=obj.pk if obj is not None else None,
        from_state=from_state,
        to_state=to_state,
        data=clean_data,
    )


def _require_transaction(name: str) -> None:
    if not connection.in_atomic_block:
        raise RuntimeError(f"{name} must run inside the transaction of the change it records")


def audit_record(**record: Any) -> AuditEvent:
    """Append one event to the chain. Must run inside the caller's transaction.

    The record, by keyword: `action` (required), `actor` (a user, or None for the
    system), `ticket_id`, `obj` (the object changed), `from_state`, `to_state` and `data`
    (JSON-able); an unknown keyword is a TypeError."""
    _require_transaction("audit_record")
    event = _event(**record)
    if connection.vendor == "postgresql":
        _append_postgresql(event)
    else:
        _append_portable(event)
    return event


def audit_record_many(records: list[dict[str, Any]]) -> list[AuditEvent]:
    """Append several events, in the order given, each with `audit_record`'s arguments.
    Must run inside the caller's transaction.

    The chain is the same as one `audit_record` call per event would make, but it costs
    three statements whatever the number of events: move the head by that number (which
    locks it, as every append does, and reads the database's clock once the lock is
    held), insert the events with their hashes computed here, set the head's hash. The
    events share one timestamp, that of the moment the batch took the chain."""
    _require_transaction("audit_record_many")
    events = [_event(**record) for record in records]
    if not events:
        return events
    count = len(events)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for _ in range(2):  # a new database has no head row yet: create it, try again
                cursor.execute(_PG_RESERVE, [count])
                row = cursor.fetchone()
                if row is not None:
                    break
                AuditChainHead.objects.get_or_create(
                    id=1, defaults={"seq": 0, "hash": GENESIS_HASH}
                )
        last_seq, prev_hash, created_at = row
        first_seq = last_seq - count + 1
    else:
        head = _head_locked()
        first_seq, prev_hash, created_at = head.seq + 1, head.hash, timezone.now()
    for offset, event in enumerate(events):
        event.seq = first_seq + offset
        event.created_at = created_at
        event.prev_hash = prev_hash
        event.hash = prev_hash = event_hash(prev_hash, event_payload(event))
    bulk_insert(events)
    AuditChainHead.objects.filter(id=1).update(seq=events[-1].seq, hash=events[-1].hash)
    return events


def _head_locked() -> AuditChainHead:
    """The chain's head, created on a new database, locked to the end of the transaction."""
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        id=1, defaults={"seq": 0, "hash": GENESIS_HASH}
    )
    return head


def _append_portable(event: AuditEvent) -> None:
    head = _head_locked()
    event.seq = head.seq + 1
    event.prev_hash = head.hash
    event.hash = event_hash(head.hash, event_payload(event))
    event.save()
    head.seq = event.seq
    head.hash = event.hash
    head.save(update_fields=["seq", "hash"])


def _append_postgresql(event: AuditEvent) -> None:
    # The statement puts the real seq and the database's time into the hashed text.
    event.seq = 0
    part0, part1, part2 = _canonical_around(event_payload(event), "created_at", "seq")
    params = {
        "part0": part0,
        "part1": part1,
        "part2": part2,
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "ticket_id": event.ticket_id,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "data": _dumps(event.data),
    }
    with connection.cursor() as cursor:
        cursor.execute(_PG_APPEND, params)
        row = cursor.fetchone()
        if row is None:
            # No head row yet (a new database): create it, then append.
            AuditChainHead.objects.get_or_create(id=1, defaults={"seq": 0, "hash": GENESIS_HASH})
            cursor.execute(_PG_APPEND, params)
            row = cursor.fetchone()
    event.pk, event.seq, event.prev_hash, event.hash, event.created_at = row
    event._state.adding = False
    event._state.db = connection.alias


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken_at: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def audit_verify(batch_size: int = 2000) -> ChainReport:
    """Walk the chain in order; report the first event whose link or hash is wrong."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    with transaction.atomic():
        for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=batch_size):
            if event.seq != expected_seq:
                return ChainReport(checked, event.seq, f"event #{expected_seq} is missing")
            if event.prev_hash != prev_hash:
                return ChainReport(checked, event.seq, "prev_hash does not match the event before")
            if event_hash(prev_hash, event_payload(event)) != event.hash:
                return ChainReport(checked, event.seq, "content does not match its hash")
            prev_hash = event.hash
            expected_seq += 1
            checked += 1
        head = AuditChainHead.objects.filter(id=1).first()
        if head is not None and (head.seq != checked or head.hash != prev_hash):
            return ChainReport(
                checked, checked + 1, "events after the last one present are missing"
            )
    return ChainReport(checked)
