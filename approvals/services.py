"""Legal decisions on replies. Each service does the whole job in one transaction."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from approvals.models import Decision, LegalReview
from servicedesk.audit import audit_record
from servicedesk.errors import InvalidInput, RoleRequired, TransitionRefused
from servicedesk.roles import LEGAL, has_role
from tickets.clock import stamp_now
from tickets.enums import ReplyState, TicketState
from tickets.services.common import apply_transition, lock_reply, reply_editor_ids, sha256_text


def _review(*, reply_id: int, actor, decision: str, comment: str) -> LegalReview:
    """The steps both decisions share.

    1. legal only (403); 2. lock the ticket, then the reply; 3. the reply must be the
    one in review (the second of two lawyers deciding at once lands here: 409);
    4. no lawyer decides on a text they wrote (403); 5. record the decision on the
    hash of the exact text; 6. transition; 7. audit.
    """
    if not has_role(actor, LEGAL):
        raise RoleRequired("Only legal can review replies.")
    with transaction.atomic():
        ticket, reply = lock_reply(reply_id)
        if reply.state != ReplyState.IN_REVIEW or ticket.state != TicketState.IN_LEGAL_REVIEW:
            raise TransitionRefused(
                "This reply is not waiting for a legal decision (already decided or withdrawn).",
                code="review_not_pending",
                state=reply.state,
            )
        if actor.pk in reply_editor_ids(reply):
            raise RoleRequired(
                "You wrote part of this reply; another lawyer must review it.",
                code="self_approval",
            )
        body_hash = sha256_text(reply.body)
        if body_hash != reply.body_sha256:
            # Defence in depth: the stored hash must describe the stored text.
            raise TransitionRefused(
                "The reply's hash does not match its text.", code="hash_mismatch"
            )
        transition_name = "approve" if decision == Decision.APPROVED else "request_changes"
        from_state = apply_transition(ticket, transition_name, actor)
        try:
            with transaction.atomic():
                review = LegalReview.objects.create(
                    reply=reply,
                    reviewer=actor,
                    decision=decision,
                    comment=comment,
                    body_sha256=body_hash,
                    revision=reply.revision,
                    submitted_at=ticket.submitted_at or stamp_now(),
                )
        except IntegrityError:
            raise TransitionRefused(
                "Another lawyer decided on this text first.", code="review_not_pending"
            ) from None
        if decision == Decision.APPROVED:
            ticket.approved_at = review.created_at
            reply.state = ReplyState.APPROVED
        else:
            reply.state = ReplyState.DRAFT
        ticket.save(update_fields=["state", "approved_at", "updated_at"])
        reply.save(update_fields=["state", "updated_at"])
        audit_record(
            action=f"review.{decision}",
            actor=actor,
            ticket_id=ticket.pk,
            obj=review,
            from_state=from_state,
            to_state=ticket.state,
            data={
                "reply_id": reply.pk,
                "revision": reply.revision,
                "body_sha256": body_hash,
                "comment": comment,
            },
        )
    return review


def review_approve(*, reply_id: int, actor, comment: str = "") -> LegalReview:
    return _review(reply_id=reply_id, actor=actor, decision=Decision.APPROVED, comment=comment)


def review_request_changes(*, reply_id: int, actor, comment: str) -> LegalReview:
    if not comment.strip():
        raise InvalidInput("Say what must change: a comment is required.", code="comment_required")
    return _review(
        reply_id=reply_id, actor=actor, decision=Decision.CHANGES_REQUESTED, comment=comment
    )


__all__ = ["review_approve", "review_request_changes"]
