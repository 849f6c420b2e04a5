"""Screening of any text: is it regulated, why, what personal data it carries, and — for
our drafts — which Reg Z trigger terms and UDAAP words a lawyer should see.

Everything outside approvals/ calls only `screen(text, kind=...)`. The rules come from
the active policy version that legal publishes (approvals/policy.py); every result
names that version. Reasons carry the rule id, the category and the matched span as
offsets into the original text, so the UI can highlight exactly what matched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.conf import settings

from approvals import regz
from approvals.normalize import fold
from approvals.pii import PiiFinding, PiiScanner, mask_text
from approvals.policy import REGULATED_ON, CompiledPolicy, active_policy

__all__ = ["PiiFinding", "Reason", "Screening", "mask_text", "screen"]

POST, DRAFT = "post", "draft"


@dataclass(frozen=True)
class Reason:
    rule: str
    category: str
    match: str
    start: int
    end: int
    # For a proximity rule: the word that made the match count ("rate" near "mortgage").
    near: str = ""


@dataclass(frozen=True)
class Screening:
    regulated: bool
    reasons: list[Reason] = field(default_factory=list)
    pii: list[PiiFinding] = field(default_factory=list)
    policy_version: str = ""
    kind: str = POST
    regz: regz.RegZAdvice | None = None

    @property
    def blocked(self) -> bool:
        """A draft carrying PII must never be published."""
        return bool(self.pii)

    @property
    def categories(self) -> list[str]:
        return sorted({reason.category for reason in self.reasons})

    @property
    def advice(self) -> list[str]:
        """Plain sentences for the agent and the lawyer."""
        notes: list[str] = []
        if self.pii:
            kinds = ", ".join(sorted({finding.kind.replace("_", " ") for finding in self.pii}))
            if self.kind == DRAFT:
                notes.append(f"Remove the personal data ({kinds}): it cannot be sent.")
            else:
                notes.append(
                    f"The post shows personal data ({kinds}): offer the approved "
                    "'please DM us, and delete your post' reply."
                )
        if self.regz is not None:
            terms = ", ".join(sorted({t.term.replace("_", " ") for t in self.regz.triggers}))
            missing = [d.item for d in self.regz.disclosures if not d.satisfied]
            if missing:
                notes.append(
                    f"Reg Z: the draft states a triggering term ({terms}); it must also give "
                    + "; ".join(missing)
                    + " — or link to the full disclosures."
                )
            else:
                notes.append(
                    f"Reg Z: the draft states a triggering term ({terms}); "
                    "the required disclosures are present."
                )
        udaap = sorted({r.match.lower() for r in self.reasons if r.category == "udaap"})
        if udaap:
            notes.append(
                "UDAAP: absolute or 'free' wording ("
                + ", ".join(f'"{word}"' for word in udaap)
                + ") is deceptive if any fee or condition applies."
            )
        return notes

    def as_dict(self) -> dict:
        return {
            "regulated": self.regulated,
            "categories": self.categories,
            "reasons": [asdict(reason) for reason in self.reasons],
            "pii": [asdict(finding) for finding in self.pii],
            "blocked": self.blocked,
            "regz": self.regz.as_dict() if self.regz else None,
            "advice": self.advice,
            "kind": self.kind,
            "policy_version": self.policy_version,
        }


def _scanner(policy: CompiledPolicy) -> PiiScanner:
    scanner = getattr(policy, "_pii_scanner", None)
    if scanner is None:
        scanner = PiiScanner(policy.not_pii)
        policy._pii_scanner = scanner
    return scanner


def screen(text: str, *, kind: str = POST, policy: CompiledPolicy | None = None) -> Screening:
    """Screen a customer's post (`kind="post"`) or our draft (`kind="draft"`)."""
    if kind not in (POST, DRAFT):
        raise ValueError(f"kind must be 'post' or 'draft', not {kind!r}")
    policy = policy or active_policy()
    folded = fold(text)
    reasons: list[Reason] = []
    for hit in policy.match(folded, kind):
        start, end = folded.span(hit.start, hit.end)
        near = ""
        if hit.near is not None:
            near_start, near_end = folded.span(*hit.near)
            near = text[near_start:near_end]
        reasons.append(Reason(hit.rule_id, hit.category, text[start:end], start, end, near))
    advice = None
    if kind == DRAFT:
        lending = any(reason.category == "lending" for reason in reasons)
        advice = regz.check(
            folded,
            text,
            lending_context=lending,
            link_domains=tuple(settings.SERVICEDESK_LINK_DOMAINS),
        )
        if advice is not None:
            taken = {(r.start, r.end) for r in reasons}
            for trigger in advice.triggers:
                if (trigger.start, trigger.end) not in taken:
                    reasons.append(
                        Reason(
                            f"regz.{trigger.term}",
                            "lending",
                            trigger.match,
                            trigger.start,
                            trigger.end,
                        )
                    )
            reasons.sort(key=lambda reason: (reason.start, reason.rule))
    regulated = any(kind in REGULATED_ON[reason.category] for reason in reasons)
    return Screening(
        regulated=regulated,
        reasons=reasons,
        pii=_scanner(policy).scan(folded, text),
        policy_version=policy.label,
        kind=kind,
        regz=advice,
    )
