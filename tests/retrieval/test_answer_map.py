"""The ticket-to-answer map: a ridge regression learned from history (ticket and decided category),
cross-fitted for the history's own rows, stored as float32 bytes; and the ranker feature built on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval._storage import write_container
from retrieval.answer_choice import learn_answer_map
from retrieval.answer_map import AnswerMap, cross_fitted, fit_answer_map
from retrieval.answer_ranker import (
    FEATURES,
    MAGIC,
    AnswerRanker,
    Candidate,
    features,
    fit_answer_ranker,
    training_query,
)
from retrieval.errors import IndexFormatMismatch


def _unit(matrix: np.ndarray) -> np.ndarray:
    return np.asarray(matrix / np.linalg.norm(matrix, axis=-1, keepdims=True), dtype=np.float64)


def history(n: int, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tickets, and answers that are a fixed linear function of them plus noise."""
    rng = np.random.default_rng(seed)
    mapping = rng.normal(size=(dim, dim))
    tickets = _unit(rng.normal(size=(n, dim)))
    answers = _unit(tickets @ mapping + rng.normal(0, 0.05, size=(n, dim)))
    return tickets, answers, mapping


def test_the_map_predicts_unseen_answers_and_survives_its_bytes() -> None:
    tickets, answers, _ = history(300)
    learned = fit_answer_map(tickets[:200], answers[:200], [None] * 200, alpha=0.01)
    predicted = learned.predict(tickets[200:], [None] * 100)
    assert np.allclose(np.linalg.norm(predicted, axis=1), 1.0)
    assert float((predicted * answers[200:]).sum(axis=1).mean()) > 0.98
    assert learned.predict(tickets[200], [None]).shape == (8,)  # one ticket in, one answer out
    again = AnswerMap.from_bytes(learned.to_bytes(), 8, [])
    assert np.allclose(again.predict(tickets[200:], [None] * 100), predicted, atol=1e-5)
    with pytest.raises(ValueError, match="expected"):
        AnswerMap.from_bytes(learned.to_bytes()[:-4], 8, [])


def test_cross_fitted_rows_are_predicted_without_themselves() -> None:
    """With more dimensions than rows a map fitted on a row reproduces its answer; cross-fitted, the
    row's answer is predicted by the other folds only (as a new ticket's would be)."""
    tickets, answers, _ = history(15, dim=16)
    in_sample = fit_answer_map(tickets, answers, [None] * 15, alpha=1e-6).predict(tickets, [None] * 15)
    crossed = cross_fitted(tickets, answers, [None] * 15, alpha=1e-6)
    assert float((in_sample * answers).sum(axis=1).min()) > 0.999
    assert float((crossed * answers).sum(axis=1).max()) < 0.99


def test_the_decided_category_moves_the_prediction_and_an_unknown_one_is_ignored() -> None:
    """Two categories whose answers differ by a constant direction the ticket does not show."""
    rng = np.random.default_rng(3)
    tickets = _unit(rng.normal(size=(200, 8)))
    names = ["Refund" if i % 2 else "VPN" for i in range(200)]
    offset = np.where(np.asarray(names)[:, None] == "Refund", 1.0, -1.0) * np.eye(8)[0]
    answers = _unit(tickets + offset)
    learned = fit_answer_map(tickets, answers, names)
    assert learned.categories == ("Refund", "VPN")
    assert float(learned.predict(tickets[1], ["Refund"]) @ answers[1]) > 0.98
    assert float(learned.predict(tickets[1], ["VPN"]) @ answers[1]) < 0.8
    again = AnswerMap.from_bytes(learned.to_bytes(), 8, learned.categories)
    assert np.allclose(
        again.predict(tickets[:4], names[:4]), learned.predict(tickets[:4], names[:4]), atol=1e-5
    )
    assert learned.predict(tickets[1], ["Never seen"]).shape == (8,)


def test_learn_answer_map_skips_tickets_without_an_answer_and_needs_enough() -> None:
    tickets, answers, _ = history(60)
    with_answers = {i: answers[i] for i in range(60) if i % 3}
    learned, predicted = learn_answer_map(
        doc_ids=list(range(60)), vectors=tickets, answer_vectors=with_answers, decided_categories=[None] * 60
    )
    assert learned is not None and predicted is not None and predicted.shape == (60, 8)
    assert not predicted[0].any() and predicted[1].any()  # ticket 0 has no answer
    few = {i: answers[i] for i in range(10)}
    assert learn_answer_map(
        doc_ids=list(range(60)), vectors=tickets, answer_vectors=few, decided_categories=[None] * 60
    ) == (None, None)


