from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django_fsm import FSMField, transition

from tickets import permissions as perms
from tickets.enums import (
    ACTIVE_REPLY_STATES,
    WORKING_STATES,
    Platform,
    Priority,
    ReplyKind,
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
    # Indexed with the deadline (Meta.indexes): a lone state index would only cost inserts.
    state = FSMField(default=S.NEW, choices=S.choices, protected=True)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    sentiment = models.CharField(max_length=8, choices=Sentiment.choices, default=Sentiment.NEUTRAL)
    regulated = models.BooleanField(default=False)
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
    # A holding reply from an approved template reached the customer: acknowledged,
    # not yet answered.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deadline", "id"]
        indexes = [
            models.Index(fields=["state", "deadline"]),
            # The open work by time left (the inbox, the API's open list, the wall's
            # rows and counts, read from the index alone): a desk with millions of
            # closed tickets never walks past them.
            models.Index(
                fields=["deadline", "id", "posted_at"],
                condition=Q(state__in=WORKING_STATES),
                name="ticket_working_deadline",
            ),
            # Each one's own open work by time left (the bell on every page).
            models.Index(
                fields=["assignee", "deadline", "id"],
                condition=Q(state__in=WORKING_STATES),
                name="ticket_working_assignee",
            ),
        ]

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
        "connectors.ChannelAccount",
        on_delete=models.PROTECT,
        related_name="mentions",
        db_index=False,  # the unique (channel, external_id) index starts with it
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
        # The command-center wall counts the last hours' posts per minute.
        indexes = [models.Index(fields=["posted_at"], name="mention_posted_at")]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.external_id}"


class Reply(models.Model):
    """The text we answer a ticket with: a draft until sent."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="replies")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=ReplyState.choices, default=ReplyState.DRAFT)
    kind = models.CharField(max_length=8, choices=ReplyKind.choices, default=ReplyKind.ANSWER)
    body = models.TextField()
    body_sha256 = models.CharField(max_length=64)
    revision = models.PositiveIntegerField(default=1)
    screening = models.JSONField(default=dict, blank=True)
    # Sent to the platform with every publish attempt, so a retry never posts twice.
    idempotency_key = models.UUIDField(unique=True)
    external_id = models.CharField(max_length=255, blank=True)
    external_url = models.URLField(max_length=2048, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    # Made from a pre-approved template: which version, with which slot values. The body
    # is that version's text with those values until someone edits it.
    template_version = models.ForeignKey(
        "approvals.TemplateVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replies",
    )
    template_slots = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "replies"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"],
                condition=Q(state__in=ACTIVE_REPLY_STATES, kind="answer"),
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


# --- Working together on a ticket: colleagues, internal notes, in-app notifications ------


class InvitationRole(models.TextChoices):
    ADVISE = "advise", "Advise"
    # An invited drafter may write the reply; submitting and sending stay with the assignee.
    DRAFT = "draft", "Draft the reply"


class TicketInvitation(models.Model):
    """A colleague asked to help on one ticket, whatever their role."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="invitations")
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ticket_invitations"
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    role = models.CharField(max_length=8, choices=InvitationRole.choices)
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "invitee"], name="invitation_once_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.invitee_id} invited to ticket #{self.ticket_id} ({self.role})"


class TicketNote(models.Model):
    """An internal note on a ticket: never sent to the customer."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Note #{self.pk} on ticket #{self.ticket_id}"


class NotificationKind(models.TextChoices):
    INVITATION = "invitation", "Invitation"
    ASSIGNED = "assigned", "Ticket assigned"
    # Written by the window and legal clocks (tickets/services/escalation.py).
    WINDOW_WARNING = "window_warning", "Window warning"
    WINDOW_BREACH = "window_breach", "Window breached"
    LEGAL_AT_RISK = "legal_at_risk", "Legal review at risk"
    LEGAL_ESCALATED = "legal_escalated", "Legal review escalated"
    # Written by servicedesk/dead_letters.py for supervisors: no ticket, a link to the admin.
    DEAD_LETTER = "dead_letter", "Dead letter"


class Notification(models.Model):
    """An in-app notification for one user (the bell). Reviews waiting and tickets about to
    breach are computed when read, so only events that happened once are stored."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    text = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"])]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}"


