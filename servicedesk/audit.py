"""Writing and verifying the audit chain. Called by services inside their transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from servicedesk.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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


def audit_record(
    *,
    action: str,
    actor=None,
    ticket_id: int | None = None,
    obj=None,
    from_state: str = "",
    to_state: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside the caller's transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        id=1, defaults={"seq": 0, "hash": GENESIS_HASH}
    )
    # JSON round trip now, so the hashed payload equals what the database gives back.
    clean_data = json.loads(json.dumps(data or {}, default=str))
    event = AuditEvent(
        seq=head.seq + 1,
        created_at=timezone.now(),
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_name=actor.get_username() if actor is not None and actor.is_authenticated else "",
        action=action,
        ticket_id=ticket_id,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=obj.pk if obj is not None else None,
        from_state=from_state,
        to_state=to_state,
        data=clean_data,
        prev_hash=head.hash,
    )
    event.hash = event_hash(head.hash, event_payload(event))
    event.save()
    head.seq = event.seq
    head.hash = event.hash
    head.save(update_fields=["seq", "hash"])
    return event


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
