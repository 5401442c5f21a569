"""Suggestion metrics on hand-computed cases."""

from __future__ import annotations

import pytest

from tickets.evaluation.suggestion_metrics import (
    SuggestionRecord,
    coverage_quality_curve,
    rouge_l,
    summarise_suggestions,
)


def test_rouge_l_is_the_lcs_f_measure() -> None:
    # LCS "the cat on the mat" = 5 of 6 words each way: P = R = F = 5/6.
    assert rouge_l("the cat sat on the mat", "The cat is on the mat.") == pytest.approx(5 / 6)
    # Candidate of 2 words, reference of 4, LCS 2: P = 1, R = 0.5, F = 2/3.
    assert rouge_l("refund issued", "the refund was issued") == pytest.approx(2 / 3)
    assert rouge_l("", "anything") == 0.0
    assert rouge_l("nothing shared", "completely different") == 0.0


def test_rouge_l_counts_words_with_umlauts() -> None:
    # rouge-score's tokenizer would erase "gerät"; here it is a word like any other: LCS 5 of 6.
    assert rouge_l("Bitte starten Sie das Gerät neu", "Starten Sie das Gerät bitte neu") == pytest.approx(
        5 / 6
    )
    assert rouge_l("Gerät", "Gerät") == 1.0


RECORDS = [
    SuggestionRecord(similarity=0.9, abstained=False, confidence=0.9, rouge_l=0.5),
    SuggestionRecord(similarity=0.85, abstained=False, confidence=0.8, rouge_l=0.3),
    SuggestionRecord(similarity=0.5, abstained=False, confidence=0.7, rouge_l=0.1, citations_valid=False),
    SuggestionRecord(similarity=0.95, abstained=True, confidence=0.3),
    SuggestionRecord(similarity=None, abstained=True),
]


def test_summary_counts_abstentions_as_not_usable() -> None:
    block = summarise_suggestions(RECORDS)
    assert block["n"] == 5
    assert block["usable_share"] == pytest.approx(2 / 5)
    assert block["usable_precision"] == pytest.approx(2 / 3)
    assert block["abstained_share"] == pytest.approx(2 / 5)
    assert block["similarity"]["mean"] == pytest.approx((0.9 + 0.85 + 0.5) / 3)
    # p10 of [0.5, 0.85, 0.9] (linear): 0.5 + 0.2 * (0.85 - 0.5)
    assert block["similarity"]["p10"] == pytest.approx(0.57)
    assert block["similarity_before_abstention"]["mean"] == pytest.approx((0.9 + 0.85 + 0.5 + 0.95) / 4)
    assert block["rouge_l"] == pytest.approx(0.3)
    assert block["citation_validity"] == pytest.approx(2 / 3)
    # Four scored tickets, each alone in its bin: |0.9-1|, |0.8-1|, |0.7-0|, |0.3-1| averaged.
    assert block["ece"] == pytest.approx((0.1 + 0.2 + 0.7 + 0.7) / 4)


def test_an_uncalibrated_ranker_has_no_calibration_error_but_still_orders_the_curve() -> None:
    """A ranker fitted on too small a history gives scores, not probabilities (see
    MIN_CALIBRATION_QUERIES): no ECE is claimed for them."""
    from dataclasses import replace

    from tickets.evaluation.suggestion_metrics import record_from_row

    scores = [replace(r, calibrated=False) for r in RECORDS]
    assert summarise_suggestions(scores)["ece"] is None
    assert coverage_quality_curve(scores, points=4) == coverage_quality_curve(RECORDS, points=4)
    row = {"similarity": 0.9, "abstained": False, "confidence": 0.4, "calibrated": False}
    assert record_from_row(row).calibrated is False and record_from_row({"confidence": 0.4}).calibrated


def test_coverage_quality_curve_moves_the_threshold() -> None:
    curve = coverage_quality_curve(RECORDS, points=4)
    assert [p["threshold"] for p in curve] == [0.9, 0.8, 0.7, 0.3]
    assert [p["coverage"] for p in curve] == pytest.approx([1 / 5, 2 / 5, 3 / 5, 4 / 5])
    assert [p["usable_precision"] for p in curve] == pytest.approx([1.0, 1.0, 2 / 3, 3 / 4])


def test_drafting_accounting_and_baselines() -> None:
    records = [
        SuggestionRecord(
            similarity=0.82, abstained=False, confidence=0.9, drafted=True, draft_cut_off=True,
            stored_similarity=0.88,
            prompt_tokens=300, completion_tokens=60, latency_ms=1200.0, cost_usd=0.001,
            baselines={"nearest_ticket_answer": 0.7},
        ),
        SuggestionRecord(
            similarity=0.6, abstained=False, confidence=0.9, draft_fallback="the draft is not grounded",
            prompt_tokens=100, completion_tokens=20, latency_ms=800.0, cost_usd=0.0,
            baselines={"nearest_ticket_answer": 0.9},
        ),
    ]  # fmt: skip
    drafting = summarise_suggestions(records)["drafting"]
    assert (drafting["asked"], drafting["drafted"]) == (2, 1)
    assert drafting["fallbacks"] == {"the draft is not grounded": 1}
    assert drafting["cut_off"] == 1  # drafted, its reply cut at a sentence by the token budget
    assert drafting["prompt_tokens_per_ticket"] == 200
    assert drafting["latency_ms_per_ticket"] == 1000.0
    assert drafting["similarity_drafted"] == pytest.approx(0.82)
    assert drafting["similarity_stored_on_drafted"] == pytest.approx(0.88)  # the draft lost here
    nearest = summarise_suggestions(records)["baselines"]["nearest_ticket_answer"]
    assert nearest["mean"] == pytest.approx(0.8) and nearest["usable_share"] == 0.5


def test_empty_input() -> None:
    block = summarise_suggestions([])
    assert block["n"] == 0 and block["usable_precision"] is None and block["coverage_quality_curve"] == []
