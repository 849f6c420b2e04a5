from django.core.management.base import BaseCommand, CommandError

from connectors.registry import CONNECTORS
from connectors.services import channel_add
from servicedesk.errors import InvalidInput


class Command(BaseCommand):
    help = "Create or update a channel account: channel_add PLATFORM NAME --set key=value ..."

    def add_arguments(self, parser):
        parser.add_argument("platform", choices=sorted(CONNECTORS))
        parser.add_argument("name")
        parser.add_argument(
            "--set", dest="values", action="append", default=[], metavar="KEY=VALUE"
        )

    def handle(self, *args, platform, name, values, **options):
        settings = {}
        for item in values:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--set takes KEY=VALUE, got {item!r}")
            settings[key.strip()] = value
        try:
            channel = channel_add(platform=platform, name=name, values=settings)
        except InvalidInput as exc:
            raise CommandError(exc.message) from None
        secret_keys = sorted(channel.secrets)
        self.stdout.write(
            self.style.SUCCESS(f"channel '{channel.name}' ({platform}) saved")
            + f"; settings: {', '.join(sorted(channel.settings)) or '-'}"
            + f"; secrets (stored encrypted): {', '.join(secret_keys) or '-'}"
        )
