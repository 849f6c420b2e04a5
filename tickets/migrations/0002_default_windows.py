from django.db import migrations

# Minutes to a first response, per platform and priority (supervisors edit them later).
DEFAULT_WINDOWS = {
    "x": {"high": 15, "normal": 30, "low": 60},
    "facebook": {"high": 30, "normal": 60, "low": 120},
    "instagram": {"high": 30, "normal": 60, "low": 120},
    "linkedin": {"high": 60, "normal": 120, "low": 240},
    "youtube": {"high": 60, "normal": 240, "low": 480},
    "mastodon": {"high": 30, "normal": 60, "low": 120},
    "bluesky": {"high": 30, "normal": 60, "low": 120},
    "generic": {"high": 30, "normal": 60, "low": 120},
    "simulated": {"high": 15, "normal": 30, "low": 60},
}


def create_windows(apps, schema_editor):
    WindowPolicy = apps.get_model("tickets", "WindowPolicy")
    for platform, by_priority in DEFAULT_WINDOWS.items():
        for priority, minutes in by_priority.items():
            WindowPolicy.objects.get_or_create(
                platform=platform, priority=priority, defaults={"first_response_minutes": minutes}
            )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]

    operations = [migrations.RunPython(create_windows, migrations.RunPython.noop)]
