from __future__ import annotations

from django.db import models

from tickets.enums import Platform


class ChannelAccount(models.Model):
    """One brand account on one platform, e.g. @NorthwindBank on X."""

    name = models.SlugField(max_length=64, unique=True)
    platform = models.CharField(max_length=16, choices=Platform.choices)
    display_name = models.CharField(max_length=128, blank=True)
    # Non-secret settings (base_url, the account's own id and handle, page ids...).
    settings = models.JSONField(default=dict, blank=True)
    # Secret settings (tokens, app secrets) as one Fernet token; see connectors/crypto.py.
    secrets_encrypted = models.TextField(blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Polling (Mastodon, Bluesky, YouTube...): where we are and when to look again.
    poll_cursor = models.CharField(max_length=512, blank=True)
    poll_interval_seconds = models.PositiveIntegerField(default=60)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    # Health, shown to supervisors: a broken connector must be loud.
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    lag_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"

    @property
    def secrets(self) -> dict[str, str]:
        from connectors.crypto import decrypt_secrets

        # Decrypted once per instance and token: webhooks verify with them on every request.
        cached = self.__dict__.get("_secrets_cache")
        if cached is None or cached[0] != self.secrets_encrypted:
            cached = (self.secrets_encrypted, decrypt_secrets(self.secrets_encrypted))
            self.__dict__["_secrets_cache"] = cached
        return dict(cached[1])

    def set_secrets(self, secrets: dict[str, str]) -> None:
        from connectors.crypto import encrypt_secrets

        self.secrets_encrypted = encrypt_secrets(secrets)

    def setting(self, key: str, default: str = "") -> str:
        """A setting, secret or not."""
        if key in self.settings:
            return self.settings[key]
        return self.secrets.get(key, default)


class DeliveryKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    POLL = "poll", "Poll page"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"


class RawDelivery(models.Model):
    """A webhook request or a poll page, stored before anything else is done with it."""

    channel = models.ForeignKey(
        ChannelAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries"
    )
    platform = models.CharField(max_length=16, choices=Platform.choices)
    kind = models.CharField(max_length=8, choices=DeliveryKind.choices)
    received_at = models.DateTimeField(db_index=True)
    # Only the headers that matter (signatures, content type, rate limits): never auth.
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # Not to be claimed before: a worker's lease while it processes the delivery (one
    # that dies leaves it to be claimed again when the lease ends), or the wait before
    # the next try after a transient failure. Null: claimable now.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    mentions_created = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "raw deliveries"
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["status", "received_at"]),
            # The pending deliveries are the workers' queue, claimed oldest first: a
            # small index, however many processed deliveries the table keeps.
            models.Index(
                fields=["id"],
                condition=models.Q(status="pending"),
                name="rawdelivery_pending_queue",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.platform} {self.kind} #{self.pk} ({self.status})"


class OutboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_FLIGHT = "in_flight", "In flight"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutboundMessage(models.Model):
    """One reply to publish: attempts, back-off and the platform's answer."""

    reply = models.OneToOneField("tickets.Reply", on_delete=models.PROTECT, related_name="outbound")
    channel = models.ForeignKey(ChannelAccount, on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.UUIDField(unique=True)
    state = models.CharField(
        max_length=10, choices=OutboxState.choices, default=OutboxState.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the first publish attempt began: a reply of ours found on the platform from
    # before then cannot be this one (see outbox_deliver and find_own_reply).
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    in_flight_since = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    external_url = models.URLField(max_length=2048, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"outbound reply #{self.reply_id} ({self.state})"


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
