"""Phone numbers and national identifiers found by maintained libraries, for :mod:`.redaction`.

- Phone numbers: ``phonenumbers`` (Google's libphonenumber metadata) finds numbers that are valid for
  one of :data:`PHONE_REGIONS` (or for their own country when written with ``+`` or ``00``). A match is
  kept only where it reads as a phone number: international, after a phone label, with a trunk
  prefix or parentheses, or grouped with separators; never after an order/ticket label, and never a
  bare run of digits (timestamps, order numbers).
- National identifiers: ``python-stdnum`` validates candidates that have the shape of a Spanish
  DNI/NIE, a French NIR (social security number) or an Italian codice fiscale, which carry check
  characters strong enough to stand alone; a German tax ID (Steuer-ID) or a Dutch BSN, whose
  checksums are weaker, only after their label.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import phonenumbers
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn

# Numbers without a country code are read as numbers of these countries: the languages the
# tickets come in (see tickets.pipeline.language.detect_language), and the UK and US.
PHONE_REGIONS = ("DE", "US", "GB", "FR", "ES", "IT", "NL", "AT", "CH", "BE", "PT", "IE")

# The matcher runs only on windows of digits and separators that could hold a phone number (it is slow
# on long digit-dense texts, and it is run once per region), and on MAX_PHONE_WINDOWS of them at most:
# the pattern pass in .redaction still sees the rest.
# Separators as people (and word processors) write them: spaces of any width, hyphens and dashes,
# dots, slashes, parentheses. Digits may be full-width (``\d`` matches them; so does phonenumbers).
_SEP = r"[ \t\u00a0\u2000-\u200a\u202f\u2010-\u2015\u2212\uff0d().\-/]"
_WINDOW = re.compile(rf"(?:[+\uff0b]{_SEP}?|(?<![\w.,]))[\d(](?:\d|{_SEP}){{5,24}}\d")
# phonenumbers knows the no-break space but not the thin or narrow ones: one space for another
_ODD_SPACES = str.maketrans(dict.fromkeys([0x00A0, *range(0x2000, 0x200B), 0x202F], " "))
_DIGITS_IN_WINDOW = 7
MAX_PHONE_WINDOWS = 32
_SEPARATED = re.compile(rf"\d{_SEP}+\d")


@dataclass(frozen=True)
class PhoneCandidate:
    start: int
    end: int
    raw: str


WindowFilter = Callable[[int, str], bool]
"""Whether a window (its offset and text) could hold a number worth reporting: one that says no spares
the matcher (12 regions) a window all of whose numbers the caller would drop anyway."""


def phone_candidates(
    text: str, regions: tuple[str, ...] = PHONE_REGIONS, *, worth_matching: WindowFilter | None = None
) -> list[PhoneCandidate]:
    """Numbers that ``phonenumbers`` finds valid in ``text``, longest first where they overlap; only in
    the windows ``worth_matching`` keeps (windows never overlap, so skipping one changes nothing else)."""
    found: dict[tuple[int, int], PhoneCandidate] = {}
    windows = (w for w in _WINDOW.finditer(text) if sum(c.isdigit() for c in w.group(0)) >= _DIGITS_IN_WINDOW)
    # The cap counts the windows skipped too: which windows are matched does not depend on the filter.
    for window in itertools.islice(windows, MAX_PHONE_WINDOWS):
        offset = window.start()
        if worth_matching is not None and not worth_matching(offset, window.group(0)):
            continue
        window_text = window.group(0).translate(_ODD_SPACES)  # one character for one: offsets hold
        for region in regions:
            matcher = phonenumbers.PhoneNumberMatcher(
                window_text, region, leniency=phonenumbers.Leniency.VALID, max_tries=8
            )
            for match in matcher:
                start, end = offset + match.start, offset + match.end
                found[(start, end)] = PhoneCandidate(start, end, match.raw_string)
    chosen: list[PhoneCandidate] = []
    for candidate in sorted(found.values(), key=lambda c: (c.start, -(c.end - c.start))):
        if not chosen or candidate.start >= chosen[-1].end:
            chosen.append(candidate)
    return chosen


_SEPARATOR_GROUPS = re.compile(rf"\d(?={_SEP}+\d)")


def could_read_as_phone(window: str) -> bool:
    """Whether some part of an unlabelled ``window`` could pass :func:`reads_as_phone`: a superset of its
    conditions on the window (a part has no more digits, separator groups, zeros or signs than it)."""
    if "+" in window or "\uff0b" in window or "00" in window:
        return True
    if sum(char.isdigit() for char in window) < 9:
        return False
    return "0" in window or "(" in window or len(_SEPARATOR_GROUPS.findall(window)) >= 2


def reads_as_phone(raw: str, *, labelled: bool) -> bool:
    """Whether a valid number also looks like a phone number written by a person."""
    if raw.startswith(("+", "\uff0b", "00")) or labelled:
        return True
    digits = sum(char.isdigit() for char in raw)
    if raw.startswith(("0", "(")):
        return digits >= 9  # a national trunk prefix or an area code in parentheses: 030 1234567
    # 612 345 678, 415-555-2671: three groups or more; a bare run of digits, or two groups
    # ("65489-9855"), is more likely an order, an account or a timestamp
    return len(_SEPARATED.findall(raw)) >= 2 and digits >= 9


# --- national identifiers --------------------------------------------------------------------------------
_I = re.IGNORECASE

_ES_ID = re.compile(r"(?<![\w-])[XYZ]?\d{7,8}[ -]?[A-Z](?![\w-])", _I)
_FR_NIR = re.compile(
    r"(?<![\w])[12][ ]?\d{2}[ ]?\d{2}[ ]?(?:\d{2}|2[AB])[ ]?\d{3}[ ]?\d{3}[ ]?\d{2}(?![\w]|[.,]\d)", _I
)
_IT_CF = re.compile(r"(?<![\w])[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z](?![\w])", _I)
_LABELLED_ID = re.compile(
    r"\b(?P<label>steuer-?id(?:entifikationsnummer)?|steuerliche[ \t]+identifikationsnummer|"
    r"identifikationsnummer|idnr|tax[ \t]+id(?:entification[ \t]+number)?|bsn|burgerservicenummer|"
    r"sofinummer)"
    r"(?P<sep>\.?[ \t]*(?:nr\.?|number|no\.?|#|is|ist)?[ \t]*:?[ \t]*)"
    r"(?P<value>\d(?:[ ]?\d){8,10})(?![\w]|[.,]\d)",
    _I,
)


def _valid_es(candidate: str) -> bool:
    return bool(dni.is_valid(candidate) or nie.is_valid(candidate))


def _valid_labelled(candidate: str) -> bool:
    return bool(idnr.is_valid(candidate) or bsn.is_valid(candidate))


Validator = Callable[[str], bool]
# (pattern, the group holding the number, its validator); the whole match is replaced but the label
_ID_PATTERNS: tuple[tuple[re.Pattern[str], str, Validator], ...] = (
    (_LABELLED_ID, "value", _valid_labelled),
    (_FR_NIR, "0", nir.is_valid),
    (_ES_ID, "0", _valid_es),
    (_IT_CF, "0", codicefiscale.is_valid),
)


@dataclass(frozen=True)
class IdSpan:
    start: int
    end: int


def national_id_spans(text: str) -> Iterator[IdSpan]:
    """Spans of validated national identifiers in ``text``, in order and without overlaps."""
    spans: list[IdSpan] = []
    for pattern, group, is_valid in _ID_PATTERNS:
        for match in pattern.finditer(text):
            key: int | str = 0 if group == "0" else group
            if is_valid(match.group(key)):
                spans.append(IdSpan(match.start(key), match.end(key)))
    end = -1
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if span.start >= end:
            end = span.end
            yield span
