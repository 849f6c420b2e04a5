from django.db import migrations


def seed(apps, schema_editor):
    from approvals import policy_seed

    PolicyVersion = apps.get_model("approvals", "PolicyVersion")
    PolicyRule = apps.get_model("approvals", "PolicyRule")
    if PolicyVersion.objects.exists():
        return
    version = PolicyVersion.objects.create(
        number=1,
        state="active",
        note="First policy: lending, deposit advertising, fair lending, complaints, fraud, "
        "UDAAP wording; English and Spanish.",
        not_pii=policy_seed.NOT_PII,
    )
    PolicyRule.objects.bulk_create(
        PolicyRule(
            policy=version,
            rule_id=rule["rule_id"],
            category=rule["category"],
            kind=rule.get("kind", "terms"),
            applies_to=rule.get("applies_to", "any"),
            language=rule.get("language", "any"),
            terms=rule["terms"],
            near=rule.get("near", ""),
            distance=rule.get("distance", 6),
            description=rule.get("description", ""),
        )
        for rule in policy_seed.RULES
    )


class Migration(migrations.Migration):
    dependencies = [("approvals", "0002_templates_and_policy")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
