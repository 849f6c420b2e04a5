"""Project-level background work."""

from __future__ import annotations

from celery import shared_task

from servicedesk.audit_export import archive_due


@shared_task(name="servicedesk.audit_archive")
def audit_archive_task() -> str:
    archive = archive_due()
    return str(archive) if archive else "nothing to archive"
