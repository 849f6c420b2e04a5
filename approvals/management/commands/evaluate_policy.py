"""`manage.py evaluate_policy FILE.jsonl`: precision, recall and F1 of the active policy."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from approvals.evaluation import EvaluationError, evaluate, load
from approvals.policy import active_policy


class Command(BaseCommand):
    help = (
        "Screen a labelled JSON-lines file with the active policy and print precision, "
        "recall and F1 for lending, PII and Reg Z triggers, then every misclassified item."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="JSON lines: text, kind, lending, pii, regz")

    def handle(self, *args, **options):
        try:
            with open(options["file"], encoding="utf-8") as handle:
                items = load(handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}") from None
        except EvaluationError as exc:
            raise CommandError(f"{options['file']}: {exc}") from None
        policy = active_policy()
        report = evaluate(items, policy)
        out = self.stdout.write
        out(f"{report.items} items, policy {policy.label}")
        out(f"{'':10}{'precision':>10}{'recall':>10}{'F1':>10}{'tp':>6}{'fp':>6}{'fn':>6}")
        for name, score in report.scores.items():
            out(
                f"{name:10}{score.precision:>10.3f}{score.recall:>10.3f}{score.f1:>10.3f}"
                f"{score.tp:>6}{score.fp:>6}{score.fn:>6}"
            )
        out("")
        out(f"{len(report.misses)} misclassified:")
        for miss in report.misses:
            out(f"  {miss.id} {miss.question}: expected {miss.expected}, got {miss.got}")
            out(f"      {miss.text}")
