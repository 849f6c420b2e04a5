from __future__ import annotations

from django.conf import settings
from django.db import models


class Decision(models.TextChoices):
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"


class LegalReview(models.Model):
    """One lawyer's decision on one exact text of a reply."""

    reply = models.ForeignKey("tickets.Reply", on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="legal_reviews"
    )
    decision = models.CharField(max_length=20, choices=Decision.choices)
    comment = models.TextField(blank=True)
    # The hash of the text the decision was made on: an approval covers that text only.
    body_sha256 = models.CharField(max_length=64)
    revision = models.PositiveIntegerField()
    submitted_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One decision per submitted revision: the second lawyer to decide loses.
            models.UniqueConstraint(fields=["reply", "revision"], name="review_one_per_revision")
        ]

    def __str__(self) -> str:
        return f"{self.decision} on reply #{self.reply_id} r{self.revision}"
