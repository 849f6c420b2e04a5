"""Serializer fields shared by the API modules."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 timestamp that must carry its offset: a naive time is ambiguous."""

    default_error_messages = {
        "naive_datetime": "The timestamp has no time-zone offset; send e.g. 2026-01-31T09:15:00Z.",
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive_datetime")
        return super().to_internal_value(value)


class BoundedTextField(serializers.CharField):
    """Text kept exactly as sent (no trimming), at most MAX_TEXT_BYTES of UTF-8.

    Only a JSON string is text: a number or a boolean is a client's mistake, not a post.
    """

    default_error_messages = {
        "text_too_long": "The text is longer than {max_bytes} bytes.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if len(value.encode("utf-8")) > settings.MAX_TEXT_BYTES:
            self.fail("text_too_long", max_bytes=settings.MAX_TEXT_BYTES)
        return value


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)
