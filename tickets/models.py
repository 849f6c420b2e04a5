from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import FSMField, transition

from tickets import permissions as perms
from tickets.enums import (
    ACTIVE_REPLY_STATES,
    Platform,
    Priority,
    ReplyState,
    Sentiment,
    TicketState,
)

S = TicketState


class Customer(models.Model):
    """A person on one platform."""

    platform = models.CharField(max_length=16, choices=Platform.choices)
    external_id = models.CharField(max_length=255)
    handle = models.CharField(max_length=255, blank=True)
    display_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "external_id"], name="customer_unique_id")
        ]

    def __str__(self) -> str:
        return f"{self.handle or self.external_id} on {self.platform}"


class WindowPolicy(models.Model):
    """First-response window in minutes for one platform and priority."""

    platform = models.CharField(max_length=16, choices=Platform.choices)
    priority = models.CharField(max_length=8, choices=Priority.choices)
    first_response_minutes = models.PositiveIntegerField()

    class Meta:
        verbose_name_plural = "window policies"
        ordering = ["platform", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "priority"], name="window_unique"),
            models.CheckConstraint(
                condition=Q(first_response_minutes__gte=1), name="window_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.platform}/{self.priority}: {self.first_response_minutes} min"


class Ticket(models.Model):
    """One customer conversation to answer, and the state machine of that answer."""

    channel = models.ForeignKey(
        "connectors.ChannelAccount", on_delete=models.PROTECT, related_name="tickets"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tickets")
    state = FSMField(default=S.NEW, choices=S.choices, protected=True, db_index=True)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    sentiment = models.CharField(max_length=8, choices=Sentiment.choices, default=Sentiment.NEUTRAL)
    regulated = models.BooleanField(default=False, db_index=True)
    # [{"source": "inbound"|"draft"|"manual", "rule": id, "category": ..., "match": text, ...}]
    regulated_reasons = models.JSONField(default=list, blank=True)
    regulated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    pii_flags = models.JSONField(default=list, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_tickets",
    )
    # The window runs from the customer's own post, not from when we saw it.
    posted_at = models.DateTimeField()
    deadline = models.DateTimeField(db_index=True)
    received_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deadline", "id"]
        indexes = [models.Index(fields=["state", "deadline"])]

    def __str__(self) -> str:
        return f"Ticket #{self.pk} ({self.state})"

    # Transitions only set the state; the services in tickets/services.py do the rest.
    @transition(field=state, source=S.NEW, target=S.OPEN, permission=perms.system_only)
    def triage(self) -> None: ...

    @transition(field=state, source=S.OPEN, target=S.IN_PROGRESS, permission=perms.can_work_tickets)
    def claim(self) -> None: ...

    @transition(
        field=state,
        source=S.IN_PROGRESS,
        target=S.IN_LEGAL_REVIEW,
        permission=perms.can_work_tickets,
    )
    def submit(self) -> None: ...

    @transition(
        field=state, source=S.IN_LEGAL_REVIEW, target=S.IN_PROGRESS, permission=perms.can_review
    )
    def request_changes(self) -> None: ...

    @transition(
        field=state, source=S.IN_LEGAL_REVIEW, target=S.APPROVED, permission=perms.can_review
    )
    def approve(self) -> None: ...

    @transition(field=state, source=S.APPROVED, target=S.IN_PROGRESS)
    def void_approval(self) -> None: ...

    @transition(field=state, source=S.SEND_FAILED, target=S.IN_PROGRESS)
    def revise(self) -> None: ...

    @transition(
        field=state,
        source=[S.IN_PROGRESS, S.APPROVED],
        target=S.SENDING,
        permission=perms.can_work_tickets,
    )
    def send(self) -> None: ...

    @transition(
        field=state, source=S.SEND_FAILED, target=S.SENDING, permission=perms.can_work_tickets
    )
    def retry(self) -> None: ...

    @transition(field=state, source=S.SENDING, target=S.REPLIED, permission=perms.system_only)
    def mark_replied(self) -> None: ...

    @transition(field=state, source=S.SENDING, target=S.SEND_FAILED, permission=perms.system_only)
    def mark_send_failed(self) -> None: ...

    @transition(
        field=state,
        source=[S.OPEN, S.IN_PROGRESS, S.SEND_FAILED, S.REPLIED],
        target=S.CLOSED,
        permission=perms.can_work_tickets,
    )
    def close(self) -> None: ...

    @transition(
        field=state,
        source=[S.OPEN, S.IN_PROGRESS],
        target=S.IGNORED,
        permission=perms.can_work_tickets,
    )
    def ignore(self) -> None: ...

    @transition(
        field=state, source=[S.REPLIED, S.CLOSED], target=S.OPEN, permission=perms.system_only
    )
    def reopen(self) -> None: ...


class Mention(models.Model):
    """One inbound post, exactly once per (channel, external_id)."""

    channel = models.ForeignKey(
        "connectors.ChannelAccount", on_delete=models.PROTECT, related_name="mentions"
    )
    external_id = models.CharField(max_length=255)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="mentions")
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="mentions")
    text = models.TextField()
    url = models.URLField(max_length=2048, blank=True)
    posted_at = models.DateTimeField()
    received_at = models.DateTimeField()
    in_reply_to_external_id = models.CharField(max_length=255, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    screening = models.JSONField(default=dict, blank=True)
    # Edits the platform reported: [{"text": earlier text, "replaced_at": iso}], oldest first.
    edit_history = models.JSONField(default=list, blank=True)
    # A deleted post keeps its archived text here and is marked deleted on the ticket.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # What a reply to this post needs on its platform (visibility, thread root refs...).
    reply_context = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["posted_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"], name="mention_unique_delivery"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.external_id}"


class Reply(models.Model):
    """The text we answer a ticket with: a draft until sent."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="replies")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=ReplyState.choices, default=ReplyState.DRAFT)
    body = models.TextField()
    body_sha256 = models.CharField(max_length=64)
    revision = models.PositiveIntegerField(default=1)
    screening = models.JSONField(default=dict, blank=True)
    # Sent to the platform with every publish attempt, so a retry never posts twice.
    idempotency_key = models.UUIDField(unique=True)
    external_id = models.CharField(max_length=255, blank=True)
    external_url = models.URLField(max_length=2048, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "replies"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"],
                condition=Q(state__in=ACTIVE_REPLY_STATES),
                name="reply_one_active_per_ticket",
            )
        ]

    def __str__(self) -> str:
        return f"Reply #{self.pk} on ticket #{self.ticket_id} ({self.state})"


class ReplyRevision(models.Model):
    """Every version of a reply's text, with who wrote it: the trail a lawyer reviews."""

    reply = models.ForeignKey(Reply, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveIntegerField()
    body = models.TextField()
    body_sha256 = models.CharField(max_length=64)
    editor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    screening = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["reply_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["reply", "number"], name="revision_unique_number")
        ]

    def __str__(self) -> str:
        return f"Reply #{self.reply_id} r{self.number}"
