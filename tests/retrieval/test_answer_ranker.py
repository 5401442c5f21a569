"""The answer ranker: features on hand cases, learning from leave-one-out history, calibration,
abstention, and its artefact (JSON header, no pickle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.answer_ranker import (
    FEATURES,
    MIN_CALIBRATION_QUERIES,
    AnswerRanker,
    AnswerRankerStale,
    Candidate,
    features,
    fit_answer_ranker,
    training_query,
    unlearned_ranker,
)
from retrieval.errors import IndexCorrupt


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float64)
    return vector / np.linalg.norm(vector)


def column(matrix: np.ndarray, name: str) -> list[float]:
    values: list[float] = matrix[:, FEATURES.index(name)].tolist()
    return values


def test_features_on_a_hand_case() -> None:
    candidates = [
        Candidate(doc_id=1, dense=0.9, lexical=10.0, category="Refund", accepted=2, edited=1, rejected=1),
        Candidate(doc_id=2, dense=0.8, lexical=5.0, category="Refund", age_days=0.0),
        Candidate(doc_id=3, dense=0.6, lexical=None, category="VPN", age_days=365.0),
    ]
    answers = np.vstack([unit(1, 0), unit(1, 0), unit(0, 1)])  # 1 and 2 say the same, 3 something else
    matrix = features(candidates, answers, decided_category="Refund")
    assert column(matrix, "dense_gap") == pytest.approx([0.0, -0.1, -0.3])
    assert column(matrix, "lexical") == pytest.approx([1.0, 0.5, 0.0])
    # Candidate 1: of the others' weight 0.8 + 0.6, only candidate 2 (0.8) agrees.
    assert column(matrix, "agreement") == pytest.approx([0.8 / 1.4, 0.9 / 1.5, 0.0])
    assert column(matrix, "agreement_mean") == pytest.approx([0.8 / 1.4, 0.9 / 1.5, 0.0])
    assert column(matrix, "rank") == pytest.approx([1.0, 0.5, 1 / 3])
    assert column(matrix, "recency") == pytest.approx([0.5, 1.0, np.exp(-1.0)])
    assert column(matrix, "same_category") == [1.0, 1.0, 0.0]
    assert column(matrix, "feedback") == pytest.approx([(2 + 0.5 - 1) / 5, 0.0, 0.0])


def synthetic_queries(n: int, seed: int) -> list[Any]:
    """History where the answer several neighbours agree on is the usable one (the wrong answers each
    say something else), whatever the retrieval order."""
    rng = np.random.default_rng(seed)
    right = np.eye(6)[0]
    queries = []
    for _ in range(n):
        candidates, answers = [], []
        agreeing = int(rng.integers(2, 5))
        for i in range(5):
            good = i < agreeing
            candidates.append(Candidate(doc_id=i, dense=float(rng.uniform(0.5, 0.9)), category="A"))
            direction = right if good else np.eye(6)[1 + i]
            answers.append(unit(*(direction + rng.normal(0, 0.05, 6))))
        order = rng.permutation(5)  # retrieval order does not follow usability
        candidates = [candidates[i] for i in order]
        matrix = np.vstack([answers[i] for i in order])
        queries.append(training_query(candidates, matrix, right, decided_category="A"))
    return queries


def test_fitting_learns_agreement_and_is_calibrated_out_of_fold(tmp_path: Path) -> None:
    ranker = fit_answer_ranker(synthetic_queries(600, seed=1), embedding_model="m")
    stats = ranker.stats
    assert stats["oof_usable_share_top"] > stats["oof_usable_share_first_retrieved"] + 0.2
    assert stats["oof_usable_share_top"] > 0.95
    assert stats["oof_ece"] <= 0.05
    assert stats["feedback_learned"] is False
    assert ranker.weights[FEATURES.index("feedback")] > 0  # the fixed prior while history has none
    path = tmp_path / "answer_ranker.bin"
    ranker.save(path)
    assert b"\x80\x05" not in path.read_bytes()[:64]  # a JSON header, never a pickle
    loaded = AnswerRanker.load(path, embedding_model="m")
    matrix = synthetic_queries(1, seed=2)[0].matrix
    assert np.allclose(loaded.scores(matrix), ranker.scores(matrix))
    with pytest.raises(AnswerRankerStale):
        AnswerRanker.load(path, embedding_model="another")
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(IndexCorrupt):
        AnswerRanker.load(path, embedding_model="m")


def test_choose_abstains_below_the_threshold_and_ranks_agreed_answers_first() -> None:
    ranker = fit_answer_ranker(
        synthetic_queries(300, seed=3), embedding_model="m", min_calibration_queries=300
    )
    candidates = [Candidate(doc_id=i, dense=0.8, category="A") for i in range(4)]
    answers = np.vstack(
        [unit(0, 1, 0, 0, 0, 0), unit(1, 0, 0, 0, 0, 0), unit(1, 0.02, 0, 0, 0, 0), unit(1, 0, 0.02, 0, 0, 0)]
    )
    choice = ranker.choose(candidates, answers, decided_category="A", min_confidence=0.5)
    assert choice.best is not None and choice.best.doc_id in (1, 2, 3) and not choice.abstained
    assert choice.calibrated and choice.confidence is not None and choice.confidence > 0.5
    strict = ranker.choose(candidates, answers, decided_category="A", min_confidence=0.9999)
    assert strict.abstained and "below the threshold" in strict.reason
    assert ranker.choose([], np.zeros((0, 3)), decided_category="A", min_confidence=0.1).abstained


def test_the_unlearned_ranker_never_abstains() -> None:
    ranker = unlearned_ranker("m")
    candidates = [Candidate(doc_id=1, dense=0.2, category="B"), Candidate(doc_id=2, dense=0.9, category="A")]
    choice = ranker.choose(
        candidates, np.vstack([unit(1, 0), unit(0, 1)]), decided_category="A", min_confidence=0.99
    )
    assert not choice.calibrated and not choice.abstained and choice.best is not None
    assert choice.best.doc_id == 2


def test_too_little_history_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="need at least"):
        fit_answer_ranker(synthetic_queries(3, seed=4), embedding_model="m")


def test_a_small_history_gives_learned_weights_but_no_calibration(tmp_path: Path) -> None:
    """Below MIN_CALIBRATION_QUERIES the top score is not calibrated: the ranker still ranks by what it
    learned, its confidence is marked uncalibrated and it never abstains, saved and loaded alike."""
    queries = synthetic_queries(200, seed=5)
    ranker = fit_answer_ranker(queries, embedding_model="m")
    assert MIN_CALIBRATION_QUERIES > 200 and ranker.stats["learned"] is True
    assert ranker.stats["calibrated"] is False and not ranker.calibrated
    assert ranker.recommended_threshold is None and ranker.stats["oof_usable_share_top"] > 0.9
    path = tmp_path / "ranker.bin"
    ranker.save(path)
    loaded = AnswerRanker.load(path, embedding_model="m")
    candidates = [Candidate(doc_id=i, dense=0.8, category="A") for i in range(3)]
    answers = np.vstack([unit(0, 1, 0, 0, 0, 0), unit(1, 0, 0, 0, 0, 0), unit(1, 0.02, 0, 0, 0, 0)])
    choice = loaded.choose(candidates, answers, decided_category="A", min_confidence=0.9999)
    assert not choice.calibrated and not choice.abstained
    assert choice.best is not None and choice.best.doc_id in (1, 2)
    assert fit_answer_ranker(queries, embedding_model="m", min_calibration_queries=200).calibrated
