"""Personal data in a post or a draft: what it is, where it is, and how to mask it.

Detectors run on the folded text (approvals.normalize), so fullwidth digits and
hidden characters do not hide a number. Spelled-out digits ("four five four nine…")
are read as digits. The bank's own published numbers and addresses (the policy's
`not_pii` list) are never reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from approvals.normalize import Folded


@dataclass(frozen=True, slots=True)
class PiiFinding:
    kind: str
    masked: str
    start: int  # offsets into the original text
    end: int


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def aba_ok(digits: str) -> bool:
    """An ABA routing number: a valid Federal Reserve prefix and the 3-7-1 checksum."""
    if len(digits) != 9 or not digits.isdigit():
        return False
    prefix = int(digits[:2])
    if not (prefix <= 12 or 21 <= prefix <= 32 or 61 <= prefix <= 72 or prefix == 80):
        return False
    d = [int(c) for c in digits]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 == 0


def ssn_ok(digits: str) -> bool:
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return (
        len(digits) == 9
        and area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )


_SEP = r"[ \-.]?"
# Runs of digits with single separators: cards, phones, account numbers.
_DIGIT_RUN = re.compile(r"(?<![\w.,$])\d(?:(?:\s?[\-.]\s?|\s)?\d){6,22}(?![\w$%]|[.,]\d)")
_SSN = re.compile(r"(?<![\d\w])(\d{3})[- ](\d{2})[- ](\d{4})(?![\d\w])")
_SSN_CONTEXT = re.compile(r"\b(?:ssn|ss#|ss #|social security|social|seguro social|ssa)\b")
_ACCOUNT_CONTEXT = re.compile(
    r"\b(?:account|acct|acc|a/c|checking|savings|loan|member|cuenta|routing|aba|rtn|"
    r"card number|card no)\b(?:\s?(?:number|no\.?|num|#|numero|is|ending in|:))*\s?[:#]?\s?$"
)
_PHONE = re.compile(
    r"(?<![\w$])(?:\+?1[ .\-]?)?\(?([2-9]\d{2})\)?[ .\-]?(\d{3})[ .\-]?(\d{4})(?![\w%])"
)
_EMAIL = re.compile(r"(?<![\w.+-])[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}")
_EMAIL_SPOKEN = re.compile(
    r"(?<![\w.])[a-z0-9][a-z0-9._+-]*\s?(?:\(at\)|\[at\]|\{at\}| at |arroba)\s?"
    r"[a-z0-9-]+\s?(?:\.|\(dot\)|\[dot\]|\{dot\}| dot | punto )\s?"
    r"(?:com|net|org|edu|gov|io|co|us|mx|es|me|info|biz)\b"
)
# A number introduced as a reference is not a person's identifier.
_REFERENCE_CONTEXT = re.compile(
    r"\b(?:order|ticket|case|confirmation|tracking|transaction|reference|ref|invoice|claim|"
    r"id|receipt|pedido|folio|confirmacion)\b[\s#:no.-]*(?:\w+[\s#:-]*){0,2}$"
)
# A street address is personal only when it is someone's own.
_OWN_ADDRESS = re.compile(
    r"\b(?:my address|i live at|i live on|we live at|live at|send it to|mail it to|my house is|"
    r"my home is|vivo en|mi direccion|mi domicilio)\b"
)
_STREET = re.compile(
    r"\b\d{1,6}\s(?:[a-z]+\s){1,3}(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|"
    r"drive|dr|court|ct|way|place|pl|terrace|calle|avenida)\b\.?"
)

_NUMBER_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "cero": "0",
    "uno": "1",
    "dos": "2",
    "tres": "3",
    "cuatro": "4",
    "cinco": "5",
    "seis": "6",
    "siete": "7",
    "ocho": "8",
    "nueve": "9",
}
_NUMBER_WORD_SET = frozenset(_NUMBER_WORDS)
_NOT_DIGIT = re.compile(r"\D+")
_SPOKEN_AT = re.compile(r"\s?(?:\(at\)|\[at\]|\{at\}| at |arroba)\s?")
_SPOKEN_DOT = re.compile(r"\s?(?:\(dot\)|\[dot\]|\{dot\}| dot | punto )\s?")
_WORD_DIGITS = re.compile(
    r"\b(?:(?:"
    + "|".join(_NUMBER_WORDS)
    + r"|\d)[\s,\-]+){6,}(?:"
    + "|".join(_NUMBER_WORDS)
    + r")\b"
)


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def mask_value(kind: str, value: str) -> str:
    if kind == "email":
        local, _, domain = value.replace(" ", "").partition("@")
        return (local[:1] + "•••@" + domain) if domain else "•••"
    if kind == "street_address":
        return "•••"
    digits = _digits(value)
    return "•" * max(len(digits) - 4, 0) + digits[-4:]


class PiiScanner:
    """The detectors with one policy's list of the bank's own (not personal) data."""

    def __init__(self, not_pii: tuple[str, ...]):
        self.own_numbers = {_digits(line)[-10:] for line in not_pii if len(_digits(line)) >= 7}
        self.own_emails = {line.lower() for line in not_pii if "@" in line and line[0] != "@"}
        self.own_domains = {line.lower()[1:] for line in not_pii if line.startswith("@")}
        own_text = [line.lower() for line in not_pii if not _digits(line) or " " in line]
        self.own_text = (
            re.compile("|".join(re.escape(line) for line in own_text)) if own_text else None
        )

    def _own_number(self, digits: str) -> bool:
        return len(digits) >= 10 and digits[-10:] in self.own_numbers

    def _own_email(self, address: str) -> bool:
        address = address.lower()
        return address in self.own_emails or address.rpartition("@")[2] in self.own_domains

    def scan(self, folded: Folded, original: str) -> list[PiiFinding]:
        text = folded.text
        findings: list[PiiFinding] = []
        taken: list[tuple[int, int]] = []

        def free(start: int, end: int) -> bool:
            return all(end <= a or start >= b for a, b in taken)

        def add(kind: str, start: int, end: int, value: str | None = None) -> None:
            a, b = folded.span(start, end)
            findings.append(PiiFinding(kind, mask_value(kind, value or text[start:end]), a, b))
            taken.append((start, end))

        def context_before(start: int, pattern: re.Pattern[str], width: int = 40) -> bool:
            return bool(pattern.search(text[max(0, start - width) : start]))

        # Bank's own text first: spans inside it are never personal data.
        if self.own_text is not None:
            taken.extend(match.span() for match in self.own_text.finditer(text))

        digit_count = len(_NOT_DIGIT.sub("", text))
        split = text.split()
        words = set(split)
        has_digits = digit_count >= 7
        for match in _SSN.finditer(text) if has_digits else ():
            digits = "".join(match.groups())
            if ssn_ok(digits) and free(*match.span()):
                add("ssn", *match.span())
        for match in _EMAIL.finditer(text) if "@" in text else ():
            if not self._own_email(match.group()) and free(*match.span()):
                add("email", *match.span())
        spoken_email = "at" in words or "arroba" in words or "(at)" in text or "[at]" in text
        for match in _EMAIL_SPOKEN.finditer(text) if spoken_email else ():
            if free(*match.span()):
                spoken = _SPOKEN_DOT.sub(".", _SPOKEN_AT.sub("@", match.group()))
                if not self._own_email(spoken):
                    add("email", *match.span(), spoken)
        for match in _DIGIT_RUN.finditer(text) if has_digits else ():
            start, end = match.span()
            if free(start, end):
                self._classify_digits(text, start, end, _digits(match.group()), add, context_before)
        for match in _PHONE.finditer(text) if has_digits else ():
            digits = "".join(match.groups())
            if free(*match.span()) and not self._own_number(digits):
                add("phone", *match.span())
        spelled = sum(word.strip(",.-") in _NUMBER_WORD_SET for word in split) >= 6
        for match in _WORD_DIGITS.finditer(text) if spelled else ():
            if not free(*match.span()):
                continue
            words = re.findall(r"[a-z]+|\d", match.group())
            digits = "".join(_NUMBER_WORDS.get(word, word) for word in words)
            self._classify_digits(
                text, *match.span(), digits, add, context_before, spelled=match.group()
            )
        own_address = digit_count and _OWN_ADDRESS.search(text)
        for match in _STREET.finditer(text) if own_address else ():
            if free(*match.span()):
                add("street_address", *match.span())
        return sorted(findings, key=lambda finding: finding.start)

    def _classify_digits(self, text, start, end, digits, add, context_before, spelled=None):
        kind = None
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            kind = "card_number"
        elif context_before(start, _REFERENCE_CONTEXT, 30):
            return
        elif len(digits) == 9 and context_before(start, _SSN_CONTEXT) and ssn_ok(digits):
            kind = "ssn"
        elif len(digits) == 9 and aba_ok(digits):
            kind = "routing_number"
        elif 6 <= len(digits) <= 17 and context_before(start, _ACCOUNT_CONTEXT, 30):
            kind = "account_number"
        elif len(digits) in (10, 11) and (len(digits) == 10 or digits[0] == "1"):
            if self._own_number(digits) or digits[-10] in "01":
                return
            kind = "phone"
        elif 12 <= len(digits) <= 19:
            # A long run that fails the card check still looks like someone's number.
            kind = "long_number"
        if kind:
            add(kind, start, end, digits if spelled else None)


def mask_text(text: str, findings) -> str:
    """The text with every finding replaced by its masked form (lists, wall, exports)."""
    out, position = [], 0
    for finding in sorted(findings, key=lambda f: _get(f, "start")):
        start, end = _get(finding, "start"), _get(finding, "end")
        if start < position:
            continue
        out.append(text[position:start])
        out.append(f"[{_get(finding, 'masked')}]")
        position = end
    out.append(text[position:])
    return "".join(out)


def _get(finding, name):
    return finding[name] if isinstance(finding, dict) else getattr(finding, name)
