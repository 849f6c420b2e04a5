import logging
import random
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from connectors.models import ChannelAccount
from connectors.simulation import next_mention
from tickets.services import mention_ingest

logger = logging.getLogger(__name__)


class EmbeddedBeat:
    """Celery beat's schedule, run in this process: the demo has no Redis, no worker and
    no beat, yet its window warnings, escalations, latency record and sweeps must run."""

    def __init__(self):
        from servicedesk.celery import app

        self.app = app
        app.loader.import_default_modules()  # every app's tasks module, as a worker does
        self.due = {name: 0.0 for name in settings.CELERY_BEAT_SCHEDULE}

    def tick(self) -> None:
        now = time.monotonic()
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
            if now < self.due[name]:
                continue
            self.due[name] = now + float(entry["schedule"])
            try:
                self.app.tasks[entry["task"]].apply(throw=True)
            except Exception:  # one failing check must not stop the stream or the others
                logger.exception("periodic task %s failed", entry["task"])

    def sleep(self, seconds: float) -> None:
        """Sleep, running whatever falls due meanwhile."""
        end = time.monotonic() + seconds
        while True:
            self.tick()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 1.0))


class Command(BaseCommand):
    help = "Feed the simulated channel a live stream of realistic customer posts."

    def add_arguments(self, parser):
        parser.add_argument("--channel", default="sim")
        parser.add_argument(
            "--interval", type=float, default=8.0, help="mean seconds between posts"
        )
        parser.add_argument("--count", type=int, default=0, help="stop after N posts (0: forever)")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--beat",
            action="store_true",
            help="also run Celery beat's periodic tasks here (the demo: no worker, no beat)",
        )

    def handle(self, *args, channel, interval, count, seed, beat, **options):
        account = ChannelAccount.objects.filter(name=channel).first()
        if account is None:
            raise CommandError(f"No channel account '{channel}'; run seed_demo first.")
        rng = random.Random(seed)  # noqa: S311 - demo data, not security
        made = 0
        last_id = ""
        embedded = EmbeddedBeat() if beat else None
        while not count or made < count:
            post = next_mention(rng, account)
            # Platforms redeliver: now and then the same post arrives twice.
            redelivery = bool(last_id) and rng.random() < 0.05
            external_id = last_id if redelivery else f"sim-in-{uuid.uuid4().hex[:12]}"
            last_id = external_id
            result = mention_ingest(
                channel=account,
                external_id=external_id,
                author=post.author,
                text=post.text,
                url=f"https://simulated.invalid/{post.author['handle']}/{made}",
                posted_at=timezone.now() - timedelta(seconds=rng.randint(2, 90)),
                in_reply_to_external_id=post.in_reply_to,
            )
            made += 1
            kind = "follow-up" if post.in_reply_to else "new"
            if not result.created:
                kind = "duplicate (same ticket)"
            self.stdout.write(
                f"[{timezone.now():%H:%M:%S}] {kind} mention -> ticket #{result.ticket.pk}"
                f"{' (regulated)' if result.ticket.regulated else ''}: {post.text[:70]}"
            )
            if not count or made < count:
                pause = rng.expovariate(1 / interval) if interval > 0 else 0
                if embedded is not None:
                    embedded.sleep(pause)
                else:
                    time.sleep(pause)
