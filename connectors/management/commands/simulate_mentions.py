import random
import time
import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from connectors.models import ChannelAccount
from connectors.simulation import next_mention
from tickets.services import mention_ingest


class Command(BaseCommand):
    help = "Feed the simulated channel a live stream of realistic customer posts."

    def add_arguments(self, parser):
        parser.add_argument("--channel", default="sim")
        parser.add_argument(
            "--interval", type=float, default=8.0, help="mean seconds between posts"
        )
        parser.add_argument("--count", type=int, default=0, help="stop after N posts (0: forever)")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, channel, interval, count, seed, **options):
        account = ChannelAccount.objects.filter(name=channel).first()
        if account is None:
            raise CommandError(f"No channel account '{channel}'; run seed_demo first.")
        rng = random.Random(seed)  # noqa: S311 - demo data, not security
        made = 0
        last_id = ""
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
                time.sleep(rng.expovariate(1 / interval) if interval > 0 else 0)
