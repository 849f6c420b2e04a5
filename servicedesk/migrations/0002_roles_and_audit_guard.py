from django.db import migrations

ROLES = ("agent", "legal", "supervisor", "admin", "integration")


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


# On PostgreSQL the database itself refuses to change or delete an audit row, whatever
# code path tries (raw SQL, a shell, a bug). TRUNCATE, used only by test teardown and
# by deliberate archiving, is a separate privilege and is not a row change.
GUARD_SQL = """
CREATE OR REPLACE FUNCTION servicedesk_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER servicedesk_auditevent_append_only
    BEFORE UPDATE OR DELETE ON servicedesk_auditevent
    FOR EACH ROW EXECUTE FUNCTION servicedesk_audit_append_only();
"""
UNGUARD_SQL = """
DROP TRIGGER IF EXISTS servicedesk_auditevent_append_only ON servicedesk_auditevent;
DROP FUNCTION IF EXISTS servicedesk_audit_append_only();
"""


def guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # params=None: the SQL is sent as is (its RAISE format uses a literal %).
        schema_editor.execute(GUARD_SQL, params=None)


def unguard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNGUARD_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("servicedesk", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(create_roles, remove_roles),
        migrations.RunPython(guard, unguard),
    ]
