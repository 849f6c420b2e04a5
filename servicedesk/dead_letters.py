"""Dead letters: work the desk gave up on, set aside for a person, and said out loud.

Two kinds end here. A raw delivery whose every attempt failed (DELIVERY_MAX_ATTEMPTS,
connectors/services/deliveries.py) and a Celery task of ours that failed with no retry
left (the `task_failure` hook in servicedesk/celery.py). Each is recorded once, and the
alert goes out once: an ERROR log line (ids only, never a post's text or a secret), a
row that /metrics counts (`servicedesk_dead_letters_total{kind}`), and an in-app
notification for every active supervisor. While a letter is unresolved, the same poison
failing again (the same delivery, or the same task with the same arguments) counts one
more occurrence on it instead of alerting again. A person fixes the cause, reprocesses
the delivery from the admin and marks the letter resolved (`dead_letters_resolve`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from servicedesk.models import DeadLetter, DeadLetterKind
from servicedesk.roles import SUPERVISOR

logger = logging.getLogger(__name__)


def dead_letter_record_delivery(
    *, delivery_id: int, platform: str, error: str, attempts: int
) -> DeadLetter | None:
    """A raw delivery given up on; the new letter, or None when an open one for this
    delivery counted another occurrence."""
    return _record(
        kind=DeadLetterKind.DELIVERY,
        key=f"delivery:{delivery_id}",
        reference=f"RawDelivery #{delivery_id} ({platform})",
        error=error,
        attempts=attempts,
        delivery_id=delivery_id,
        summary=f"Delivery #{delivery_id} ({platform}) failed {attempts} times and was set aside",
        log_extra={"delivery_id": delivery_id},
    )


def dead_letter_record_task(
    *,
    task_name: str,
    task_id: str,
    kwargs: Mapping[str, Any] | None,
    args: Iterable[Any] | None,
    error: str,
    attempts: int,
) -> DeadLetter | None:
    """A task that failed with no retry left; the new letter, or None when an open one
    for the same task and arguments counted another occurrence. Tasks take ids only
    (STYLE.md), so the arguments may name the poison."""
    arguments = [repr(value) for value in args or ()]
    arguments += [f"{name}={value!r}" for name, value in sorted((kwargs or {}).items())]
    call = f"{task_name}({', '.join(arguments)})"[:255]
    return _record(
        kind=DeadLetterKind.TASK,
        key=call,
        reference=f"{task_name}[{task_id}]"[:255],
        error=error,
        attempts=attempts,
        task_name=task_name,
        task_id=task_id or "",
        summary=f"Task {task_name} failed for good after {attempts} attempt(s)",
    )


def _record(
    *,
    kind: str,
    key: str,
    reference: str,
    summary: str,
    log_extra: dict[str, Any] | None = None,
    **fields: Any,
) -> DeadLetter | None:
    """1. log at ERROR (the alert of last resort, even if the database refuses the rest);
    2. in one transaction: count another occurrence on the open letter with this key, or
    create one and notify the supervisors in-app."""
    logger.error("dead letter: %s (%s)", summary, reference, extra=log_extra or {})
    now = timezone.now()
    error = (fields.pop("error") or "")[:10000]
    with transaction.atomic():
        if _seen_again(key=key, error=error, attempts=fields["attempts"], now=now):
            return None
        try:
            with transaction.atomic():  # a savepoint: a concurrent twin leaves ours intact
                letter = DeadLetter.objects.create(
                    kind=kind,
                    key=key,
                    reference=reference,
                    error=error,
                    created_at=now,
                    last_seen_at=now,
                    **fields,
                )
        except IntegrityError:  # another worker recorded the same poison just now
            _seen_again(key=key, error=error, attempts=fields["attempts"], now=now)
            return None
        _notify_supervisors(f"{summary}: see Dead letters in the admin."[:300])
    return letter


def _seen_again(*, key: str, error: str, attempts: int, now) -> bool:
    return bool(
        DeadLetter.objects.filter(key=key, resolved_at__isnull=True).update(
            occurrences=F("occurrences") + 1, last_seen_at=now, error=error, attempts=attempts
        )
    )


def _notify_supervisors(text: str) -> None:
    # Written here rather than through a tickets service: the escalation services write
    # Notification rows directly too, and none of them fits an event with no ticket.
    from tickets.models import Notification, NotificationKind

    supervisors = (
        get_user_model()
        .objects.filter(is_active=True, groups__name=SUPERVISOR)
        .distinct()
        .values_list("pk", flat=True)
    )
    Notification.objects.bulk_create(
        [
            Notification(recipient_id=user_id, kind=NotificationKind.DEAD_LETTER, text=text)
            for user_id in supervisors
        ]
    )


def dead_letters_resolve(*, ids: Iterable[int], actor) -> int:
    """Mark open letters resolved by `actor` (the cause is fixed, the work reprocessed or
    knowingly dropped); how many. A later failure of the same poison opens a new one."""
    return DeadLetter.objects.filter(pk__in=list(ids), resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolved_by=actor
    )
