"""Many rows in one INSERT, for the ingest hot path.

`QuerySet.bulk_create` on PostgreSQL builds the whole statement as text, every value
quoted in Python (psycopg's client-side binding, which Django uses), and compiles each
row's values through the ORM's SQL compiler. For a batch of new posts — each carrying
the platform's payload and its screening as JSON — that is most of the batch's cost in
the worker. `bulk_insert` sends the same rows with server-side parameters instead (the
statement is a short template, the values travel apart from it), and gets back the
columns asked for in one round trip.

The values are prepared exactly as `bulk_create` prepares them: each field's
`pre_save` (so `auto_now` and `auto_now_add` are filled in) then `get_db_prep_save`.
The embedded SQLite database (3.35 or later: RETURNING) runs the same statement through
Django's cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from django.db import connection
from django.db.models import Model

# PostgreSQL takes at most 65,535 parameters in one statement, SQLite 32,766.
MAX_PARAMETERS = 32_766


def bulk_insert(
    objs: Sequence[Model], *, ignore_conflicts: bool = False, returning: Sequence[str] = ()
) -> list[tuple[Any, ...]]:
    """Insert `objs` (all of one model, primary keys unset); the `returning` columns of
    each row inserted, in order. Without `ignore_conflicts` every object gets its
    primary key, as `bulk_create` gives it.

    With `ignore_conflicts` a row that breaks a unique constraint is skipped
    (`ON CONFLICT DO NOTHING`): the rows returned are those inserted, so name a column
    that identifies them in `returning`.
    """
    if not objs:
        return []
    meta = type(objs[0])._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    pk_column = meta.pk.column
    wanted = [pk_column, *(meta.get_field(name).column for name in returning)]
    rows_per_statement = max(1, MAX_PARAMETERS // len(fields))
    returned: list[tuple[Any, ...]] = []
    for start in range(0, len(objs), rows_per_statement):
        chunk = objs[start : start + rows_per_statement]
        params: list[Any] = []
        for obj in chunk:
            for field in fields:
                value = field.pre_save(obj, add=True)
                if hasattr(value, "resolve_expression"):  # e.g. a db_default
                    raise TypeError(f"bulk_insert takes plain values: {field.name} is {value!r}")
                params.append(field.get_db_prep_save(value, connection))
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = (
            f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) "  # noqa: S608
            f"VALUES {', '.join([row] * len(chunk))}"
            f"{' ON CONFLICT DO NOTHING' if ignore_conflicts else ''} "
            f"RETURNING {', '.join(connection.ops.quote_name(c) for c in wanted)}"
        )
        rows = execute_returning(sql, params)
        if not ignore_conflicts:
            for obj, (pk, *_) in zip(chunk, rows, strict=True):
                obj.pk = pk
                obj._state.adding = False
                obj._state.db = connection.alias
        returned.extend(tuple(values) for _, *values in rows)
    return returned


def execute_returning(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Run one statement and fetch its rows: on PostgreSQL straight on psycopg with
    server-side parameters (the values are never quoted into the text in Python),
    elsewhere through Django's cursor. `%s` placeholders either way."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
