"""A policy version compiled once into a matcher, and the active version per process.

Phrases are matched on tokens through one dictionary keyed by first word (exact words
and `*` stems), so the cost per post does not grow with the number of terms; regular
expressions of a version are joined into one alternation per role. A compiled version
is cached by number; which version is active is re-read at most every few seconds, and
at once in the process that publishes a new one.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from approvals.normalize import TOKEN, Folded, fold, token_variants
from servicedesk.ttlcache import TTLValue

# Only texts with a stretched word ("loooan") or digits inside a word ("l0an") need the
# slower per-token variants.
_DIGIT = re.compile(r"\d")
_NEEDS_VARIANTS = re.compile(r"([a-z])\1\1|[a-z][0-9]|[0-9][a-z]")

# Which categories make a text regulated (a lawyer must approve the reply), by whether
# the text is a customer's post or our draft. The others raise priority or advise.
REGULATED_ON: dict[str, frozenset[str]] = {
    "lending": frozenset({"post", "draft"}),
    "fair_lending": frozenset({"post", "draft"}),
    "deposit": frozenset({"draft"}),
    "udaap": frozenset({"draft"}),
    "complaint": frozenset(),
    "fraud": frozenset(),
}

KINDS = ("post", "draft")


class PolicyError(ValueError):
    """A rule that cannot be compiled; the message names the rule and the entry."""


@dataclass(frozen=True, slots=True)
class RuleSpec:
    rule_id: str
    category: str
    kind: str = "terms"
    applies_to: str = "any"
    language: str = "any"
    terms: tuple[str, ...] = ()
    near: tuple[str, ...] = ()
    distance: int = 6
    description: str = ""

    @classmethod
    def from_mapping(cls, data) -> RuleSpec:
        def lines(value) -> tuple[str, ...]:
            if isinstance(value, str):
                value = value.splitlines()
            return tuple(line.strip() for line in value if line and line.strip())

        return cls(
            rule_id=data["rule_id"],
            category=data["category"],
            kind=data.get("kind") or "terms",
            applies_to=data.get("applies_to") or "any",
            language=data.get("language") or "any",
            terms=lines(data.get("terms", "")),
            near=lines(data.get("near", "")),
            distance=int(data.get("distance") or 6),
            description=data.get("description", ""),
        )


@dataclass(frozen=True, slots=True)
class Hit:
    rule_id: str
    category: str
    start: int  # offsets into the folded text
    end: int
    near: tuple[int, int] | None = None


# A phrase word: (text, is_stem). Roles of an entry: what the match means for its rule.
HIT, ANCHOR, NEAR, EXCLUDE = "hit", "anchor", "near", "exclude"


@dataclass(slots=True)
class _Entry:
    words: tuple[tuple[str, bool], ...]
    rule: int
    role: str


class _Tokens:
    """The tokens of a folded text; their offsets are worked out only if something
    matched (most posts match nothing)."""

    __slots__ = ("texts", "_text", "_starts", "_ends")

    def __init__(self, texts: list[str], text: str):
        self.texts = texts
        self._text = text
        self._starts: list[int] | None = None
        self._ends: list[int] = []

    def _spans(self) -> None:
        spans = [m.span() for m in TOKEN.finditer(self._text)]
        self._starts = [a for a, _ in spans]
        self._ends = [b for _, b in spans]

    @property
    def starts(self) -> list[int]:
        if self._starts is None:
            self._spans()
        return self._starts

    @property
    def ends(self) -> list[int]:
        if self._starts is None:
            self._spans()
        return self._ends


@dataclass
class CompiledPolicy:
    label: str
    rules: tuple[RuleSpec, ...]
    not_pii: tuple[str, ...] = ()
    _exact: dict[str, list[_Entry]] = field(default_factory=lambda: defaultdict(list))
    _stems: dict[str, list[_Entry]] = field(default_factory=lambda: defaultdict(list))
    _stem_lengths: list[int] = field(default_factory=list)
    _vocabulary: set[str] = field(default_factory=set)
    # (pattern, a word every match contains or "", rule index, role)
    _regexes: list[tuple[re.Pattern[str], str, int, str]] = field(default_factory=list)
    # Candidate entries per token, filled as tokens are seen (words repeat across posts).
    _candidates: dict[str, tuple[_Entry, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for index, rule in enumerate(self.rules):
            if rule.category not in REGULATED_ON:
                raise PolicyError(f"{rule.rule_id}: unknown category {rule.category!r}")
            if rule.kind == "proximity" and not rule.near:
                raise PolicyError(f"{rule.rule_id}: a proximity rule needs 'near' terms")
            roles = {
                "terms": ((rule.terms, HIT),),
                "pattern": ((rule.terms, HIT),),
                "proximity": ((rule.terms, ANCHOR), (rule.near, NEAR)),
                "exclusion": ((rule.terms, EXCLUDE),),
            }.get(rule.kind)
            if roles is None:
                raise PolicyError(f"{rule.rule_id}: unknown kind {rule.kind!r}")
            for entries, role in roles:
                for entry in entries:
                    if rule.kind == "pattern" or entry.startswith("re:"):
                        source = entry[3:] if entry.startswith("re:") else entry
                        try:
                            compiled = re.compile(source)
                        except re.error as exc:
                            raise PolicyError(
                                f"{rule.rule_id}: the pattern {source!r} is invalid: {exc}"
                            ) from None
                        self._regexes.append((compiled, required_literal(source), index, role))
                    else:
                        self._add_phrase(entry, index, role, rule.rule_id)
        self._stem_lengths = sorted({len(stem) for stem in self._stems})

    def _add_phrase(self, entry: str, rule: int, role: str, rule_id: str) -> None:
        words: list[tuple[str, bool]] = []
        for chunk in entry.split():
            stem = chunk.endswith("*")
            tokens = TOKEN.findall(fold(chunk.rstrip("*")).text)
            for position, token in enumerate(tokens):
                words.append((token, stem and position == len(tokens) - 1))
        if not words:
            raise PolicyError(f"{rule_id}: the entry {entry!r} has no words")
        target = _Entry(tuple(words), rule, role)
        first, is_stem = words[0]
        (self._stems if is_stem else self._exact)[first].append(target)
        for word, word_is_stem in words:
            if not word_is_stem:
                self._vocabulary.add(word)

    # --- matching -------------------------------------------------------------------

    def _known(self, token: str) -> bool:
        if token in self._vocabulary:
            return True
        return any(token[:n] in self._stems for n in self._stem_lengths if n <= len(token))

    def _tokens(self, folded: Folded) -> _Tokens:
        texts = TOKEN.findall(folded.text)
        if _NEEDS_VARIANTS.search(folded.text):
            for index, token in enumerate(texts):
                if self._known(token):
                    continue
                for variant in token_variants(token):
                    if self._known(variant):
                        texts[index] = variant
                        break
        return _Tokens(texts, folded.text)

    @staticmethod
    def _word_ok(token: str, word: str, stem: bool) -> bool:
        return token.startswith(word) if stem else token == word

    def _phrase_matches(self, tokens: _Tokens):
        """(entry, first token, last token) for every phrase that matches."""
        texts = tokens.texts
        count = len(texts)
        memo = self._candidates
        for i, token in enumerate(texts):
            candidates = memo.get(token)
            if candidates is None:
                found = list(self._exact.get(token, ()))
                for n in self._stem_lengths:
                    if n > len(token):
                        break
                    found.extend(self._stems.get(token[:n], ()))
                candidates = tuple(found)
                if len(memo) < 50_000:
                    memo[token] = candidates
            for entry in candidates:
                words = entry.words
                last = i + len(words) - 1
                if last >= count:
                    continue
                if all(
                    self._word_ok(texts[i + k], word, stem)
                    for k, (word, stem) in enumerate(words[1:], start=1)
                ):
                    yield entry, i, last

    def match(self, folded: Folded, kind: str) -> list[Hit]:
        tokens = self._tokens(folded)
        # (rule index, role) -> [(start, end, first token, last token)]
        found: dict[tuple[int, str], list[tuple[int, int, int, int]]] = defaultdict(list)
        for entry, first, last in self._phrase_matches(tokens):
            found[(entry.rule, entry.role)].append(
                (tokens.starts[first], tokens.ends[last], first, last)
            )
        text = folded.text
        has_digit = _DIGIT.search(text) is not None
        for pattern, literal, rule, role in self._regexes:
            if literal and (not has_digit if literal == "\\d" else literal not in text):
                continue
            for match in pattern.finditer(text):
                start, end = match.span()
                if end == start:
                    continue
                first = max(bisect.bisect_right(tokens.starts, start) - 1, 0)
                last = max(bisect.bisect_left(tokens.starts, end) - 1, first)
                found[(rule, role)].append((start, end, first, last))

        excluded: dict[str, list[tuple[int, int]]] = defaultdict(list)
        hits: list[Hit] = []
        for (index, role), spans in found.items():
            rule = self.rules[index]
            if rule.applies_to not in ("any", kind):
                continue
            if role == EXCLUDE:
                excluded[rule.category].extend((start, end) for start, end, _, _ in spans)
            elif role == HIT:
                hits.extend(Hit(rule.rule_id, rule.category, s, e) for s, e, _, _ in spans)
            elif role == ANCHOR:
                near = found.get((index, NEAR), ())
                for start, end, first, last in spans:
                    partner = next(
                        (
                            (ns, ne)
                            for ns, ne, nf, nl in near
                            if (ne <= start or ns >= end)
                            and min(abs(nf - last), abs(first - nl)) <= rule.distance
                        ),
                        None,
                    )
                    if partner is not None:
                        hits.append(Hit(rule.rule_id, rule.category, start, end, partner))

        def kept(hit: Hit) -> bool:
            spans = [(hit.start, hit.end)] + ([hit.near] if hit.near else [])
            return not any(
                s < b and e > a for s, e in spans for a, b in excluded.get(hit.category, ())
            )

        unique = {(hit.rule_id, hit.start, hit.end): hit for hit in hits if kept(hit)}
        return sorted(unique.values(), key=lambda hit: (hit.start, hit.rule_id))


def required_literal(source: str) -> str:
    """The longest run of plain characters every match of the pattern contains (so a
    pattern is tried only on texts that contain it), or "" when there is none."""
    import re._constants as sre_constants
    import re._parser as sre_parser

    try:
        parsed = sre_parser.parse(source)
    except re.error:
        return ""
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return ""
    best, run = "", []
    items = list(parsed)
    for op, value in [*items, (None, None)]:
        if op is sre_constants.LITERAL:
            run.append(chr(value))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
    if len(best) >= 3:
        return best
    return _first_class(items)


def _first_class(items) -> str:
    """For a pattern without a literal word: "\\d" if its first element is a digit, else
    "" (no prefilter)."""
    import re._constants as c

    for op, value in items:
        if op is c.AT:
            continue
        if op in (c.MAX_REPEAT, c.MIN_REPEAT) and value[0] >= 1:
            return _first_class(list(value[2]))
        if op is c.IN and value == [(c.CATEGORY, c.CATEGORY_DIGIT)]:
            return "\\d"
        return ""
    return ""


# --- the active version -----------------------------------------------------------------

_compiled: dict[int, CompiledPolicy] = {}
_compiled_lock = threading.Lock()


def default_policy() -> CompiledPolicy:
    """The seed policy, used when the database holds no active version."""
    global _default
    if _default is None:
        from approvals import policy_seed

        _default = CompiledPolicy(
            label="default-1",
            rules=tuple(RuleSpec.from_mapping(rule) for rule in policy_seed.RULES),
            not_pii=tuple(line for line in policy_seed.NOT_PII.splitlines() if line.strip()),
        )
    return _default


_default: CompiledPolicy | None = None


def compile_version(version) -> CompiledPolicy:
    rules = tuple(
        RuleSpec.from_mapping(
            {
                "rule_id": rule.rule_id,
                "category": rule.category,
                "kind": rule.kind,
                "applies_to": rule.applies_to,
                "language": rule.language,
                "terms": rule.terms,
                "near": rule.near,
                "distance": rule.distance,
                "description": rule.description,
            }
        )
        for rule in version.rules.all()
    )
    return CompiledPolicy(
        label=version.label,
        rules=rules,
        not_pii=tuple(line.strip() for line in version.not_pii.splitlines() if line.strip()),
    )


def _load_active() -> CompiledPolicy:
    from approvals.models import PolicyState, PolicyVersion

    version = PolicyVersion.objects.filter(state=PolicyState.ACTIVE).first()
    if version is None:
        return default_policy()
    with _compiled_lock:
        compiled = _compiled.get(version.number)
    if compiled is None:
        compiled = compile_version(version)
        with _compiled_lock:
            if len(_compiled) > 8:
                _compiled.clear()
            _compiled[version.number] = compiled
    return compiled


_active = TTLValue(_load_active, ttl=5.0)


def active_policy() -> CompiledPolicy:
    return _active.get()


def policy_changed() -> None:
    """Forget which version is active in this process (after publishing one)."""
    _active.clear()