# --- Supervision: the customer's and the legal clock, escalations, the latency record -----


class PlatformReplyWindow(models.Model):
    """How long a platform lets a brand answer a customer at all (a messaging reply
    window, say). A window policy longer than this is cut to it."""

    platform = models.CharField(max_length=16, choices=Platform.choices, unique=True)
    max_minutes = models.PositiveIntegerField()
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["platform"]
        constraints = [
            models.CheckConstraint(condition=Q(max_minutes__gte=1), name="reply_window_positive")
        ]

    def __str__(self) -> str:
        return f"{self.platform}: answer within {self.max_minutes} min"


class LegalClockMode(models.TextChoices):
    SHARE = "share", "A share of the customer's time left at submission"
    MINUTES = "minutes", "A fixed number of minutes"


class LegalClock(models.Model):
    """The legal clock's target (one row, id 1): from submission to decision."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    mode = models.CharField(
        max_length=8, choices=LegalClockMode.choices, default=LegalClockMode.SHARE
    )
    share_pct = models.PositiveSmallIntegerField(
        default=50, help_text="Share of the customer's time left when the draft went to legal."
    )
    minutes = models.PositiveIntegerField(default=15)
    at_risk_pct = models.PositiveSmallIntegerField(
        default=75, help_text="The reviewer is told once this share of the target is used."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(share_pct__gte=1, share_pct__lte=100), name="legal_clock_share_pct"
            ),
            models.CheckConstraint(condition=Q(minutes__gte=1), name="legal_clock_minutes"),
            models.CheckConstraint(
                condition=Q(at_risk_pct__gte=1, at_risk_pct__lte=99), name="legal_clock_at_risk"
            ),
        ]

    def __str__(self) -> str:
        if self.mode == LegalClockMode.MINUTES:
            return f"legal decides within {self.minutes} min"
        return f"legal decides within {self.share_pct}% of the time left"


class LegalRotaEntry(models.Model):
    """One lawyer on the legal rota. Primary reviewers hear first when a review is at
    risk; at the target the review goes to the available backup with the fewest
    reviews already escalated to them. With no rota at all, every lawyer is both."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="legal_rota"
    )
    position = models.PositiveSmallIntegerField(default=0)
    primary = models.BooleanField(default=True)
    backup = models.BooleanField(default=True)
    available = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]
        verbose_name_plural = "legal rota"

    def __str__(self) -> str:
        return f"{self.user_id} on the legal rota"


class EscalationKind(models.TextChoices):
    WINDOW_HALF = "window_50", "Half of the window used"
    WINDOW_WARNING = "window_80", "80% of the window used"
    WINDOW_BREACH = "window_breach", "Window breached"
    LEGAL_AT_RISK = "legal_at_risk", "Legal review at risk"
    LEGAL_ESCALATED = "legal_escalated", "Legal review escalated to a backup"


class Escalation(models.Model):
    """One warning or escalation, raised once per ticket, kind and clock.

    The customer's clock starts at the customer's post (a follow-up after our answer
    starts a new one); the legal clock at the submission for review. The unique
    constraint is what makes a breach escalate exactly once, whoever checks.
    """

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="escalations")
    kind = models.CharField(max_length=16, choices=EscalationKind.choices)
    clock_started_at = models.DateTimeField()
    due_at = models.DateTimeField()
    # The database's clock, never a worker's.
    created_at = models.DateTimeField(db_default=Now())
    recipients = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+", blank=True)
    # Legal escalations: the backup lawyer the review went to.
    backup = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # What the notifications say (no customer text: it may hold personal data).
    message = models.CharField(max_length=300)
    emailed_at = models.DateTimeField(null=True, blank=True)
    chat_posted_at = models.DateTimeField(null=True, blank=True)
    delivery_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "kind", "clock_started_at"], name="escalation_once_per_clock"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} on ticket #{self.ticket_id}"


class CycleOutcome(models.TextChoices):
    PENDING = "pending", "Waiting for an answer"
    ANSWERED = "answered", "Answered"
    CLOSED = "closed", "Closed without an answer"
    IGNORED = "ignored", "Ignored"