def test_the_ranker_learns_to_follow_the_predicted_answer_and_keeps_its_map(tmp_path: Path) -> None:
    """Candidates whose answers all agree equally; only closeness to the predicted answer tells the
    usable one."""
    rng = np.random.default_rng(5)
    queries = []
    for _ in range(300):
        truth = _unit(rng.normal(size=6))
        predicted = _unit(truth + rng.normal(0, 0.1, size=6))
        good = _unit(truth + rng.normal(0, 0.05, size=6))
        bad = [_unit(rng.normal(size=6)) for _ in range(3)]
        order = rng.permutation(4)
        answers = np.vstack([good, *bad])[order]
        candidates = [Candidate(doc_id=int(i), dense=float(rng.uniform(0.5, 0.9))) for i in range(4)]
        queries.append(
            training_query(candidates, answers, truth, decided_category=None, predicted_answer=predicted)
        )
    matrix = queries[0].matrix
    assert matrix[:, FEATURES.index("answer_to_predicted_gap")].max() == 0.0
    tickets, answers, _ = history(50, dim=6)
    learned = fit_answer_map(tickets, answers, [None] * 50)
    ranker = fit_answer_ranker(queries, embedding_model="m", answer_map=learned)
    assert ranker.stats["oof_usable_share_top"] > 0.95
    assert ranker.stats["oof_usable_share_first_retrieved"] < 0.5
    path = tmp_path / "ranker.bin"
    ranker.save(path)
    loaded = AnswerRanker.load(path, embedding_model="m")
    assert loaded.answer_map is not None
    assert np.allclose(
        loaded.answer_map.predict(tickets, [None] * 50), learned.predict(tickets, [None] * 50), atol=1e-5
    )
    candidates = [Candidate(doc_id=1, dense=0.7), Candidate(doc_id=2, dense=0.7)]
    target = learned.predict(tickets[0], [None])
    options = np.vstack([_unit(-target), target])
    assert features(candidates, options, decided_category=None, predicted_answer=target)[
        :, FEATURES.index("answer_to_predicted")
    ] == pytest.approx([-1.0, 1.0])
    choice = loaded.choose(
        candidates, options, decided_category=None, min_confidence=0.5, query_vector=tickets[0]
    )
    assert choice.best is not None and choice.best.doc_id == 2


def test_an_artefact_of_the_previous_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.bin"
    write_container(path, MAGIC, {"format_version": 1, "embedding_model": "m"}, b"")
    with pytest.raises(IndexFormatMismatch):
        AnswerRanker.load(path, embedding_model="m")


def test_a_map_that_does_not_win_out_of_fold_is_left_out(tmp_path: Path) -> None:
    """On a small history the map's prediction is noise: the ranker compares its out-of-fold choice
    with and without the map's features (same folds), keeps neither map nor weights for them, and says
    so; saved and loaded, it ranks without a map (zero features, zero weights)."""
    rng = np.random.default_rng(7)
    queries = []
    for _ in range(120):
        truth = _unit(rng.normal(size=6))
        good = _unit(truth + rng.normal(0, 0.05, size=6))
        bad = [_unit(rng.normal(size=6)) for _ in range(3)]
        answers = np.vstack([good, *bad])
        candidates = [Candidate(doc_id=0, dense=float(rng.uniform(0.8, 0.9)))] + [
            Candidate(doc_id=i, dense=float(rng.uniform(0.5, 0.8))) for i in range(1, 4)
        ]
        noise = _unit(rng.normal(size=6))  # the map's prediction says nothing about the truth
        queries.append(
            training_query(candidates, answers, truth, decided_category=None, predicted_answer=noise)
        )
    tickets, answers, _ = history(50, dim=6)
    learned = fit_answer_map(tickets, answers, [None] * 50)
    ranker = fit_answer_ranker(queries, embedding_model="m", answer_map=learned, min_calibration_queries=100)
    stats = ranker.stats
    assert stats["answer_map_kept"] is False and ranker.answer_map is None
    assert stats["oof_usable_share_top_with_map"] <= stats["oof_usable_share_top_without_map"]
    assert stats["oof_usable_share_top"] == stats["oof_usable_share_top_without_map"] > 0.9
    for name in ("answer_to_predicted", "answer_to_predicted_gap"):
        assert ranker.weights[FEATURES.index(name)] == 0.0 and stats["weights"][name] == 0.0
    path = tmp_path / "ranker.bin"
    ranker.save(path)
    loaded = AnswerRanker.load(path, embedding_model="m")
    assert loaded.answer_map is None and loaded.stats["answer_map_kept"] is False
    candidates = [Candidate(doc_id=2, dense=0.85), Candidate(doc_id=1, dense=0.6)]
    choice = loaded.choose(
        candidates,
        np.vstack([_unit(rng.normal(size=6)), _unit(rng.normal(size=6))]),
        decided_category=None,
        min_confidence=0.5,
        query_vector=tickets[0],
    )
    assert choice.best is not None and choice.best.doc_id == 2 and choice.calibrated
