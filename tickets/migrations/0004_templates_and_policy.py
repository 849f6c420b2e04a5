import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0002_templates_and_policy"),
        ("tickets", "0003_mention_edits_deletions_context"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="reply",
            name="reply_one_active_per_ticket",
        ),
        migrations.AddField(
            model_name="reply",
            name="kind",
            field=models.CharField(
                choices=[("answer", "Answer"), ("holding", "Holding reply")],
                default="answer",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="reply",
            name="template_slots",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="reply",
            name="template_version",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="replies",
                to="approvals.templateversion",
            ),
        ),
        migrations.AddField(
            model_name="ticket",
            name="acknowledged_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="reply",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("kind", "answer"),
                    ("state__in", ("draft", "in_review", "approved", "sending", "failed")),
                ),
                fields=("ticket",),
                name="reply_one_active_per_ticket",
            ),
        ),
    ]
