"""The two clocks and what happens when they run low, raised once each.

Customer's clock: from the customer's post to the deadline (a follow-up after our
answer starts a new one). At half and at 80% of the window the assignee is warned (the
agents, while nobody has claimed it); at 100% the supervisors hear of the breach.

Legal clock: from the submission for review to the decision, with a target that is a
share of the customer's time left at submission or a number of minutes (LegalClock).
Once `at_risk_pct` of the target is used the primary reviewers are told; at the target
the review goes to a backup lawyer: the available one with the fewest reviews already
escalated to them.

Celery beat runs `escalations_check`. Every comparison with "now" is made in SQL
against the database's clock, so a worker whose clock is minutes off raises the same
escalations at the same moments. Each escalation is one row, unique per ticket, kind
and clock: whoever checks, and however often, a breach escalates exactly once.
Notifications are in-app (written in the same transaction), then e-mail and an
optional chat webhook after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, FloatField, OuterRef, Value
from django.db.models.functions import Greatest, Now, NullIf

from servicedesk.audit import audit_record
from servicedesk.roles import AGENT, LEGAL, SUPERVISOR
from tickets.clock import Epoch, duration_text
from tickets.enums import WORKING_STATES, ReplyState, TicketState
from tickets.models import (
    Escalation,
    EscalationKind,
    LegalClock,
    LegalClockMode,
    LegalRotaEntry,
    Notification,
    NotificationKind,
    Reply,
    Ticket,
)
from tickets.services.common import lock_ticket, reply_editor_ids

logger = logging.getLogger(__name__)

K = EscalationKind

# Share of the customer's window used at which each level is raised, and the next
# level's share: a ticket found past 80% (the checks were down, say) is not also
# warned at half.
WINDOW_LEVELS: tuple[tuple[str, float, float | None], ...] = (
    (K.WINDOW_HALF, 0.5, 0.8),
    (K.WINDOW_WARNING, 0.8, 1.0),
    (K.WINDOW_BREACH, 1.0, None),
)
NOTIFICATION_KIND = {
    K.WINDOW_HALF: NotificationKind.WINDOW_WARNING,
    K.WINDOW_WARNING: NotificationKind.WINDOW_WARNING,
    K.WINDOW_BREACH: NotificationKind.WINDOW_BREACH,
    K.LEGAL_AT_RISK: NotificationKind.LEGAL_AT_RISK,
    K.LEGAL_ESCALATED: NotificationKind.LEGAL_ESCALATED,
}
CHAT_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class CheckResult:
    raised: list[int]

    def __len__(self) -> int:
        return len(self.raised)


def legal_clock() -> LegalClock:
    clock, _ = LegalClock.objects.get_or_create(id=1)
    return clock


# ---- the customer's clock ---------------------------------------------------------------


def _window_used():
    """Share of the ticket's window used now, by the database's clock (1.0 = deadline)."""
    posted = Epoch(F("posted_at"))
    return (Epoch(Now()) - posted) / NullIf(Epoch(F("deadline")) - posted, Value(0.0))


def _raised(kind: str, clock_field: str) -> Exists:
    """This kind was raised already for the ticket's current clock."""
    return Exists(
        Escalation.objects.filter(
            ticket=OuterRef("pk"), kind=kind, clock_started_at=OuterRef(clock_field)
        )
    )


def _window_candidates(kind: str, low: float, high: float | None) -> list[int]:
    queryset = (
        Ticket.objects.filter(state__in=WORKING_STATES)
        .annotate(used=_window_used())
        .filter(used__gte=low)
        .filter(~_raised(kind, "posted_at"))
    )
    if high is not None:
        queryset = queryset.filter(used__lt=high)
    return list(queryset.order_by("deadline").values_list("pk", flat=True))


def _users(*roles: str):
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=roles)
        .distinct()
        .order_by("username")
    )


