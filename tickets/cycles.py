"""The latency record: every response cycle of every ticket, rebuilt from the audit trail.

A cycle starts with a customer's post (the one that opened the ticket, or a follow-up
that reopened it) and ends with our answer published, or the ticket closed or ignored
without one. Its stage times come from the append-only audit events and the posts'
own timestamps, never from the ticket row, whose stage columns a later cycle
overwrites.

`cycles_refresh` reads the audit events added since its last run (the audit sequence
is its bookmark, so nothing is read twice or skipped, whatever the clocks say) and
rebuilds the cycles of every ticket they touch. Celery beat runs it; reports read the
result.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import ExtractHour, Floor, Now
from django.utils import timezone

from servicedesk.models import AuditEvent
from tickets.models import (
    CycleOutcome,
    LatencyDay,
    Mention,
    ResponseCycle,
    SupervisionState,
    Ticket,
)

logger = logging.getLogger(__name__)

# Audit events read per transaction while catching up.
SEQ_CHUNK = 20_000
# Tickets rebuilt per batch of queries.
TICKET_CHUNK = 500

# The stages, in timeline order: (name, the timestamp that ends it).
STAGES = (
    ("connector", "received_at"),
    ("queue", "claimed_at"),
    ("drafting", "submitted_at"),
    ("legal", "decided_at"),
    ("sending", "sent_at"),
    ("publishing", "replied_at"),
)
STAGE_NAMES = tuple(name for name, _ in STAGES)
STAGE_LABELS = {
    "connector": "Connector lag (posted → received)",
    "queue": "Queue wait (received → claimed)",
    "drafting": "Drafting (claimed → submitted or sent)",
    "legal": "Legal review (submitted → decided)",
    "sending": "Waiting to send (decided → sent)",
    "publishing": "Publishing (sent → on the platform)",
}

CYCLE_ACTIONS = (
    "ticket.triage",
    "ticket.reopen",
    "ticket.claim",
    "ticket.reassign",
    "ticket.close",
    "ticket.ignore",
    "ticket.regulated",
    "ticket.regulated_cleared",
    "reply.submit",
    "review.approved",
    "review.changes_requested",
    "reply.send",
    "reply.published",
    "reply.holding_published",
)


@dataclass
class Cycle:
    number: int
    mention_id: int | None
    posted_at: datetime
    deadline: datetime
    received_at: datetime | None = None
    claimed_at: datetime | None = None
    submitted_at: datetime | None = None
    decided_at: datetime | None = None
    acknowledged_at: datetime | None = None
    sent_at: datetime | None = None
    replied_at: datetime | None = None
    outcome: str = CycleOutcome.PENDING
    regulated: bool = False
    from_template: bool = False
    template_version_id: int | None = None
    agent_id: int | None = None
    reviewer_id: int | None = None
    reviews: int = 0
    legal_wait_seconds: float | None = None
    waiting_since: datetime | None = field(default=None, repr=False)

    def stage_seconds(self) -> dict[str, float | None]:
        """Each stage's duration along the timeline; a stage that did not happen is None.

        A timestamp earlier than the one before it (a platform clock ahead of ours) is
        taken as that one, so no stage is negative and the stages add up to the
        first-response time.
        """
        result: dict[str, float | None] = {}
        previous = self.posted_at
        # Without a legal review, drafting runs from the claim to the send.
        drafting_end = "submitted_at" if self.submitted_at is not None else "sent_at"
        for name, attribute in STAGES:
            if name == "drafting":
                attribute = drafting_end
            elif name == "sending" and drafting_end == "sent_at":
                result[name] = None
                continue
            moment = getattr(self, attribute)
            if moment is None:
                result[name] = None
                continue
            moment = max(moment, previous)
            result[name] = (moment - previous).total_seconds()
            previous = moment
        return result


def _iso(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def cycles_from_events(
    *,
    ticket: dict[str, Any],
    events: Iterable[AuditEvent],
    mentions: dict[int, dict[str, Any]],
) -> list[Cycle]:
    """The ticket's cycles from its audit events (in sequence order) and posts.

    `ticket` holds the row's `posted_at`, `received_at`, `deadline` and `regulated`,
    used only when an event lacks what it should carry.
    """
    cycles: list[Cycle] = []
    current: Cycle | None = None
    regulated = bool(ticket.get("regulated"))

    def start(event: AuditEvent) -> Cycle:
        data = event.data or {}
        mention = mentions.get(data.get("mention_id")) or {}
        posted = mention.get("posted_at") or (
            ticket["posted_at"] if not cycles else event.created_at
        )
        cycle = Cycle(
            number=len(cycles) + 1,
            mention_id=data.get("mention_id"),
            posted_at=posted,
            deadline=_iso(data.get("deadline")) or ticket["deadline"],
            received_at=mention.get("received_at") or event.created_at,
        )
        cycles.append(cycle)
        return cycle

    for event in events:
        action = event.action
        data = event.data or {}
        at = event.created_at
        if action == "ticket.triage":
            regulated = bool(data.get("regulated", regulated))
            if current is None:
                current = start(event)
            continue
        if action == "ticket.reopen":
            current = start(event)
            continue
        if action == "ticket.regulated":
            regulated = True
        elif action == "ticket.regulated_cleared":
            regulated = False
        if current is None or current.outcome != CycleOutcome.PENDING:
            continue
        current.regulated = regulated
        if action in ("ticket.claim", "ticket.reassign"):
            current.claimed_at = current.claimed_at or at
        elif action == "reply.submit":
            current.submitted_at = current.submitted_at or at
            current.waiting_since = at
        elif action in ("review.approved", "review.changes_requested"):
            current.decided_at = at
            current.reviews += 1
            if current.waiting_since is not None:
                waited = max((at - current.waiting_since).total_seconds(), 0.0)
                current.legal_wait_seconds = (current.legal_wait_seconds or 0.0) + waited
                current.waiting_since = None
            current.reviewer_id = event.actor_id if action == "review.approved" else None
        elif action == "reply.send":
            # The last send before the answer went out: a failed publish sent again.
            current.sent_at = at
            current.agent_id = event.actor_id
        elif action == "reply.holding_published":
            current.acknowledged_at = current.acknowledged_at or at
        elif action == "reply.published":
            current.replied_at = at
            current.outcome = CycleOutcome.ANSWERED
            current.regulated = bool(data.get("regulated", regulated))
            current.template_version_id = data.get("template_version_id")
            current.from_template = bool(data.get("template_unmodified"))
            if not data.get("approval_id"):
                current.reviewer_id = None
        elif action == "ticket.close":
            current.outcome = CycleOutcome.CLOSED
        elif action == "ticket.ignore":
            current.outcome = CycleOutcome.IGNORED
    if current is not None and current.outcome == CycleOutcome.PENDING:
        current.regulated = regulated
    for cycle in cycles:
        if cycle.decided_at is not None and cycle.submitted_at is None:
            cycle.decided_at = None
    return cycles


def cycle_row(*, ticket: dict[str, Any], cycle: Cycle) -> ResponseCycle:
    stages = cycle.stage_seconds()
    window = max((cycle.deadline - cycle.posted_at).total_seconds(), 0.0)
    response = None
    within = None
    if cycle.replied_at is not None:
        response = max((cycle.replied_at - cycle.posted_at).total_seconds(), 0.0)
        within = cycle.replied_at <= cycle.deadline
    ack = None
    if cycle.acknowledged_at is not None:
        ack = max((cycle.acknowledged_at - cycle.posted_at).total_seconds(), 0.0)
    return ResponseCycle(
        ticket_id=ticket["id"],
        number=cycle.number,
        channel_id=ticket["channel_id"],
        mention_id=cycle.mention_id,
        priority=ticket["priority"],
        outcome=cycle.outcome,
        regulated=cycle.regulated,
        from_template=cycle.from_template,
        template_version_id=cycle.template_version_id,
        agent_id=cycle.agent_id,
        reviewer_id=cycle.reviewer_id,
        posted_at=cycle.posted_at,
        deadline=cycle.deadline,
        received_at=cycle.received_at,
        claimed_at=cycle.claimed_at,
        submitted_at=cycle.submitted_at,
        decided_at=cycle.decided_at,
        acknowledged_at=cycle.acknowledged_at,
        sent_at=cycle.sent_at,
        replied_at=cycle.replied_at,
        window_seconds=window,
        response_seconds=response,
        ack_seconds=ack,
        within_window=within,
        connector_seconds=stages["connector"],
        queue_seconds=stages["queue"],
        drafting_seconds=stages["drafting"],
        legal_seconds=stages["legal"],
        sending_seconds=stages["sending"],
        publishing_seconds=stages["publishing"],
        legal_wait_seconds=cycle.legal_wait_seconds,
        reviews=cycle.reviews,
    )


_UPDATE_FIELDS = [
    f.name for f in ResponseCycle._meta.concrete_fields if f.name not in ("id", "ticket", "number")
]


def tickets_cycles_rebuild(ticket_ids: list[int]) -> int:
    """Rebuild the cycles of these tickets and the sums of their days (the caller's
    transaction); returns how many cycles were written."""
    written = 0
    days: set = set()
    for start in range(0, len(ticket_ids), TICKET_CHUNK):
        chunk = ticket_ids[start : start + TICKET_CHUNK]
        tickets = {
            row["id"]: row
            for row in Ticket.objects.filter(pk__in=chunk).values(
                "id", "channel_id", "priority", "posted_at", "deadline", "regulated"
            )
        }
        events: dict[int, list[AuditEvent]] = defaultdict(list)
        mention_ids: set[int] = set()
        for event in (
            AuditEvent.objects.filter(ticket_id__in=list(tickets), action__in=CYCLE_ACTIONS)
            .only("seq", "created_at", "action", "actor_id", "ticket_id", "data")
            .order_by("seq")
        ):
            events[event.ticket_id].append(event)
            if event.action in ("ticket.triage", "ticket.reopen"):
                mention_id = (event.data or {}).get("mention_id")
                if isinstance(mention_id, int):
                    mention_ids.add(mention_id)
        mentions = {
            row["id"]: row
            for row in Mention.objects.filter(pk__in=mention_ids).values(
                "id", "posted_at", "received_at"
            )
        }
        rows = []
        for ticket_id, ticket in tickets.items():
            for cycle in cycles_from_events(
                ticket=ticket, events=events.get(ticket_id, ()), mentions=mentions
            ):
                rows.append(cycle_row(ticket=ticket, cycle=cycle))
        if rows:
            ResponseCycle.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["ticket", "number"],
                update_fields=_UPDATE_FIELDS,
            )
            days |= {timezone.localdate(row.posted_at) for row in rows}
        written += len(rows)
    latency_days_rebuild(days)
    return written


def cycles_refresh(*, max_chunks: int | None = None) -> int:
    """Bring the latency record up to date with the audit trail. Returns cycles written.

    1. lock the bookmark row (another refresh running at the same moment skips: it
       would do the same work); 2. read which tickets the audit events after the
       bookmark touch, a chunk at a time; 3. rebuild those tickets' cycles; 4. move the
       bookmark, in the same transaction as the rows it covers.

    Audit events get their sequence numbers under the chain's row lock, held to
    commit, so they become visible in sequence order: no event can appear later below
    the bookmark.
    """
    SupervisionState.objects.get_or_create(id=1)
    written = 0
    chunks = 0
    while max_chunks is None or chunks < max_chunks:
        with transaction.atomic():
            state = SupervisionState.objects.select_for_update(skip_locked=True).filter(id=1)
            state = state.first()
            if state is None:
                return written  # another process is refreshing right now
            top = AuditEvent.objects.aggregate(top=Max("seq"))["top"] or 0
            if top <= state.cycles_seq:
                return written
            upto = min(top, state.cycles_seq + SEQ_CHUNK)
            ticket_ids = sorted(
                set(
                    AuditEvent.objects.filter(
                        seq__gt=state.cycles_seq, seq__lte=upto, ticket_id__isnull=False
                    ).values_list("ticket_id", flat=True)
                )
            )
            written += tickets_cycles_rebuild(ticket_ids)
            state.cycles_seq = upto
            state.cycles_refreshed_at = Now()
            state.save(update_fields=["cycles_seq", "cycles_refreshed_at"])
        chunks += 1
    return written


def cycles_refresh_without_beat() -> None:
    """Without a broker there is no beat (the demo, tests): pages that read the latency
    record bring it up to date themselves. With Celery beat running this does nothing."""
    from django.conf import settings

    if settings.CELERY_TASK_ALWAYS_EAGER:
        cycles_refresh()


# ---- sums per day: what reports add up -----------------------------------------------------

DIMENSIONS = {
    "channel": "channel_id",
    "agent": "agent_id",
    "reviewer": "reviewer_id",
    "regulated": "regulated",
    "template": "from_template",
}
SUM_FIELDS = {name: f"{name}_seconds" for name in STAGE_NAMES}
ROLLUP_DIMENSIONS = ("all", *DIMENSIONS, "stage", "hour")
# The dimensions whose days keep a histogram, for the reports' percentiles.
HISTOGRAM_DIMENSIONS = ("all", *DIMENSIONS, "stage")


def _key(value) -> int:
    if value is None:
        return 0
    return int(value)


def cycle_sums(queryset: QuerySet[ResponseCycle], dimension: str) -> dict[int, dict[str, float]]:
    """The answered cycles of `queryset` summed per key of `dimension`: how many, how
    many in time, how many late but acknowledged in time, and the seconds (first
    response, window, each stage). For `stage` each key is a stage's index and the
    figures count the answers in which that stage happened."""
    answered = queryset.filter(outcome=CycleOutcome.ANSWERED, response_seconds__isnull=False)
    if dimension == "stage":
        aggregates = {}
        for index, field in enumerate(SUM_FIELDS.values()):
            present = Q(**{f"{field}__isnull": False})
            aggregates.update(
                {
                    f"n{index}": Count("id", filter=present),
                    f"w{index}": Count("id", filter=present & Q(within_window=True)),
                    f"t{index}": Sum(field),
                    f"win{index}": Sum("window_seconds", filter=present),
                }
            )
        row = answered.aggregate(**aggregates)
        return {
            index: {
                "n": row[f"n{index}"],
                "within": row[f"w{index}"],
                "acked": 0,
                "total": row[f"t{index}"] or 0.0,
                "window": row[f"win{index}"] or 0.0,
            }
            for index in range(len(SUM_FIELDS))
            if row[f"n{index}"]
        }
    aggregates = {
        "n": Count("id"),
        "within": Count("id", filter=Q(within_window=True)),
        "acked": Count("id", filter=Q(within_window=False, ack_seconds__lte=F("window_seconds"))),
        "total": Sum("response_seconds"),
        "window": Sum("window_seconds"),
        **{name: Sum(field) for name, field in SUM_FIELDS.items()},
    }
    if dimension == "all":
        row = answered.aggregate(**aggregates)
        return {0: _clean(row)} if row["n"] else {}
    key = ExtractHour("posted_at") if dimension == "hour" else F(DIMENSIONS[dimension])
    rows = answered.annotate(k=key).values("k").annotate(**aggregates).order_by()
    return {_key(row["k"]): _clean(row) for row in rows}


def cycle_histograms(queryset: QuerySet[ResponseCycle], dimension: str) -> dict[int, Counter]:
    """The answered cycles of `queryset` per key of `dimension`, as histograms of whole
    seconds ({seconds: how many}) of the first-response time — for `stage`, of each
    stage's time, keyed by the stage's index. Histograms add up across days, and the
    nearest rank of floored times is the floor of the nearest rank, so a report ranks a
    month of answers from its days' histograms exactly."""
    answered = queryset.filter(outcome=CycleOutcome.ANSWERED, response_seconds__isnull=False)
    out: dict[int, Counter] = defaultdict(Counter)
    if dimension == "stage":
        # One statement: each stage's histogram, stacked (UNION ALL).
        parts = [
            answered.filter(**{f"{field}__isnull": False})
            .annotate(k=Value(index), s=Floor(field))
            .values("k", "s")
            .annotate(n=Count("id"))
            .order_by()
            for index, field in enumerate(SUM_FIELDS.values())
        ]
        for row in parts[0].union(*parts[1:], all=True):
            out[int(row["k"])][int(row["s"])] += row["n"]
        return out
    if dimension == "all":
        rows = answered.annotate(s=Floor("response_seconds")).values("s").annotate(n=Count("id"))
        for row in rows.order_by():
            out[0][int(row["s"])] += row["n"]
        return out
    rows = (
        answered.annotate(k=F(DIMENSIONS[dimension]), s=Floor("response_seconds"))
        .values("k", "s")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        out[_key(row["k"])][int(row["s"])] += row["n"]
    return out


def _clean(row: dict) -> dict[str, float]:
    return {
        "n": row["n"],
        "within": row["within"],
        "acked": row["acked"],
        "total": row["total"] or 0.0,
        "window": row["window"] or 0.0,
        **{name: row.get(name) or 0.0 for name in SUM_FIELDS},
    }


def day_bounds(day) -> tuple:
    """A local day's first moment and the next day's."""
    from datetime import datetime, time, timedelta

    start = timezone.make_aware(datetime.combine(day, time.min))
    end = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
    return start, end


def latency_days_rebuild(days: set) -> None:
    """Sum these days' answered cycles again, every dimension (the caller's transaction)."""
    for day in sorted(days):
        start, end = day_bounds(day)
        cycles = ResponseCycle.objects.filter(posted_at__gte=start, posted_at__lt=end)
        rows = []
        for dimension in ROLLUP_DIMENSIONS:
            histograms = (
                cycle_histograms(cycles, dimension) if dimension in HISTOGRAM_DIMENSIONS else {}
            )
            for key, sums in cycle_sums(cycles, dimension).items():
                histogram = {
                    str(seconds): n for seconds, n in sorted(histograms.get(key, {}).items())
                }
                rows.append(
                    LatencyDay(day=day, dimension=dimension, key=key, histogram=histogram, **sums)
                )
        LatencyDay.objects.filter(day=day).delete()
        LatencyDay.objects.bulk_create(rows)
