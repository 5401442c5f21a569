"""Measures of suggested resolutions against the answers agents really sent.

Plain Python and NumPy on one mode's per-ticket records; no Django. Answer similarity is the cosine of
the two answers' embeddings (the shipped MiniLM embedder, computed by the caller); a suggestion is
*usable* when that cosine is at least :data:`USABLE_SIMILARITY`. A ticket whose suggestion abstained
(confidence below the threshold) or that had no candidate counts as *not usable*.

ROUGE-L is computed here on Unicode word tokens (a longest common subsequence, F-measure) rather than
with the ``rouge-score`` package: its tokenizer keeps only ``[a-z0-9]`` and so erases every German word
with an umlaut or an ``ß`` (tobi-bueck is half German), and it pulls in NLTK for a stemmer we would
not use.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrieval.calibration import calibration_error

USABLE_SIMILARITY = 0.8
CURVE_POINTS = 20
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SuggestionRecord:
    """One test ticket's suggestion in one mode.

    ``similarity`` is the cosine between the chosen answer (shown or not) and the real one; ``None`` when
    there was nothing to choose. ``confidence`` is the suggestion confidence of the chosen answer.
    """

    similarity: float | None
    abstained: bool
    confidence: float | None = None
    calibrated: bool = True
    """False where the ranker was not calibrated (a small history): its number is a score, left out
    of the calibration error (it still orders the coverage-quality curve)."""
    rouge_l: float | None = None
    citations_valid: bool = True
    drafted: bool = False
    draft_fallback: str = ""
    """Why a draft was asked for but the stored answer was shown instead ("" when not)."""
    draft_cut_off: bool = False  # drafted, its reply cut at a sentence by the token budget
    stored_similarity: float | None = None  # drafted: the similarity of the stored answer it replaced
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    baselines: Mapping[str, float | None] = field(default_factory=dict)
    """Similarities of reference choices on the same ticket (e.g. the nearest ticket's answer)."""

    @property
    def shown(self) -> bool:
        return not self.abstained and self.similarity is not None

    @property
    def usable(self) -> bool:
        return self.shown and self.similarity is not None and self.similarity >= USABLE_SIMILARITY


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (one row of the dynamic programme at a time)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for item in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if item == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 of ``candidate`` against ``reference`` (0 when either has no word)."""
    a, b = tokens(candidate), tokens(reference)
    if not a or not b:
        return 0.0
    lcs = _lcs_length(a, b)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p10": None, "n": 0}
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "p10": float(np.percentile(array, 10)), "n": len(values)}


def coverage_quality_curve(
    records: Sequence[SuggestionRecord], *, points: int = CURVE_POINTS
) -> list[dict[str, float]]:
    """Usable share among the suggestions shown as the confidence threshold moves, over every ticket
    that had a candidate: ``coverage`` is the share of all tickets shown at ``threshold``."""
    scored = [r for r in records if r.similarity is not None and r.confidence is not None]
    if not scored or not records:
        return []
    order = sorted(scored, key=lambda r: -float(r.confidence or 0.0))
    usable = np.cumsum([float(r.similarity or 0.0) >= USABLE_SIMILARITY for r in order])
    curve = []
    for i in range(1, points + 1):
        cut = max(1, round(len(order) * i / points))
        curve.append(
            {
                "threshold": float(order[cut - 1].confidence or 0.0),
                "coverage": cut / len(records),
                "usable_precision": float(usable[cut - 1] / cut),
            }
        )
    return curve


def _baseline(records: Sequence[SuggestionRecord], name: str) -> dict[str, Any] | None:
    values = [r.baselines.get(name) for r in records]
    known = [float(v) for v in values if v is not None]
    if not known:
        return None
    return {
        **_stats(known),
        "usable_share": sum(v >= USABLE_SIMILARITY for v in known) / len(records),
    }


def summarise_suggestions(records: Sequence[SuggestionRecord]) -> dict[str, Any]:
    """The ``suggestion`` block of a mode's report."""
    n = len(records)
    shown = [r for r in records if r.shown]
    usable = sum(r.usable for r in records)
    chosen = [r for r in records if r.similarity is not None]
    calibrated = [r for r in chosen if r.confidence is not None and r.calibrated]
    drafted = [r for r in records if r.drafted]
    drafts_asked = [r for r in records if r.drafted or r.draft_fallback]
    return {
        "n": n,
        "usable_similarity": USABLE_SIMILARITY,
        "similarity": _stats([float(r.similarity or 0.0) for r in shown]),
        "similarity_before_abstention": _stats([float(r.similarity or 0.0) for r in chosen]),
        "usable_share": usable / n if n else 0.0,
        "usable_precision": usable / len(shown) if shown else None,
        "abstained_share": (n - len(shown)) / n if n else 0.0,
        "rouge_l": _stats([float(r.rouge_l) for r in shown if r.rouge_l is not None])["mean"],
        "citation_validity": sum(r.citations_valid for r in shown) / len(shown) if shown else None,
        "ece": (
            calibration_error(
                np.asarray([r.confidence for r in calibrated], dtype=np.float64),
                np.asarray([float(r.similarity or 0.0) >= USABLE_SIMILARITY for r in calibrated]),
            )
            if calibrated
            else None
        ),
        "coverage_quality_curve": coverage_quality_curve(records),
        "baselines": {
            name: _baseline(records, name) for name in sorted({k for r in records for k in r.baselines})
        },
        "drafting": {
            "asked": len(drafts_asked),
            "drafted": len(drafted),
            "cut_off": sum(1 for r in drafted if r.draft_cut_off),
            "fallbacks": dict(Counter(r.draft_fallback for r in drafts_asked if r.draft_fallback)),
            "prompt_tokens_per_ticket": _mean([r.prompt_tokens for r in drafts_asked]),
            "completion_tokens_per_ticket": _mean([r.completion_tokens for r in drafts_asked]),
            "latency_ms_per_ticket": _mean([r.latency_ms for r in drafts_asked]),
            "cost_usd_per_ticket": _mean([r.cost_usd for r in drafts_asked]),
            "similarity_drafted": _stats([float(r.similarity or 0.0) for r in drafted if r.shown])["mean"],
            # the stored answer the draft replaced, on the same tickets: does drafting win?
            "similarity_stored_on_drafted": _mean(
                [r.stored_similarity for r in drafted if r.shown and r.stored_similarity is not None]
            ),
        },
    }


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def record_from_row(row: Mapping[str, Any]) -> SuggestionRecord:
    """A record from the ``suggestion`` field of a results line (see the evaluation runner)."""
    return SuggestionRecord(
        similarity=row.get("similarity"),
        abstained=bool(row.get("abstained")),
        confidence=row.get("confidence"),
        calibrated=bool(row.get("calibrated", True)),
        rouge_l=row.get("rouge_l"),
        citations_valid=bool(row.get("citations_valid", True)),
        drafted=bool(row.get("drafted")),
        draft_fallback=str(row.get("draft_fallback") or ""),
        draft_cut_off=bool(row.get("draft_cut_off")),
        stored_similarity=row.get("stored_similarity"),
        prompt_tokens=int(row.get("prompt_tokens") or 0),
        completion_tokens=int(row.get("completion_tokens") or 0),
        latency_ms=float(row.get("latency_ms") or 0.0),
        cost_usd=float(row.get("cost_usd") or 0.0),
        baselines=dict(row.get("baselines") or {}),
    )