def _window_escalate(ticket_id: int, kind: str, low: float, high: float | None) -> int | None:
    """Raise one customer-clock level on one ticket, if it is still due and not raised.

    1. lock the ticket; 2. check again under the lock, by the database's clock, that it
    still waits for an answer and has used this share of its window; 3. record the
    escalation (the unique constraint refuses a second one for this clock);
    4. notify in-app; 5. audit; 6. e-mail and chat after commit.
    """
    with transaction.atomic():
        ticket = lock_ticket(ticket_id)
        used = (
            Ticket.objects.filter(pk=ticket.pk, state__in=WORKING_STATES)
            .annotate(used=_window_used())
            .values_list("used", flat=True)
            .first()
        )
        if used is None or used < low or (high is not None and used >= high):
            return None
        window = ticket.deadline - ticket.posted_at
        left = window * (1 - used)
        where = f"Ticket #{ticket.pk} ({ticket.channel.name})"
        if kind == K.WINDOW_BREACH:
            holder = ticket.assignee.get_username() if ticket.assignee_id else "nobody"
            message = (
                f"{where} has breached its {duration_text(window.total_seconds())} window; "
                f"assigned to {holder}."
            )
            recipients = list(_users(SUPERVISOR))
        else:
            message = (
                f"{where}: {round(low * 100)}% of its {duration_text(window.total_seconds())} "
                f"window is used; {duration_text(left.total_seconds())} left."
            )
            recipients = [ticket.assignee] if ticket.assignee_id else list(_users(AGENT))
        escalation = _record(
            ticket=ticket,
            kind=kind,
            clock_started_at=ticket.posted_at,
            due_at=ticket.deadline,
            message=message,
            recipients=recipients,
        )
    return escalation.pk if escalation else None


# ---- the legal clock --------------------------------------------------------------------


def _legal_target(clock: LegalClock):
    """The legal target in seconds, per ticket, as a database expression."""
    if clock.mode == LegalClockMode.MINUTES:
        return Value(float(clock.minutes * 60), output_field=FloatField())
    left = Greatest(Epoch(F("deadline")) - Epoch(F("submitted_at")), Value(0.0))
    return left * Value(clock.share_pct / 100.0)


def _legal_annotated(clock: LegalClock):
    return (
        Ticket.objects.filter(state=TicketState.IN_LEGAL_REVIEW, submitted_at__isnull=False)
        .annotate(
            elapsed=Epoch(Now()) - Epoch(F("submitted_at")),
            target=_legal_target(clock),
        )
        .annotate(progress=F("elapsed") / NullIf(F("target"), Value(0.0)))
    )


def _legal_candidates(clock: LegalClock, kind: str) -> list[int]:
    queryset = _legal_annotated(clock).filter(~_raised(kind, "submitted_at"))
    if kind == K.LEGAL_AT_RISK:
        queryset = queryset.filter(
            elapsed__gte=F("target") * Value(clock.at_risk_pct / 100.0), elapsed__lt=F("target")
        )
    else:
        queryset = queryset.filter(elapsed__gte=F("target"))
    return list(queryset.order_by("deadline").values_list("pk", flat=True))


def _rota(*, primary: bool | None = None, backup: bool | None = None) -> list:
    """Available lawyers on the rota (every lawyer, when there is no rota)."""
    lawyers = list(_users(LEGAL))
    entries = {entry.user_id: entry for entry in LegalRotaEntry.objects.all()}
    if not entries:
        return lawyers
    chosen = []
    for user in lawyers:
        entry = entries.get(user.pk)
        if entry is None or not entry.available:
            continue
        if primary is not None and entry.primary != primary:
            continue
        if backup is not None and entry.backup != backup:
            continue
        chosen.append(user)
    return sorted(chosen, key=lambda user: (entries[user.pk].position, user.get_username()))


