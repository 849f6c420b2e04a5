from django.db import models


class Platform(models.TextChoices):
    X = "x", "X"
    FACEBOOK = "facebook", "Facebook"
    INSTAGRAM = "instagram", "Instagram"
    LINKEDIN = "linkedin", "LinkedIn"
    YOUTUBE = "youtube", "YouTube"
    MASTODON = "mastodon", "Mastodon"
    BLUESKY = "bluesky", "Bluesky"
    GENERIC = "generic", "Generic webhook"
    SIMULATED = "simulated", "Simulated"


class TicketState(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    IN_LEGAL_REVIEW = "in_legal_review", "In legal review"
    APPROVED = "approved", "Approved"
    SENDING = "sending", "Sending"
    SEND_FAILED = "send_failed", "Send failed"
    REPLIED = "replied", "Replied"
    CLOSED = "closed", "Closed"
    IGNORED = "ignored", "Ignored"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"


class Sentiment(models.TextChoices):
    POSITIVE = "positive", "Positive"
    NEUTRAL = "neutral", "Neutral"
    NEGATIVE = "negative", "Negative"


class ReplyKind(models.TextChoices):
    ANSWER = "answer", "Answer"
    # An approved holding template sent while the answer waits for legal.
    HOLDING = "holding", "Holding reply"


class ReplyState(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In legal review"
    APPROVED = "approved", "Approved"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    DISCARDED = "discarded", "Discarded"


# Replies that still belong to the ticket's current answer: at most one per ticket.
ACTIVE_REPLY_STATES = (
    ReplyState.DRAFT,
    ReplyState.IN_REVIEW,
    ReplyState.APPROVED,
    ReplyState.SENDING,
    ReplyState.FAILED,
)

# Ticket states in which a customer follow-up joins the ticket as it is.
WORKING_STATES = (
    TicketState.NEW,
    TicketState.OPEN,
    TicketState.IN_PROGRESS,
    TicketState.IN_LEGAL_REVIEW,
    TicketState.APPROVED,
    TicketState.SENDING,
    TicketState.SEND_FAILED,
)
