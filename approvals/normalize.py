"""Text as the screening engine reads it, with a map back to what was written.

Customers and agents write "MORTGAGE", "mortgage", "ｍｏｒｔｇａｇｅ", "mort\u200bgage",
"mоrtgage" (a Cyrillic о) and "hipoteca" with or without accents. The engine matches on
one folded form; every match is reported as a span of the original text so the UI can
highlight exactly what the person wrote.

Folding, per character: invisible characters (zero-width, bidi controls, soft hyphen,
variation selectors) dropped; Unicode NFKC (fullwidth digits and letters, ligatures);
case folded; accents stripped; homoglyphs from Cyrillic and Greek mapped to the Latin
letters they imitate. `offsets[i]` is the index in the original text of folded
character `i`; `offsets[len(folded)]` is the original length.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufe00-\ufe0f\ufeff\U000e0000-\U000e0fff]"
)

# Letters from other scripts that render like Latin ones (the Unicode confusables most
# used to dodge filters).
_HOMOGLYPHS = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ԛ": "q",
        "ԝ": "w",
        "ɡ": "g",
        # Greek
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ω": "w",
        "ς": "s",
        # Latin look-alikes outside ASCII
        "ı": "i",
        "ȷ": "j",
        "ℓ": "l",
    }
)


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    if _INVISIBLE.match(char):
        return ""
    folded = unicodedata.normalize("NFKC", char).casefold()
    decomposed = unicodedata.normalize("NFD", folded)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.translate(_HOMOGLYPHS)


@dataclass(frozen=True, slots=True)
class Folded:
    text: str
    offsets: list[int]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """A span of the folded text as a span of the original text."""
        if end <= start:
            return self.offsets[start], self.offsets[start]
        return self.offsets[start], self.offsets[end - 1] + 1


def fold(text: str) -> Folded:
    if text.isascii():
        return Folded(text.lower(), list(range(len(text) + 1)))
    chars: list[str] = []
    offsets: list[int] = []
    for index, char in enumerate(text):
        if char.isascii():
            chars.append(char.lower())
            offsets.append(index)
            continue
        for out in _fold_char(char):
            chars.append(out)
            offsets.append(index)
    offsets.append(len(text))
    return Folded("".join(chars), offsets)


# A token is a run of letters and digits, or one of the symbols rules may name.
TOKEN = re.compile(r"[^\W_]+|[%$€£#@&+]")

# Digits and symbols used as letters ("l0an", "m0rtg@ge").
_LEET = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a"})
_REPEATS = re.compile(r"([a-z])\1{2,}")


def token_variants(token: str) -> tuple[str, ...]:
    """Other readings of a token that is not in the policy's vocabulary: leetspeak
    folded, and letters stretched for emphasis ("loooan") collapsed."""
    variants: list[str] = []
    if not token.isdigit() and any(c.isdigit() for c in token) and any(c.isalpha() for c in token):
        variants.append(token.translate(_LEET))
    if _REPEATS.search(token):
        variants.append(_REPEATS.sub(r"\1", token))
        variants.append(_REPEATS.sub(r"\1\1", token))
    return tuple(variants)
