from django.core.management.base import BaseCommand, CommandError

from servicedesk.audit import audit_verify


class Command(BaseCommand):
    help = "Check the audit hash chain; report the first broken link."

    def handle(self, *args, **options):
        report = audit_verify()
        if not report.ok:
            raise CommandError(
                f"audit chain BROKEN at event #{report.broken_at}: {report.reason} "
                f"({report.checked} events before it are intact)"
            )
        self.stdout.write(self.style.SUCCESS(f"audit chain OK: {report.checked} events verified"))
