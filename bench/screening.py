"""`make bench`: screening one 280-character post against a policy of 2,000 terms and
patterns, beside a plain `re.search` of one word on the same posts, in the same run.

The policy is the seed policy plus generated rules: 1,800 terms (words, phrases and
`*` stems) and 200 patterns (each with a literal, like real ones: a product code, an
amount with a word). Posts are 280 characters of realistic text: about a third about
lending, some with PII, all different. Each round screens every post once with
`screen()` (the engine the app uses, policy compiled once and cached) and runs
`re.search` for one word on every post; the figures are medians per post over rounds.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")
os.environ.setdefault("DEBUG", "1")

GOAL_US = 200.0
TERMS = 1800
PATTERNS = 200

_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "te",
    "vo",
    "zi",
    "pa",
    "qu",
    "ber",
    "dan",
    "fel",
    "gor",
    "hul",
    "jin",
    "kor",
    "lum",
    "mor",
    "nix",
]
_WORDS = [
    "hi",
    "the",
    "my",
    "a",
    "to",
    "and",
    "for",
    "is",
    "on",
    "in",
    "it",
    "this",
    "that",
    "with",
    "you",
    "your",
    "we",
    "our",
    "can",
    "account",
    "app",
    "card",
    "bank",
    "help",
    "please",
    "thanks",
    "waiting",
    "since",
    "yesterday",
    "branch",
    "online",
    "transfer",
    "payment",
    "still",
    "nobody",
    "called",
    "twice",
    "today",
    "week",
    "month",
    "why",
    "how",
    "when",
    "what",
    "fee",
    "limit",
    "deposit",
    "checking",
    "savings",
    "mobile",
    "login",
    "password",
    "code",
    "error",
    "again",
    "really",
    "great",
    "service",
    "team",
]
_LENDING = [
    "what is the rate on a 30 yr fixed mortgage",
    "can I refi my car loan",
    "got denied for the card again",
    "how much house can I afford",
    "heloc or cash out refi?",
    "¿cuál es la tasa del préstamo hipotecario?",
]
_PII = ["my card is 4539 1488 0343 6467", "email me jdoe at gmail dot com", "ssn 123-45-6789"]


def _pseudo_word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))


def build_policy(rng: random.Random):
    from approvals import policy_seed
    from approvals.policy import CompiledPolicy, RuleSpec

    rules = [RuleSpec.from_mapping(rule) for rule in policy_seed.RULES]
    seed_entries = sum(len(r.terms) + len(r.near) for r in rules)
    terms_left, patterns_left = TERMS - seed_entries, PATTERNS
    index = 0
    while terms_left > 0:
        terms = []
        for _ in range(min(100, terms_left)):
            shape = rng.random()
            if shape < 0.6:
                terms.append(_pseudo_word(rng))
            elif shape < 0.85:
                terms.append(f"{_pseudo_word(rng)} {rng.choice(['loan', 'card', 'plan', 'rate'])}")
            else:
                terms.append(_pseudo_word(rng) + "*")
        terms_left -= len(terms)
        rules.append(
            RuleSpec(rule_id=f"bench.terms.{index}", category="lending", terms=tuple(terms))
        )
        index += 1
    while patterns_left > 0:
        patterns = [
            rng.choice(
                [
                    rf"\b{_pseudo_word(rng)}\s?\d{{2,4}}\b",
                    rf"\bplan {_pseudo_word(rng)}\b",
                    rf"[$]\d+ {_pseudo_word(rng)}\b",
                ]
            )
            for _ in range(min(50, patterns_left))
        ]
        patterns_left -= len(patterns)
        rules.append(
            RuleSpec(
                rule_id=f"bench.patterns.{index}",
                category="lending",
                kind="pattern",
                terms=tuple(patterns),
            )
        )
        index += 1
    policy = CompiledPolicy(label="bench", rules=tuple(rules), not_pii=())
    entries = sum(len(r.terms) + len(r.near) for r in rules)
    return policy, entries


def build_posts(rng: random.Random, count: int) -> list[str]:
    posts = []
    for n in range(count):
        parts = ["@NorthwindBank"]
        if n % 3 == 0:
            parts.append(rng.choice(_LENDING))
        if n % 11 == 0:
            parts.append(rng.choice(_PII))
        while sum(len(p) + 1 for p in parts) < 280:
            parts.append(rng.choice(_WORDS))
        posts.append(" ".join(parts)[:280])
    return posts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    import re

    import django

    django.setup()
    from approvals.screening import screen

    rng = random.Random(20261122)
    started = time.perf_counter()
    policy, entries = build_policy(rng)
    compile_ms = (time.perf_counter() - started) * 1000
    posts = build_posts(rng, args.posts)
    word = re.compile(r"\bmortgage\b")
    for post in posts[:200]:  # warm caches the way a running process has them
        screen(post, policy=policy)

    screen_us, search_us = [], []
    flagged = 0
    for round_number in range(args.rounds):
        order = posts[:] if round_number % 2 == 0 else posts[::-1]
        started = time.perf_counter()
        for post in order:
            flagged += screen(post, policy=policy).regulated
        screen_us.append((time.perf_counter() - started) / len(order) * 1e6)
        started = time.perf_counter()
        for post in order:
            word.search(post)
        search_us.append((time.perf_counter() - started) / len(order) * 1e6)
        print(
            f"round {round_number + 1}: screen {screen_us[-1]:7.1f} µs/post   "
            f"re.search {search_us[-1]:6.2f} µs/post"
        )

    median_screen = statistics.median(screen_us)
    median_search = statistics.median(search_us)
    print(
        f"policy: {entries} terms and patterns in {len(policy.rules)} rules, "
        f"compiled in {compile_ms:.0f} ms; {len(posts)} posts of 280 characters, "
        f"{flagged // args.rounds} regulated"
    )
    print(f"screen() median: {median_screen:.1f} µs per post (goal <= {GOAL_US:.0f} µs)")
    print(f"re.search of one word median: {median_search:.2f} µs per post")
    print(f"ratio screen / re.search: {median_screen / median_search:.0f}x")
    verdict = "MEETS GOAL" if median_screen <= GOAL_US else "ABOVE GOAL"
    print(f"verdict: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
