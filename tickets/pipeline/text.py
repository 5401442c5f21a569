"""Input processing on plain text: normalise, validate, detect the language and the mood.

Pure functions (no database), shared by the pipeline and by ``evaluate``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field

from tickets.pipeline.html_text import decode_quoted_printable, html_to_text, looks_like_markup
from tickets.pipeline.language import detect_language

# What the model sees of one ticket at most; longer texts are cut (and the cut is recorded).
MAX_MODEL_CHARS = 4000

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


@dataclass(frozen=True)
class PreparedText:
    """A ticket's text as the later stages use it."""

    text: str  # normalised subject + body
    problems: list[str] = field(default_factory=list)  # what was wrong with the input, for the record
    language: str = ""
    negative: bool = False  # very negative mood: a reason to escalate

    @property
    def usable(self) -> bool:
        return bool(self.text.strip())


def normalise(raw: str) -> tuple[str, list[str]]:
    """Plain text from what a customer sent: no markup, no control characters, tidy whitespace."""
    problems: list[str] = []
    if "\ufffd" in raw:
        problems.append("invalid characters were replaced")
    text = decode_quoted_printable(raw)
    if text != raw:
        problems.append("quoted-printable encoding was decoded")
    if looks_like_markup(text):
        # block boundaries become line breaks, so adjacent cells or divs do not glue into one token
        text = html_to_text(text)
        problems.append("markup was removed")
    else:
        text = html.unescape(text)
    text = unicodedata.normalize("NFC", text)
    cleaned = _CONTROL.sub("", text)
    if cleaned != text:
        problems.append("control characters were removed")
    text = cleaned.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip(), problems


def prepare(*, subject: str, body: str) -> PreparedText:
    subject_text, subject_problems = normalise(subject)
    body_text, body_problems = normalise(body)
    problems = list(dict.fromkeys(subject_problems + body_problems))
    if not body_text:
        problems.append("the description is empty once markup and control characters are removed")
    text = f"{subject_text}\n\n{body_text}".strip()
    if len(text) > MAX_MODEL_CHARS:
        problems.append(f"the text was cut to {MAX_MODEL_CHARS} characters for the model")
        text = text[:MAX_MODEL_CHARS]
    return PreparedText(
        text=text if body_text else "",
        problems=problems,
        language=detect_language(text),
        negative=is_very_negative(text),
    )


# --- mood: very negative tickets are escalated ----------------------------------------------------

_NEGATIVE = re.compile(
    r"\b(furious|outraged|unacceptable|disgusted|disgraceful|appalling|worst|ridiculous|lawyer|lawsuit|"
    r"sue you|cancel my (account|subscription|contract)|scam|fraud|angry|livid|"
    r"inakzeptabel|unverschämt|frechheit|anwalt|kündigen|wütend|"
    r"inaceptable|vergüenza|abogado|denuncia|furioso|estafa)\b",
    re.IGNORECASE,
)


def is_very_negative(text: str) -> bool:
    """Strong anger or a legal threat: two signals, or one with shouting."""
    hits = len(_NEGATIVE.findall(text))
    letters = [c for c in text if c.isalpha()]
    shouting = len(letters) > 20 and sum(c.isupper() for c in letters) / len(letters) > 0.6
    exclaiming = text.count("!") >= 3
    return hits >= 2 or (hits >= 1 and (shouting or exclaiming))
