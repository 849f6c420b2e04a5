"""Room in each page of the raw deliveries for the claim's update.

A delivery's row is updated when a worker claims it (attempts, lease), and neither
column is indexed: with free space left on its page PostgreSQL makes that a HOT update
(no new entry in any of the table's five indexes). Filled to 100%, as by default, the
new version goes to another page and every index gets a new entry. Only PostgreSQL has
a fill factor; on SQLite this does nothing.
"""

from django.db import migrations


def _set_fillfactor(schema_editor, value: int) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE connectors_rawdelivery SET (fillfactor = {value})")


def leave_room(apps, schema_editor) -> None:
    _set_fillfactor(schema_editor, 70)


def fill_pages(apps, schema_editor) -> None:
    _set_fillfactor(schema_editor, 100)


class Migration(migrations.Migration):
    dependencies = [("connectors", "0003_delivery_queue_first_attempt")]

    operations = [migrations.RunPython(leave_room, fill_pages)]
