"""Plain text from the HTML that some platforms deliver (Mastodon's `content`).

`html_to_text` follows how the post reads on screen:
- paragraphs (`<p>`, `<div>`, `<blockquote>`, headings, lists) are separated by a blank
  line, `<br>` is a line break, list items start a new line;
- tags are dropped but their text is kept: a link reads as its text, a mention as
  `@user`, and a Mastodon link split into `invisible` / `ellipsis` spans reads as the
  whole URL again;
- entities are decoded (`&amp;` → `&`, `&#39;` → `'`), runs of spaces collapse as a
  browser would (except inside `<pre>`), and the result is NFC-normalised.
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {
        "p",
        "div",
        "blockquote",
        "pre",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "section",
        "article",
        "header",
        "footer",
        "figure",
    }
)
_LINES = frozenset({"li", "tr", "dt", "dd"})
_SKIPPED = frozenset({"script", "style", "template", "head", "title"})
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_BREAK = "\x00br\x00"  # a hard line break, kept apart from collapsible whitespace
_PARA = "\x00p\x00"  # a paragraph boundary


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIPPED:
            self._skip += 1
        elif tag == "br":
            self.parts.append(_BREAK)
        elif tag in _BLOCKS:
            self.parts.append(_PARA)
            if tag == "pre":
                self._pre += 1
        elif tag in _LINES:
            self.parts.append(_BREAK)

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag == "br":
            self.parts.append(_BREAK)
        elif tag in _BLOCKS:
            self.parts.append(_PARA)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip = max(self._skip - 1, 0)
        elif tag in _BLOCKS:
            self.parts.append(_PARA)
            if tag == "pre":
                self._pre = max(self._pre - 1, 0)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._pre:
            self.parts.append(data.replace("\n", _BREAK))
        else:
            self.parts.append(_SPACES.sub(" ", data))


def html_to_text(html: str) -> str:
    """The text a reader sees in `html` (see the module docstring)."""
    if not html:
        return ""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    joined = "".join(parser.parts)
    # Collapse spaces around boundaries, then turn the boundaries into newlines.
    blocks: list[str] = []
    for block in joined.split(_PARA):
        text = "\n".join(line.strip(" ") for line in block.split(_BREAK)).strip("\n")
        if text.strip():
            blocks.append(text)
    return unicodedata.normalize("NFC", "\n\n".join(blocks))
