"""Is a drafted reply grounded? Every fact-like token it carries must come from its sources.

A drafted reply may rephrase, but it must not invent: every number and identifier in it (order numbers,
amounts, dates, codes, URLs, e-mail addresses, anything with a digit in it) has to appear in the
(redacted) ticket or in the answers of the past tickets it cites, and it may cite only tickets that
retrieval returned (also where it names one in the text: "ticket 123"). A reply that fails is not
shown; the caller falls back to the chosen stored answer and records the problems listed here.

Plain text in, plain data out; no Django.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]{1,15}://|\bwww\.)[^\s<>\"'`)\]]+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
# A token with at least one digit, with the separators identifiers and amounts use inside them (a
# letter prefix such as "RF-" or "INV/" belongs to it).
_WITH_DIGIT = re.compile(r"(?:[^\W_]+[-/#.])*[^\W_]*\d[\w\-./:,'#]*", re.UNICODE)
_LIST_MARKER = re.compile(r"(?m)^[ \t]*\d{1,2}[.)][ \t]")
_TRAILING = ".,:;'-/"
# "ticket 123", "case #123", "Ticket Nr. 123": a reference to a past ticket, which must be a cited one.
_TICKET_REFERENCE = re.compile(
    r"\b(?:ticket|case|anfrage|fall)\s*(?:#|no\.?|nr\.?|number|nummer)?\s*#?(\d+)", re.IGNORECASE
)


@dataclass(frozen=True)
class GroundingResult:
    ok: bool
    problems: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return "; ".join(self.problems)


def _clean(token: str) -> str:
    return token.rstrip(_TRAILING).lower()


def identifiers(text: str) -> list[str]:
    """The URLs, e-mail addresses and tokens with a digit in ``text`` (list markers such as "1." at the
    start of a line are layout, not facts), lower-cased, in order of appearance."""
    text = _LIST_MARKER.sub(" ", text)
    found: list[str] = []
    for pattern in (_URL, _EMAIL):
        for match in pattern.finditer(text):
            found.append(_clean(match.group()))
        text = pattern.sub(" ", text)
    found.extend(_clean(m.group()) for m in _WITH_DIGIT.finditer(text))
    return [token for token in dict.fromkeys(found) if token]


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def check_grounding(
    *,
    draft: str,
    ticket: str,
    cited_answers: Sequence[str],
    cited_ids: Iterable[int],
    retrieved_ids: Iterable[int],
) -> GroundingResult:
    """Whether ``draft`` may be shown: it cites only retrieved tickets, and each of its identifiers
    appears in the ticket or in a cited answer."""
    problems: list[str] = []
    retrieved = set(retrieved_ids)
    cited = set(cited_ids)
    unknown = sorted(cited - retrieved)
    if unknown:
        problems.append(f"cites tickets that were not retrieved: {unknown}")
    referenced = sorted({int(m.group(1)) for m in _TICKET_REFERENCE.finditer(draft)} - cited)
    if referenced:
        problems.append(f"refers to tickets it does not cite: {referenced}")
    sources = _normalised("\n".join([ticket, *cited_answers]))
    source_tokens = set(identifiers(sources))
    invented = [token for token in identifiers(draft) if token not in source_tokens and token not in sources]
    if invented:
        shown = ", ".join(repr(token) for token in invented[:5])
        problems.append(f"carries identifiers found in neither the ticket nor the cited answers: {shown}")
    if not draft.strip():
        problems.append("empty reply")
    return GroundingResult(ok=not problems, problems=tuple(problems))
