from django.core.management.base import BaseCommand, CommandError

from servicedesk.audit import audit_verify
from servicedesk.audit_export import anchor_known, verify_file


class Command(BaseCommand):
    help = (
        "Check the audit hash chain in the database, or an exported file with --file; "
        "report the first broken link."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", help="an export of `export_audit` to check on its own")
        parser.add_argument(
            "--against-db",
            action="store_true",
            help="with --file: also check that the file's first event joins this database's chain",
        )

    def handle(self, *args, **options):
        if options["file"]:
            return self._file(options["file"], options["against_db"])
        report = audit_verify()
        if not report.ok:
            raise CommandError(
                f"audit chain BROKEN at event #{report.broken_at}: {report.reason} "
                f"({report.checked} events before it are intact)"
            )
        self.stdout.write(self.style.SUCCESS(f"audit chain OK: {report.checked} events verified"))

    def _file(self, path: str, against_db: bool) -> None:
        try:
            report = verify_file(path)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        if not report.ok:
            where = f" at line {report.line}" if report.line else ""
            raise CommandError(
                f"audit export BROKEN{where}: {report.reason} "
                f"({report.count} events before it are intact)"
            )
        if against_db:
            import json

            with open(path, encoding="utf-8") as handle:
                handle.readline()
                first = json.loads(handle.readline() or "{}")
            if not anchor_known(report.anchor_hash, first.get("seq")):
                raise CommandError(
                    "audit export does not join this database's chain: its first event's "
                    "prev_hash is not the hash of the event before it here"
                )
        self.stdout.write(
            self.style.SUCCESS(
                f"audit export OK: {report.count} events verified; anchored on "
                f"{report.anchor_hash or '-'}, checkpoint {report.last_hash or '-'}"
            )
        )
