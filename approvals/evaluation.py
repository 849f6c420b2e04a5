"""How well a policy does on a labelled set: precision, recall and F1 per question.

The set is JSON lines with `text`, `kind` (post or draft), and the labels `lending`
(bool), `pii` (bool) and `regz` (the Reg Z trigger terms a draft states). Lending is
judged on the `lending` category of the screening (not on `regulated`, which also
counts other categories); Reg Z per (item, term) pair over the six trigger terms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from approvals.policy import CompiledPolicy
from approvals.screening import screen

REGZ_TERMS = (
    "down_payment",
    "repayment_terms",
    "payment_amount",
    "finance_charge",
    "open_end_rate",
    "open_end_fee",
)


class EvaluationError(ValueError):
    pass


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, expected: bool, got: bool) -> None:
        if expected and got:
            self.tp += 1
        elif got:
            self.fp += 1
        elif expected:
            self.fn += 1

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Miss:
    id: str
    question: str
    expected: object
    got: object
    text: str


@dataclass
class Report:
    items: int = 0
    scores: dict[str, Score] = field(
        default_factory=lambda: {"lending": Score(), "pii": Score(), "regz": Score()}
    )
    misses: list[Miss] = field(default_factory=list)


def load(lines) -> list[dict]:
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"line {number}: not JSON ({exc.msg})") from None
        missing = {"text", "lending", "pii"} - set(item)
        if missing:
            raise EvaluationError(f"line {number}: missing {', '.join(sorted(missing))}")
        if item.get("kind", "post") not in ("post", "draft"):
            raise EvaluationError(f"line {number}: kind must be post or draft")
        items.append(item)
    return items


def evaluate(items: list[dict], policy: CompiledPolicy | None = None) -> Report:
    report = Report()
    for index, item in enumerate(items):
        kind = item.get("kind", "post")
        result = screen(item["text"], kind=kind, policy=policy)
        ident = str(item.get("id", index + 1))
        report.items += 1

        lending = "lending" in result.categories
        report.scores["lending"].add(bool(item["lending"]), lending)
        if lending != bool(item["lending"]):
            report.misses.append(Miss(ident, "lending", item["lending"], lending, item["text"]))

        pii = bool(result.pii)
        report.scores["pii"].add(bool(item["pii"]), pii)
        if pii != bool(item["pii"]):
            kinds = sorted({finding.kind for finding in result.pii})
            report.misses.append(Miss(ident, "pii", item["pii"], kinds or False, item["text"]))

        if kind == "draft":
            expected = set(item.get("regz", []))
            got = {t.term for t in result.regz.triggers} if result.regz else set()
            got &= set(REGZ_TERMS)
            for term in REGZ_TERMS:
                report.scores["regz"].add(term in expected, term in got)
            if expected != got:
                report.misses.append(
                    Miss(ident, "regz", sorted(expected), sorted(got), item["text"])
                )
    return report
