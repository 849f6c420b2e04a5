from django.core.management.base import BaseCommand, CommandError

from connectors.base import ConnectorError
from connectors.models import ChannelAccount
from connectors.services import channel_poll, delivery_process


class Command(BaseCommand):
    help = "Poll one channel account now and process what it returns."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        channel = ChannelAccount.objects.filter(name=name).first()
        if channel is None:
            raise CommandError(f"No channel account '{name}'.")
        try:
            result = channel_poll(channel_id=channel.pk)
        except ConnectorError as exc:
            raise CommandError(f"poll failed: {exc.reason}") from None
        created = 0
        for delivery_id in result.delivery_ids:
            delivery = delivery_process(delivery_id=delivery_id)
            created += delivery.mentions_created if delivery else 0
        self.stdout.write(
            f"{name}: {result.pages} page(s), {result.events} item(s), {created} new mention(s); "
            f"cursor now {ChannelAccount.objects.get(pk=channel.pk).poll_cursor or '-'}"
        )