def legal_backup_choose(*, exclude_ids: set[int]):
    """The available backup lawyer with the fewest reviews escalated to them and still
    waiting; ties go to the rota's order. None when nobody is available."""
    candidates = [user for user in _rota(backup=True) if user.pk not in exclude_ids]
    if not candidates:
        return None
    load = dict(
        Escalation.objects.filter(
            kind=K.LEGAL_ESCALATED,
            backup_id__in=[user.pk for user in candidates],
            ticket__state=TicketState.IN_LEGAL_REVIEW,
            clock_started_at=F("ticket__submitted_at"),
        )
        .values_list("backup_id")
        .annotate(n=Count("id"))
        .values_list("backup_id", "n")
    )
    order = {user.pk: index for index, user in enumerate(candidates)}
    return min(candidates, key=lambda user: (load.get(user.pk, 0), order[user.pk]))


def _legal_escalate(ticket_id: int, kind: str, clock: LegalClock) -> int | None:
    """Raise the legal clock's warning or escalation on one review, once.

    1. lock the ticket; 2. check again under the lock by the database's clock;
    3. choose whom to tell: the primary reviewers (at risk) or one backup lawyer (at
    the target), never anyone who wrote part of the reply; 4. record, notify, audit.
    """
    with transaction.atomic():
        ticket = lock_ticket(ticket_id)
        row = (
            _legal_annotated(clock)
            .filter(pk=ticket.pk)
            .values("elapsed", "target", "submitted_at")
            .first()
        )
        if row is None:
            return None
        elapsed, target = row["elapsed"], row["target"] or 0.0
        due = elapsed >= target
        if kind == K.LEGAL_AT_RISK and (due or elapsed < target * clock.at_risk_pct / 100):
            return None
        if kind == K.LEGAL_ESCALATED and not due:
            return None
        reply = Reply.objects.filter(ticket=ticket, state=ReplyState.IN_REVIEW).first()
        editors = reply_editor_ids(reply) if reply is not None else set()
        due_at = ticket.submitted_at + timedelta(seconds=target)
        where = f"The legal review of ticket #{ticket.pk} ({ticket.channel.name})"
        backup = None
        if kind == K.LEGAL_AT_RISK:
            recipients = [user for user in _rota(primary=True) if user.pk not in editors]
            message = (
                f"{where} is at risk: decide within {duration_text(target - elapsed)} "
                f"(target {duration_text(target)})."
            )
        else:
            backup = legal_backup_choose(exclude_ids=editors)
            recipients = [backup] if backup is not None else list(_users(SUPERVISOR))
            late = f"is past its {duration_text(target)} target"
            message = (
                f"{where} {late}: it goes to {backup.get_username()} as backup."
                if backup is not None
                else f"{where} {late} and no backup lawyer is available."
            )
        escalation = _record(
            ticket=ticket,
            kind=kind,
            clock_started_at=ticket.submitted_at,
            due_at=due_at,
            message=message,
            recipients=recipients,
            backup=backup,
        )
    return escalation.pk if escalation else None


# ---- recording and delivering -------------------------------------------------------------


def _record(
    *,
    ticket: Ticket,
    kind: str,
    clock_started_at: datetime,
    due_at: datetime,
    message: str,
    recipients: list,
    backup=None,
) -> Escalation | None:
    """Store the escalation, its in-app notifications and its audit event; None when it
    was raised already for this clock (in a savepoint, so the caller's work stands)."""
    try:
        with transaction.atomic():
            escalation = Escalation.objects.create(
                ticket=ticket,
                kind=kind,
                clock_started_at=clock_started_at,
                due_at=due_at,
                message=message[:300],
                backup=backup,
            )
    except IntegrityError:
        return None
    unique = {user.pk: user for user in recipients if user is not None}
    escalation.recipients.set(list(unique))
    Notification.objects.bulk_create(
        [
            Notification(
                recipient_id=user_id,
                kind=NOTIFICATION_KIND[kind],
                ticket=ticket,
                text=message[:300],
            )
            for user_id in unique
        ]
    )
    audit_record(
        action="ticket.escalation",
        ticket_id=ticket.pk,
        obj=escalation,
        data={
            "kind": kind,
            "clock_started_at": clock_started_at.isoformat(),
            "due_at": due_at.isoformat(),
            "recipients": sorted(user.get_username() for user in unique.values()),
            "backup": backup.get_username() if backup is not None else None,
        },
    )
    escalation_id = escalation.pk
    transaction.on_commit(lambda: _enqueue_delivery(escalation_id))
    return escalation


