"""Which language a ticket is written in: py3langid (langid.py's naive Bayes model over byte n-grams,
97 languages, shipped in its 4.6 MB wheel), restricted to the languages a company expects.

Restricting the candidates is what makes short texts work: on five-word prefixes of tobi-bueck tickets
the full 97-language model names the labelled language 50.2% of the time (46.6% undetermined), the
seven-language subset 88.5% (``benchmarks/bench_language.py``). Pure functions (no database); the
pipeline, the imports and ``evaluate`` call the same :func:`detect_language`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model loads lazily: only processes that read ticket text pay for it
    from py3langid.langid import LanguageIdentifier

DEFAULT_CANDIDATES = ("en", "de", "es", "fr", "it", "pt", "nl")
"""The languages considered when ``LANGUAGE_CANDIDATES`` is not set."""
MIN_LETTERS = 12
"""Fewer letters than this: too short to tell ("" is returned)."""
MIN_PROBABILITY = 0.5
"""Below this probability (among the candidates) the text is ambiguous: "" is returned."""
MAX_CHARS = 2000
"""Only the start of a long text is read: the language rarely changes after it, and time grows with it."""

_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


@functools.cache
def _identifier(candidates: tuple[str, ...]) -> LanguageIdentifier:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    known = set(identifier.nb_classes)
    unknown = sorted(set(candidates) - known)
    if unknown:
        raise ValueError(f"language(s) {', '.join(unknown)} unknown to the language identifier")
    identifier.set_languages(list(candidates) if candidates else None)
    return identifier


def configured_candidates() -> tuple[str, ...]:
    """``LANGUAGE_CANDIDATES`` from the settings where Django is configured, else the default."""
    from django.conf import settings

    if settings.configured:
        return tuple(getattr(settings, "LANGUAGE_CANDIDATES", DEFAULT_CANDIDATES))
    return DEFAULT_CANDIDATES


def detect_language_scored(text: str, *, candidates: Iterable[str] | None = None) -> tuple[str, float]:
    """(ISO 639-1 code, probability among the candidates), or ("", probability) when the text is too
    short or ambiguous to tell. ``candidates``: the languages considered (empty: all 97)."""
    sample = text[:MAX_CHARS]
    if len(_LETTER.findall(sample)) < MIN_LETTERS:
        return "", 0.0
    chosen = tuple(sorted(configured_candidates() if candidates is None else set(candidates)))
    language, probability = _identifier(chosen).classify(sample)
    probability = float(probability)
    return (str(language), probability) if probability >= MIN_PROBABILITY else ("", probability)


def detect_language(text: str, *, candidates: Iterable[str] | None = None) -> str:
    """An ISO 639-1 code for the text's language, or "" when it is too short or ambiguous to tell."""
    return detect_language_scored(text, candidates=candidates)[0]


_NAMES = {
    "en": "English",
    "de": "German",
    "es": "Spanish",
    "fr": "French",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
    "sv": "Swedish",
    "da": "Danish",
    "no": "Norwegian",
    "fi": "Finnish",
    "tr": "Turkish",
    "ru": "Russian",
    "ja": "Japanese",
    "zh": "Chinese",
    "ar": "Arabic",
}


def language_name(code: str) -> str:
    return _NAMES.get(code, code)


def unsupported_language_reason(*, language: str, history_counts: Mapping[str, int], minimum: int) -> str:
    """Why a ticket goes to triage for its language ("" when it need not): it is written in a language
    with fewer than ``minimum`` history tickets, so any team chosen for it rests on tickets in other
    languages. Not applied when the language cannot be told, when ``minimum`` is 0, or while no history
    ticket has a language recorded (``history_counts`` empty: nothing is known either way)."""
    if not language or minimum <= 0 or not history_counts:
        return ""
    have = int(history_counts.get(language, 0))
    if have >= minimum:
        return ""
    return (
        f"written in {language_name(language)} ({language}), a language the history barely covers: "
        f"{have} resolved ticket{'' if have == 1 else 's'} in it, fewer than {minimum}"
    )
