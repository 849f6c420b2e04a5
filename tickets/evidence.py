"""The evidence bundle of one ticket: everything an examiner asks for, in one document.

The customer's posts, every version of every draft with its screening and the policy
version that screened it, each legal decision with who made it and when, the proof that
what went out is exactly what was approved (its SHA-256 equals the approved hash, or it
is an approved template version filled with its recorded values), the full timeline,
the response cycles with their stages, and the ticket's audit events with each event's
hash recomputed. Personal data in posts and drafts is masked, as in every export.

The bundle carries the SHA-256 of its own canonical JSON, so a printed copy can be
matched with the file.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from django.db.models import Prefetch

from approvals.models import LegalReview
from approvals.pii import mask_text
from servicedesk.audit import event_hash, event_payload
from servicedesk.errors import ApplicationError, NotFound
from servicedesk.models import AuditChainHead, AuditEvent
from tickets.clock import db_now
from tickets.cycles import STAGE_NAMES
from tickets.enums import ReplyState
from tickets.models import Escalation, Mention, Reply, ReplyRevision, ResponseCycle, Ticket
from tickets.reports.common import iso, require_evidence_reader

FORMAT = "servicedesk-evidence/1"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _pii(screening: dict | None) -> list[dict]:
    return list((screening or {}).get("pii") or [])


def _screening_summary(screening: dict | None) -> dict[str, Any]:
    screening = screening or {}
    return {
        "policy_version": screening.get("policy_version", ""),
        "regulated": bool(screening.get("regulated")),
        "categories": screening.get("categories") or [],
        "reasons": [
            {key: reason.get(key) for key in ("rule", "category", "match") if key in reason}
            for reason in screening.get("reasons") or []
        ],
        "personal_data": sorted({str(item.get("kind", "")) for item in _pii(screening)}),
        "blocked": bool(screening.get("blocked")),
    }


def _edits(mention: Mention) -> list[dict[str, Any]]:
    """Earlier texts of an edited post, personal data masked (screened again here)."""
    from approvals.screening import screen

    out = []
    for edit in mention.edit_history or []:
        text = str(edit.get("text", ""))
        out.append(
            {
                "replaced_at": edit.get("replaced_at"),
                "text": mask_text(text, screen(text).pii) if text else "",
            }
        )
    return out


def _post(mention: Mention) -> dict[str, Any]:
    return {
        "id": mention.pk,
        "external_id": mention.external_id,
        "url": mention.url,
        "author": mention.customer.handle or mention.customer.external_id,
        "posted_at": iso(mention.posted_at),
        "received_at": iso(mention.received_at),
        "in_reply_to": mention.in_reply_to_external_id,
        "text": mask_text(mention.text, _pii(mention.screening)),
        "screening": _screening_summary(mention.screening),
        "deleted_at": iso(mention.deleted_at),
        "edits": _edits(mention) if mention.edit_history else [],
    }


def _template(reply: Reply) -> dict[str, Any] | None:
    version = reply.template_version
    if version is None:
        return None
    return {
        "version_id": version.pk,
        "template": version.template.name,
        "number": version.number,
        "body": version.body,
        "body_sha256": version.body_sha256,
        "approved_by": version.approved_by.get_username() if version.approved_by_id else None,
        "approved_at": iso(version.approved_at),
        "expires_at": iso(version.expires_at),
        "retired_at": iso(version.retired_at),
        "slots": reply.template_slots,
    }


def _reply(reply: Reply) -> dict[str, Any]:
    return {
        "id": reply.pk,
        "kind": reply.kind,
        "state": reply.state,
        "author": reply.author.get_username(),
        "created_at": iso(reply.created_at),
        "sent_at": iso(reply.sent_at),
        "external_id": reply.external_id,
        "external_url": reply.external_url,
        "body_sha256": reply.body_sha256,
        "template": _template(reply),
        "revisions": [
            {
                "number": revision.number,
                "editor": revision.editor.get_username(),
                "created_at": iso(revision.created_at),
                "text": mask_text(revision.body, _pii(revision.screening)),
                "text_masked": bool(_pii(revision.screening)),
                "body_sha256": revision.body_sha256,
                "hash_matches_text": _sha256(revision.body) == revision.body_sha256,
                "screening": _screening_summary(revision.screening),
            }
            for revision in reply.revisions.all()
        ],
        "reviews": [
            {
                "id": review.pk,
                "reviewer": review.reviewer.get_username(),
                "decision": review.decision,
                "comment": review.comment,
                "revision": review.revision,
                "body_sha256": review.body_sha256,
                "submitted_at": iso(review.submitted_at),
                "decided_at": iso(review.created_at),
            }
            for review in reply.reviews.all()
        ],
    }


def _template_proof(reply: Reply, sent_at: datetime | None) -> dict[str, Any]:
    """Was the sent text an approved template version, filled with its recorded values,
    usable when it was sent?"""
    from approvals.slots import fill

    version = reply.template_version
    at = sent_at or reply.sent_at
    approved_then = (
        version.approved_at is not None
        and (at is None or version.approved_at <= at)
        and (version.expires_at is None or at is None or version.expires_at > at)
        and (version.retired_at is None or at is None or version.retired_at > at)
    )
    try:
        filled, _ = fill(version.body, reply.template_slots or {})
        same_text = filled == reply.body
        note = ""
    except ApplicationError as exc:
        same_text = False
        note = f"the recorded slot values are not valid today: {exc.message}"
    return {
        "template_version_id": version.pk,
        "template_body_sha256": version.body_sha256,
        "approved_by": version.approved_by.get_username() if version.approved_by_id else None,
        "approved_at": iso(version.approved_at),
        "approved_when_sent": approved_then,
        "sent_text_is_the_filled_template": same_text,
        "note": note,
    }


def _proofs(ticket: Ticket, replies: list[Reply], events: list[AuditEvent]) -> list[dict]:
    """For every reply that went out: the hash of the text stored as sent, the hash the
    audit trail recorded when it was published, and what allowed it to go out."""
    published = {
        event.object_id: event
        for event in events
        if event.action in ("reply.published", "reply.holding_published")
    }
    out = []
    for reply in replies:
        if reply.state != ReplyState.SENT:
            continue
        event = published.get(reply.pk)
        data = (event.data or {}) if event is not None else {}
        sent_hash = _sha256(reply.body)
        proof: dict[str, Any] = {
            "reply": reply.pk,
            "kind": reply.kind,
            "sent_text": reply.body,
            "sent_text_sha256": sent_hash,
            "stored_sha256": reply.body_sha256,
            "published_event_seq": event.seq if event is not None else None,
            "published_sha256": data.get("body_sha256"),
            "regulated_when_sent": bool(data.get("regulated", ticket.regulated)),
            "approval": None,
            "template": None,
        }
        # The text stored as sent, its stored hash and the hash the audit trail recorded
        # when the platform took it must all be the same.
        hashes_agree = event is not None and sent_hash == reply.body_sha256 == data.get(
            "body_sha256"
        )
        approval_id = data.get("approval_id")
        approval = next(
            (review for review in reply.reviews.all() if review.pk == approval_id), None
        )
        editors = {revision.editor_id for revision in reply.revisions.all()} | {reply.author_id}
        if approval is not None:
            proof["basis"] = "legal_approval"
            proof["approval"] = {
                "review": approval.pk,
                "reviewer": approval.reviewer.get_username(),
                "decided_at": iso(approval.created_at),
                "approved_sha256": approval.body_sha256,
                "reviewer_wrote_none_of_it": approval.reviewer_id not in editors,
            }
            ok = (
                hashes_agree
                and approval.body_sha256 == sent_hash
                and approval.reviewer_id not in editors
            )
        elif reply.template_version_id is not None and (
            data.get("template_unmodified") or reply.kind == "holding"
        ):
            proof["basis"] = "approved_template"
            proof["template"] = _template_proof(reply, event.created_at if event else None)
            ok = (
                hashes_agree
                and proof["template"]["approved_when_sent"]
                and proof["template"]["sent_text_is_the_filled_template"]
            )
        elif not proof["regulated_when_sent"]:
            proof["basis"] = "not_regulated"
            ok = hashes_agree
        else:
            proof["basis"] = "none"
            ok = False
        proof["verdict"] = "verified" if ok else "failed"
        out.append(proof)
    return out


def _audit(events: list[AuditEvent]) -> list[dict[str, Any]]:
    return [
        {
            "seq": event.seq,
            "created_at": iso(event.created_at),
            "actor": event.actor_name,
            "action": event.action,
            "object": f"{event.object_type}#{event.object_id}" if event.object_type else "",
            "from_state": event.from_state,
            "to_state": event.to_state,
            "data": event.data,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
            "hash_verified": event_hash(event.prev_hash, event_payload(event)) == event.hash,
        }
        for event in events
    ]


def _timeline(ticket: Ticket, mentions: list[Mention], events: list[AuditEvent]):
    entries = []
    for mention in mentions:
        author = mention.customer.handle or mention.customer.external_id
        entries.append((mention.posted_at, 0, "customer", f"{author} posted (post #{mention.pk})"))
        entries.append((mention.received_at, 0, "connector", f"post #{mention.pk} received"))
    for event in events:
        change = f" {event.from_state} → {event.to_state}" if event.to_state else ""
        entries.append(
            (event.created_at, event.seq, event.actor_name or "system", event.action + change)
        )
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return [{"at": iso(at), "who": who, "what": what} for at, _, who, what in entries]


def _cycles(cycles: list[ResponseCycle]) -> list[dict[str, Any]]:
    return [
        {
            "number": cycle.number,
            "outcome": cycle.outcome,
            "posted_at": iso(cycle.posted_at),
            "deadline": iso(cycle.deadline),
            "replied_at": iso(cycle.replied_at),
            "acknowledged_at": iso(cycle.acknowledged_at),
            "response_seconds": cycle.response_seconds,
            "within_window": cycle.within_window,
            "stages": {name: getattr(cycle, f"{name}_seconds") for name in STAGE_NAMES},
        }
        for cycle in cycles
    ]


def canonical_sha256(bundle: dict[str, Any]) -> str:
    """The SHA-256 of the bundle's canonical JSON, its own `sha256` field left out."""
    body = {key: value for key, value in bundle.items() if key != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def evidence_bundle(*, user, ticket_id: int) -> dict[str, Any]:
    """The ticket's evidence bundle (supervisors and legal), in a fixed number of queries."""
    require_evidence_reader(user)
    try:
        ticket = (
            Ticket.objects.select_related("channel", "customer", "assignee", "regulated_by")
            .prefetch_related(
                Prefetch("mentions", queryset=Mention.objects.select_related("customer")),
                Prefetch(
                    "replies",
                    queryset=Reply.objects.select_related(
                        "author",
                        "template_version",
                        "template_version__template",
                        "template_version__approved_by",
                    ).prefetch_related(
                        Prefetch(
                            "revisions", queryset=ReplyRevision.objects.select_related("editor")
                        ),
                        Prefetch(
                            "reviews", queryset=LegalReview.objects.select_related("reviewer")
                        ),
                    ),
                ),
            )
            .get(pk=ticket_id)
        )
    except (Ticket.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such ticket.", code="ticket_not_found") from None
    events = list(AuditEvent.objects.filter(ticket_id=ticket.pk).order_by("seq"))
    mentions = list(ticket.mentions.all())
    replies = list(ticket.replies.all())
    cycles = list(ResponseCycle.objects.filter(ticket=ticket).order_by("number"))
    escalations = list(
        Escalation.objects.filter(ticket=ticket).select_related("backup").order_by("created_at")
    )
    head = AuditChainHead.objects.filter(id=1).first()
    audit = _audit(events)
    bundle: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": iso(db_now()),
        "generated_by": user.get_username(),
        "ticket": {
            "id": ticket.pk,
            "channel": ticket.channel.name,
            "platform": ticket.channel.platform,
            "customer": ticket.customer.handle or ticket.customer.external_id,
            "state": ticket.state,
            "priority": ticket.priority,
            "sentiment": ticket.sentiment,
            "regulated": ticket.regulated,
            "regulated_reasons": ticket.regulated_reasons,
            "assignee": ticket.assignee.get_username() if ticket.assignee_id else None,
            "posted_at": iso(ticket.posted_at),
            "deadline": iso(ticket.deadline),
            "window_seconds": (ticket.deadline - ticket.posted_at).total_seconds(),
            "received_at": iso(ticket.received_at),
            "claimed_at": iso(ticket.claimed_at),
            "submitted_at": iso(ticket.submitted_at),
            "approved_at": iso(ticket.approved_at),
            "acknowledged_at": iso(ticket.acknowledged_at),
            "sent_at": iso(ticket.sent_at),
            "replied_at": iso(ticket.replied_at),
            "closed_at": iso(ticket.closed_at),
        },
        "posts": [_post(mention) for mention in mentions],
        "replies": [_reply(reply) for reply in replies],
        "proof": _proofs(ticket, replies, events),
        "cycles": _cycles(cycles),
        "escalations": [
            {
                "kind": escalation.kind,
                "raised_at": iso(escalation.created_at),
                "due_at": iso(escalation.due_at),
                "message": escalation.message,
                "backup": escalation.backup.get_username() if escalation.backup_id else None,
            }
            for escalation in escalations
        ],
        "timeline": _timeline(ticket, mentions, events),
        "audit": {
            "events": audit,
            "all_hashes_verified": all(item["hash_verified"] for item in audit),
            "chain_head": {"seq": head.seq, "hash": head.hash} if head else None,
            "note": (
                "Each event's hash is SHA-256 over the previous event's hash and the event's "
                "canonical content; `manage.py verify_audit` walks the whole chain."
            ),
        },
    }
    bundle["sha256"] = canonical_sha256(bundle)
    return bundle