def _enqueue_delivery(escalation_id: int) -> None:
    from tickets.tasks import escalation_deliver_task

    escalation_deliver_task.delay(escalation_id=escalation_id)


def escalations_check() -> CheckResult:
    """Raise every warning and escalation due now (Celery beat, every 30 s)."""
    raised: list[int] = []
    for kind, low, high in WINDOW_LEVELS:
        for ticket_id in _window_candidates(kind, low, high):
            escalation_id = _window_escalate(ticket_id, kind, low, high)
            if escalation_id is not None:
                raised.append(escalation_id)
    clock = legal_clock()
    for kind in (K.LEGAL_ESCALATED, K.LEGAL_AT_RISK):
        for ticket_id in _legal_candidates(clock, kind):
            escalation_id = _legal_escalate(ticket_id, kind, clock)
            if escalation_id is not None:
                raised.append(escalation_id)
    return CheckResult(raised)


class ChatDeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


def _chat_post(url: str, text: str) -> None:
    try:
        response = httpx.post(url, json={"text": text}, timeout=CHAT_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise ChatDeliveryError(f"chat webhook unreachable: {exc}", permanent=False) from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise ChatDeliveryError(f"chat webhook answered {response.status_code}", permanent=False)
    if response.status_code >= 400:
        raise ChatDeliveryError(f"chat webhook refused: {response.status_code}", permanent=True)


def _link(ticket_id: int) -> str:
    base = settings.SERVICEDESK_BASE_URL.rstrip("/")
    return f"{base}/tickets/{ticket_id}/" if base else f"/tickets/{ticket_id}/"


def escalation_deliver(*, escalation_id: int) -> Escalation | None:
    """E-mail the recipients and post to the chat webhook, each at most once.

    1. lock the escalation; 2. e-mail the kinds configured for e-mail to recipients who
    have an address; 3. post the kinds configured for chat to the webhook; 4. stamp
    what was done. A transient chat failure raises ChatDeliveryError(permanent=False)
    for the task to retry; e-mail already sent stays stamped.
    """
    with transaction.atomic():
        escalation = Escalation.objects.select_for_update().filter(pk=escalation_id).first()
        if escalation is None:
            return None
        text = f"{escalation.message}\n{_link(escalation.ticket_id)}"
        fields = []
        if escalation.emailed_at is None and escalation.kind in settings.ESCALATION_EMAIL_KINDS:
            addresses = [
                user.email for user in escalation.recipients.order_by("username") if user.email
            ]
            if addresses:
                subject = f"[servicedesk] {escalation.get_kind_display()}: ticket #" + str(
                    escalation.ticket_id
                )
                sender = settings.DEFAULT_FROM_EMAIL
                send_mass_mail(
                    [(subject, text, sender, [address]) for address in addresses],
                    fail_silently=False,
                )
                escalation.emailed_at = Now()
                fields.append("emailed_at")
        url = settings.SERVICEDESK_CHAT_WEBHOOK_URL
        error = None
        if url and escalation.chat_posted_at is None and escalation.kind in settings.CHAT_KINDS:
            try:
                _chat_post(url, text)
            except ChatDeliveryError as exc:
                error = exc
                escalation.delivery_error = str(exc)[:500]
                fields.append("delivery_error")
            else:
                escalation.chat_posted_at = Now()
                escalation.delivery_error = ""
                fields.extend(["chat_posted_at", "delivery_error"])
        if fields:
            escalation.save(update_fields=fields)
    if error is not None and not error.permanent:
        raise error
    return escalation


def escalations_for(*, ticket_id: int) -> list[Escalation]:
    return list(
        Escalation.objects.filter(ticket_id=ticket_id)
        .select_related("backup")
        .prefetch_related("recipients")
        .order_by("created_at", "id")
    )


__all__ = [
    "ChatDeliveryError",
    "escalation_deliver",
    "escalations_check",
    "escalations_for",
    "legal_backup_choose",
    "legal_clock",
]
