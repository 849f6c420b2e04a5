"""Every state change and business rule on mentions, tickets and replies."""

from tickets.services.mentions import IngestResult, mention_delete, mention_edit, mention_ingest
from tickets.services.replies import (
    reply_create,
    reply_mark_failed,
    reply_mark_published,
    reply_publish_check,
    reply_send,
    reply_send_holding,
    reply_submit,
    reply_update,
)
from tickets.services.tickets import (
    ticket_claim,
    ticket_clear_regulated,
    ticket_close,
    ticket_flag_regulated,
    ticket_ignore,
)

__all__ = [
    "IngestResult",
    "mention_delete",
    "mention_edit",
    "mention_ingest",
    "reply_create",
    "reply_mark_failed",
    "reply_mark_published",
    "reply_publish_check",
    "reply_send",
    "reply_send_holding",
    "reply_submit",
    "reply_update",
    "ticket_claim",
    "ticket_clear_regulated",
    "ticket_close",
    "ticket_flag_regulated",
    "ticket_ignore",
]
