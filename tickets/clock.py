"""The database's clock: what supervision measures time against.

Workers and web processes run on machines whose clocks drift; the database is one clock
for all of them. Every "how long ago" and "how much is left" in the clocks, the reports
and the wall is computed in SQL against `Now()`, or against `db_now()` read once per
request, together with the timestamps the platforms and the services stored.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection
from django.db.models import FloatField, Func
from django.utils import timezone


class Epoch(Func):
    """A timestamp as seconds since 1970 (a float), computed by the database."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            # date_part is double precision; EXTRACT is numeric since PostgreSQL 14,
            # several times slower over a large backlog.
            template="date_part('epoch', %(expressions)s)",
            **extra_context,
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)",
            **extra_context,
        )


def db_now() -> datetime:
    """The database's current time (one query), timezone-aware in UTC."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT statement_timestamp()")
            return cursor.fetchone()[0].astimezone(UTC)
        cursor.execute("SELECT STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')")
        value = cursor.fetchone()[0]
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def stamp_now() -> datetime:
    """The time a stage stamp takes (received, claimed, submitted, sent, closed…).

    On PostgreSQL, the database's clock: one clock for every web process and worker,
    whatever theirs say. The embedded SQLite database runs inside this process, so there
    the process's clock is the database's."""
    if connection.vendor == "postgresql":
        return db_now()
    return timezone.now()


def duration_text(seconds: float) -> str:
    """A duration for people: 45s, 12m 05s, 3h 07m, 2d 4h."""
    total = int(abs(seconds))
    if total >= 86400:
        return f"{total // 86400}d {total % 86400 // 3600}h"
    if total >= 3600:
        return f"{total // 3600}h {total % 3600 // 60:02d}m"
    if total >= 60:
        return f"{total // 60}m {total % 60:02d}s"
    return f"{total}s"
