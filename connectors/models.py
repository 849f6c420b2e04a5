from __future__ import annotations

from django.db import models

from tickets.enums import Platform


class ChannelAccount(models.Model):
    """One brand account on one platform, e.g. @NorthwindBank on X."""

    name = models.SlugField(max_length=64, unique=True)
    platform = models.CharField(max_length=16, choices=Platform.choices)
    display_name = models.CharField(max_length=128, blank=True)
    # Platform settings and credentials; issue-level encryption comes with the real connectors.
    settings = models.JSONField(default=dict, blank=True)
    poll_cursor = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"


class SimulatedPost(models.Model):
    """What the simulated platform holds: every reply 'posted' to it, once per idempotency key."""

    channel = models.ForeignKey(ChannelAccount, on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.UUIDField(unique=True)
    external_id = models.CharField(max_length=64, unique=True)
    in_reply_to_external_id = models.CharField(max_length=255, blank=True)
    text = models.TextField()
    text_sha256 = models.CharField(max_length=64)
    posted_at = models.DateTimeField()

    class Meta:
        ordering = ["posted_at"]

    def __str__(self) -> str:
        return self.external_id
