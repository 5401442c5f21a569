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

import quopri
import re
from functools import lru_cache
from typing import Any

# A tag, end tag, comment or doctype: text with only "a < b" or "x > 3" in it is not markup.
_MARKUP = re.compile(
    r"<(?:[a-z][a-z0-9:-]*(?:\s[^<>]*)?/?|/[a-z][a-z0-9:-]*\s*|!--.*?--|![a-z][^<>]*)>", re.I | re.S
)
# Block and cell tags get a space before them, and an end tag directly followed by a start tag gets one
# after it: a table cell or a <div> outside the structure inscriptis expects would otherwise still glue,
# and so would adjacent <span>s (which a browser renders glued, but which redaction must see apart).
_BLOCK_TAG = re.compile(
    r"(?=<(?:/?(?:td|th|tr|table|thead|tbody|tfoot|caption|div|p|li|ul|ol|dl|dt|dd|br|hr|h[1-6]|"
    r"blockquote|pre|section|article|header|footer|address|center|form|fieldset|legend)\b))",
    re.I,
)
_TAG_AFTER_END_TAG = re.compile(r"(</[a-z][a-z0-9:-]*\s*>)(?=<[a-z])", re.I)
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)

_QP_SOFT_BREAK = re.compile(r"=\r?\n")
_QP_ESCAPE = re.compile(r"=[0-9A-F]{2}")
# Escapes only a quoted-printable encoder writes: a space, "=", and the lead byte of a UTF-8 sequence.
_QP_TELLTALE = re.compile(r"=(?:20|3D|09|C[2-9A-F]|[DE][0-9A-F]|F[0-4])")


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

    # inscriptis drops these too; removed first so that an unclosed one cannot hide the rest of the text
    # from the parser, nor a comment's content reach it.
    markup = _COMMENT.sub(" ", _SCRIPT_OR_STYLE.sub(" ", markup))
    markup = _TAG_AFTER_END_TAG.sub(r"\1 ", _BLOCK_TAG.sub(" ", markup))
    try:
        text: str = get_text(markup, _parser_config())
    except (ValueError, TypeError):  # lxml refuses some inputs; the spaces added above keep blocks apart
        import html

        from django.utils.html import strip_tags

        text = html.unescape(strip_tags(markup))
    return text
