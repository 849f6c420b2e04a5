"""The API's JSON parser: DRF's, refusing bodies that parse but cannot be stored or used."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Deeper than any platform payload; deep enough nesting crashes json.dumps further on.
MAX_JSON_DEPTH = 64


def _check_tree(data: Any) -> None:
    """Walk the parsed body without recursion: bounded depth, no lone surrogates.

    A lone surrogate (`"\\ud83d"`) is valid JSON but not encodable as UTF-8, so no
    database, hash or renderer can take it.
    """
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ParseError(
                    "JSON parse error - a string holds a lone surrogate (not valid Unicode)."
                ) from None
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        _check_tree(data)
        return data