class ResponseCycle(models.Model):
    """One customer post (or run of posts) and our answer to it, stage by stage.

    Rebuilt from the audit trail and the posts (tickets/cycles.py), so a follow-up that
    reopens the ticket starts a new cycle and never overwrites the last one. Stage
    durations follow the timeline posted → received → claimed → submitted → decided →
    sent → replied: each is the time from the stage before it that happened, so they
    add up to the first-response time.
    """

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="cycles")
    number = models.PositiveIntegerField()
    channel = models.ForeignKey(
        "connectors.ChannelAccount", on_delete=models.PROTECT, related_name="+"
    )
    mention = models.ForeignKey(
        Mention, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    priority = models.CharField(max_length=8, choices=Priority.choices)
    outcome = models.CharField(max_length=8, choices=CycleOutcome.choices)
    regulated = models.BooleanField(default=False)
    from_template = models.BooleanField(default=False)
    template_version = models.ForeignKey(
        "approvals.TemplateVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    posted_at = models.DateTimeField()
    deadline = models.DateTimeField()
    received_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    window_seconds = models.FloatField()
    response_seconds = models.FloatField(null=True, blank=True)
    ack_seconds = models.FloatField(null=True, blank=True)
    within_window = models.BooleanField(null=True, blank=True)
    connector_seconds = models.FloatField(null=True, blank=True)
    queue_seconds = models.FloatField(null=True, blank=True)
    drafting_seconds = models.FloatField(null=True, blank=True)
    legal_seconds = models.FloatField(null=True, blank=True)
    sending_seconds = models.FloatField(null=True, blank=True)
    publishing_seconds = models.FloatField(null=True, blank=True)
    # Time the drafts actually waited for a lawyer (every submission to its decision).
    legal_wait_seconds = models.FloatField(null=True, blank=True)
    reviews = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["posted_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "number"], name="cycle_unique_number")
        ]
        indexes = [
            models.Index(fields=["posted_at"], name="cycle_posted_at"),
            models.Index(
                fields=["deadline"],
                condition=Q(outcome="pending"),
                name="cycle_pending_deadline",
            ),
            # The wall's "% within window today": answers and deadlines of today.
            models.Index(fields=["replied_at"], name="cycle_replied_at"),
            models.Index(fields=["deadline"], name="cycle_deadline"),
        ]

    def __str__(self) -> str:
        return f"Ticket #{self.ticket_id} cycle {self.number} ({self.outcome})"


class SupervisionState(models.Model):
    """One row: how far the latency record has read the audit trail."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    cycles_seq = models.PositiveBigIntegerField(default=0)
    cycles_refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"latency record up to audit #{self.cycles_seq}"


class LatencyDay(models.Model):
    """The latency record's answered cycles summed per local day (by the customer's
    post) and per dimension: what reports add up instead of reading every cycle.
    Rebuilt from the cycles for every day a refresh touches (tickets/cycles.py)."""

    day = models.DateField()
    # all, channel, agent, reviewer, regulated, template, stage (key: the stage's
    # index), hour (key: the hour of the day).
    dimension = models.CharField(max_length=10)
    # The channel or user id, 0/1 for yes/no; 0 for none.
    key = models.BigIntegerField(default=0)
    n = models.PositiveIntegerField(default=0)
    within = models.PositiveIntegerField(default=0)
    acked = models.PositiveIntegerField(default=0)
    total = models.FloatField(default=0.0)
    window = models.FloatField(default=0.0)
    connector = models.FloatField(default=0.0)
    queue = models.FloatField(default=0.0)
    drafting = models.FloatField(default=0.0)
    legal = models.FloatField(default=0.0)
    sending = models.FloatField(default=0.0)
    publishing = models.FloatField(default=0.0)
    # {whole seconds: answers} of the first-response time (for `stage`, of the stage's
    # time): the reports rank a period's answers from these (tickets/cycles.py). Empty
    # for `hour`.
    histogram = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["day", "dimension", "key"]
        constraints = [
            models.UniqueConstraint(fields=["day", "dimension", "key"], name="latency_day_unique")
        ]
        indexes = [models.Index(fields=["dimension", "day"], name="latency_day_dimension")]

    def __str__(self) -> str:
        return f"{self.day} {self.dimension}={self.key}: {self.n} answers"
