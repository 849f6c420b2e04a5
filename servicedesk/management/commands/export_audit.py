"""`manage.py export_audit --since … --until … --out FILE`: the chain as JSON lines."""

from __future__ import annotations

import sys
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from servicedesk.audit_export import export_events


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--{name} must be an ISO date or date-time, not {value!r}") from None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    return parsed


class Command(BaseCommand):
    help = (
        "Export the hash-chained audit log for a period as JSON lines with a checkpoint "
        "line (verify it with `verify_audit --file`)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", help="start (inclusive), ISO date or date-time")
        parser.add_argument("--until", help="end (exclusive), ISO date or date-time")
        parser.add_argument("--out", help="file to write (default: standard output)")

    def handle(self, *args, **options):
        since = _when(options["since"], "since")
        until = _when(options["until"], "until")
        if since and until and until <= since:
            raise CommandError("--until must be after --since")
        if options["out"]:
            with open(options["out"], "wb") as out:
                result = export_events(out, since=since, until=until)
            self.stderr.write(
                f"exported {result.count} events (#{result.first_seq}–#{result.last_seq}), "
                f"checkpoint {result.last_hash or '-'} → {options['out']}"
            )
        else:
            export_events(sys.stdout.buffer, since=since, until=until)
