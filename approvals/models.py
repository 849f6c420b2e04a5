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


# --- The compliance policy: versioned, edited by legal -------------------------------------


class PolicyState(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class Category(models.TextChoices):
    """What a rule detects. Whether it makes a text regulated is in approvals/policy.py."""

    LENDING = "lending", "Lending"
    DEPOSIT = "deposit", "Deposit advertising"
    FAIR_LENDING = "fair_lending", "Fair-lending red flag"
    COMPLAINT = "complaint", "Complaint to a regulator or lawyer"
    FRAUD = "fraud", "Fraud or security"
    UDAAP = "udaap", "UDAAP wording"


class RuleKind(models.TextChoices):
    TERMS = "terms", "Terms and phrases"
    PATTERN = "pattern", "Patterns (regular expressions)"
    PROXIMITY = "proximity", "Proximity (a term near another)"
    EXCLUSION = "exclusion", "Exclusion (a sense that does not count)"


class AppliesTo(models.TextChoices):
    ANY = "any", "Posts and drafts"
    POST = "post", "Inbound posts"
    DRAFT = "draft", "Our drafts"


class PolicyVersion(models.Model):
    """One version of the screening policy. Only a draft can change; publishing one
    makes it the active policy and retires the previous one. Every screening result
    names the version it was made with."""

    number = models.PositiveIntegerField(unique=True)
    state = models.CharField(max_length=8, choices=PolicyState.choices, default=PolicyState.DRAFT)
    note = models.TextField(blank=True, help_text="What changed in this version, and why.")
    # The bank's own published phone numbers, e-mail addresses and street addresses,
    # one per line: never reported as a customer's personal data.
    not_pii = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"],
                condition=models.Q(state="active"),
                name="policy_one_active_version",
            )
        ]

    def __str__(self) -> str:
        return f"Policy v{self.number} ({self.state})"

    @property
    def label(self) -> str:
        return f"policy-{self.number}"


class PolicyRule(models.Model):
    """One rule of a policy version.

    `terms` and `near` hold one entry per line. For terms, proximity and exclusions an
    entry is a phrase matched on whole words, case- and accent-insensitively, where a
    word ending in `*` matches any word it begins (`refinanc*`); an entry starting with
    `re:` is a regular expression instead. Pattern rules hold regular expressions only.
    """

    policy = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="rules")
    rule_id = models.CharField(max_length=64)
    category = models.CharField(max_length=16, choices=Category.choices)
    kind = models.CharField(max_length=12, choices=RuleKind.choices, default=RuleKind.TERMS)
    applies_to = models.CharField(max_length=8, choices=AppliesTo.choices, default=AppliesTo.ANY)
    language = models.CharField(max_length=8, default="any")
    terms = models.TextField()
    near = models.TextField(blank=True)
    distance = models.PositiveSmallIntegerField(default=6)
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["policy_id", "category", "rule_id"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "rule_id"], name="policy_rule_unique_id")
        ]

    def __str__(self) -> str:
        return self.rule_id


# --- Pre-approved templates --------------------------------------------------------------


class Branch(models.Model):
    """A branch the bank publishes: the only values a `{branch}` slot accepts."""

    name = models.CharField(max_length=120, unique=True)
    phone = models.CharField(max_length=32, blank=True)
    address = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "branches"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """A product name a `{product}` slot may name."""

    name = models.CharField(max_length=120, unique=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TemplatePurpose(models.TextChoices):
    ANSWER = "answer", "Answer"
    HOLDING = "holding", "Holding reply"
    MOVE_TO_DM = "move_to_dm", "Move to direct messages"


class ResponseTemplate(models.Model):
    """A reusable reply. Its text lives in versions; legal approves a version."""

    name = models.CharField(max_length=120, unique=True)
    purpose = models.CharField(
        max_length=12, choices=TemplatePurpose.choices, default=TemplatePurpose.ANSWER
    )
    description = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TemplateState(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"
    RETIRED = "retired", "Retired"


class TemplateVersion(models.Model):
    """One text of a template, with `{slot}` placeholders. Immutable once approved."""

    template = models.ForeignKey(
        ResponseTemplate, on_delete=models.PROTECT, related_name="versions"
    )
    number = models.PositiveIntegerField()
    body = models.TextField()
    body_sha256 = models.CharField(max_length=64)
    state = models.CharField(
        max_length=8, choices=TemplateState.choices, default=TemplateState.DRAFT
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Everyone who wrote this version's text: none of them may approve it.
    editor_ids = models.JSONField(default=list, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # Rates go stale: an approval can end.
    expires_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["template_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="template_version_number"),
            models.UniqueConstraint(
                fields=["template"],
                condition=models.Q(state="draft"),
                name="template_one_draft",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template.name} v{self.number} ({self.state})"
