"""Plain text from e-mail bodies: quoted-printable leftovers decoded, HTML flattened with block boundaries.

Helpdesks forward e-mail bodies as HTML, sometimes still quoted-printable encoded. Tag stripping glues
adjacent blocks (``<td>Card</td><td>4111 ...</td>`` became ``Card4111 ...``) and a soft line break
(``=\\n``) splits a number in two; either way the redaction that follows misses personal data. So:

- :func:`decode_quoted_printable` decodes a text that carries quoted-printable escapes (soft line
  breaks, ``=20``, ``=3D``, ``=C3=A9``), so that split numbers are whole again;
- :func:`html_to_text` renders markup with inscriptis, which keeps block boundaries (table cells,
  list items, divs, paragraphs, ``<br>``) as line breaks or spaces, decodes entities and drops
  ``<script>``, ``<style>`` and comments.

``inscriptis`` (and lxml under it) is imported on first use.
"""

from __future__ import annotations

import html
import quopri
import re
from functools import lru_cache
from typing import Any

# A tag, end tag, comment or doctype: text with only "a < b" or "x > 3" in it is not markup.
_MARKUP = re.compile(
    r"<!--|<(?:[a-z][a-z0-9:-]*(?:\s[^<>]*)?/?|/[a-z][a-z0-9:-]*\s*|![a-z][^<>]*)>", re.IGNORECASE
)
# Block and cell tags get a space before them, and an end tag directly followed by a start tag gets one
# after it: a table cell or a <div> outside the structure inscriptis expects would otherwise still glue,
# and so would adjacent <span>s (which a browser renders glued, but which redaction must see apart).
_BLOCK_TAG = re.compile(
    r"(?=<(?:/?(?:td|th|tr|table|thead|tbody|tfoot|caption|div|p|li|ul|ol|dl|dt|dd|br|hr|h[1-6]|"
    r"blockquote|pre|section|article|header|footer|address|center|form|fieldset|legend|"
    r"select|option|textarea|noscript|label|button|img|body)\b))",
    re.I,
)
_ANY_TAG = re.compile(r"<[^<>]*>")
# More letters and digits than this missing from the parser's text, compared with every tag removed,
# and the crude text is used: lxml gives up past its nesting limit, and content hidden with CSS is
# dropped (it may carry personal data too, which redaction should see rather than guess at).
_LOST_ALNUM = 12
_TAG_AFTER_END_TAG = re.compile(r"(</[a-z][a-z0-9:-]*\s*>)(?=<[a-z])", re.I)
_HIDDEN_START = re.compile(r"<(script|style|title)\b|<!--", re.IGNORECASE)
_HIDDEN_END = {
    "script": re.compile(r"</script\s*>", re.IGNORECASE),
    "style": re.compile(r"</style\s*>", re.IGNORECASE),
    "title": re.compile(r"</title\s*>", re.IGNORECASE),
    "": re.compile(r"-->"),
}

_QP_SOFT_BREAK = re.compile(r"=\r?\n")
_QP_ESCAPE = re.compile(r"=[0-9A-F]{2}")
# Escapes only a quoted-printable encoder writes: a space, "=", and the lead byte of a UTF-8 sequence.
_QP_TELLTALE = re.compile(r"=(?:20|3D|09|C[2-9A-F]|[DE][0-9A-F]|F[0-4])")


def _drop_hidden(markup: str) -> str:
    """``markup`` without scripts, styles, titles and comments; an unclosed one hides the rest. Linear."""
    parts: list[str] = []
    position = 0
    while start := _HIDDEN_START.search(markup, position):
        parts.append(markup[position : start.start()])
        end = _HIDDEN_END[(start.group(1) or "").lower()].search(markup, start.end())
        if end is None:
            position = len(markup)
            break
        parts.append(" ")
        position = end.end()
    parts.append(markup[position:])
    return "".join(parts)


def looks_like_markup(text: str) -> bool:
    return _MARKUP.search(text) is not None


def looks_quoted_printable(text: str) -> bool:
    """Soft line breaks, or at least two escapes of which one only an encoder would write."""
    if _QP_SOFT_BREAK.search(text):
        return True
    escapes = _QP_ESCAPE.findall(text)
    return len(escapes) >= 2 and any(_QP_TELLTALE.fullmatch(escape) for escape in escapes)


def decode_quoted_printable(text: str) -> str:
    """``text`` with quoted-printable escapes decoded (UTF-8, else Windows-1252); as is when it has none."""
    if not looks_quoted_printable(text):
        return text
    raw = quopri.decodestring(text.encode("utf-8"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


@lru_cache(maxsize=1)
def _parser_config() -> Any:
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.model.config import ParserConfig

    # "strict": block elements on lines of their own, table cells apart, no added indentation tricks
    return ParserConfig(css=CSS_PROFILES["strict"], display_links=False, display_images=False)


def html_to_text(markup: str) -> str:
    """The text of an HTML fragment or document, block boundaries kept as line breaks (or cell gaps)."""
    from inscriptis import get_text

    # inscriptis drops these too; removed first, in linear time, so that no comment's content reaches it
    markup = _drop_hidden(markup)
    markup = _TAG_AFTER_END_TAG.sub(r"\1 ", _BLOCK_TAG.sub(" ", markup))
    # Every tag a space: cruder (inline tags split words), the fallback where the parser loses text.
    plain = html.unescape(_ANY_TAG.sub(" ", markup))
    try:
        text: str = get_text(markup, _parser_config())
    except (ValueError, TypeError):  # lxml refuses some inputs
        return plain
    if _alnum(plain) - _alnum(text) > _LOST_ALNUM:
        return plain
    return text


def _alnum(text: str) -> int:
    return sum(char.isalnum() for char in text)
