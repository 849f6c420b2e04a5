"""The append-only, hash-chained audit log.

Each event's hash is SHA-256 over the previous event's hash and the event's own
canonical payload, so changing or deleting any row breaks the chain from there on.
The ORM refuses updates and deletes; on PostgreSQL a trigger refuses them too.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditImmutableError(Exception):
    """Raised on any attempt to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditImmutableError("audit events are append-only")

    def delete(self):
        raise AuditImmutableError("audit events are append-only")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditImmutableError("audit events are append-only")


class AuditEvent(models.Model):
    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # The actor's username, kept so the record reads the same if the user is renamed.
    actor_name = models.CharField(max_length=150, blank=True, editable=False)
    action = models.CharField(max_length=64, editable=False)
    # Indexed with seq (Meta.indexes), which serves every lookup by ticket.
    ticket_id = models.BigIntegerField(null=True, blank=True, editable=False)
    object_type = models.CharField(max_length=32, blank=True, editable=False)
    object_id = models.BigIntegerField(null=True, blank=True, editable=False)
    from_state = models.CharField(max_length=32, blank=True, editable=False)
    to_state = models.CharField(max_length=32, blank=True, editable=False)
    data = models.JSONField(default=dict, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["ticket_id", "seq"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} ticket={self.ticket_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AuditImmutableError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditImmutableError("audit events are append-only")


class AuditChainHead(models.Model):
    """One row: the newest event's seq and hash.

    Appending locks this row, so concurrent transactions extend the chain one at a
    time and never fork it.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"audit head #{self.seq}"


class AuditArchive(models.Model):
    """One file of archived audit events (retention archives; it never deletes)."""

    from_seq = models.PositiveBigIntegerField()
    to_seq = models.PositiveBigIntegerField(unique=True)
    count = models.PositiveIntegerField()
    last_hash = models.CharField(max_length=64)
    path = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["from_seq"]

    def __str__(self) -> str:
        return f"audit #{self.from_seq}–#{self.to_seq} → {self.path}"


class DeadLetterKind(models.TextChoices):
    DELIVERY = "delivery", "Delivery"
    TASK = "task", "Task"


class DeadLetter(models.Model):
    """Work the desk gave up on and set aside for a person: a raw delivery whose every
    attempt failed, or a Celery task that failed with no retry left.

    Written by `servicedesk.dead_letters.dead_letter_record`. While one is unresolved,
    the same poison failing again counts another occurrence on it (one alert, not one
    per attempt). Rows are never deleted, so their sum is a counter (/metrics)."""

    kind = models.CharField(max_length=8, choices=DeadLetterKind.choices)
    # What failed, for a person: "RawDelivery #42", "connectors.channel_poll[<task id>]".
    reference = models.CharField(max_length=255)
    # The same poison: a delivery, or a task name with its arguments (ids only).
    key = models.CharField(max_length=255, editable=False)
    delivery_id = models.BigIntegerField(null=True, blank=True, editable=False)
    task_name = models.CharField(max_length=200, blank=True, editable=False)
    task_id = models.CharField(max_length=64, blank=True, editable=False)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1)
    occurrences = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(editable=False)
    last_seen_at = models.DateTimeField(editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Two workers failing on the same poison at once still make one open letter.
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(resolved_at__isnull=True),
                name="dead_letter_one_open_per_key",
            )
        ]
        indexes = [models.Index(fields=["kind", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.reference}"
