"""The label model with real scikit-learn: accuracy, calibration, persistence and its refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.calibration import calibration_error, threshold_for_precision
from retrieval.errors import IndexCorrupt
from retrieval.label_model import FitOptions, LabelModel, LabelModelStale, fit_label_model

# A company's own taxonomy: any strings, including non-ASCII ones.
TOPICS = {
    "Facturación / Billing": ["invoice", "refund", "charged", "payment", "receipt", "vat"],
    "Zugang": ["password", "login", "locked", "account", "reset", "mfa"],
    "Hardware": ["laptop", "screen", "keyboard", "printer", "dock", "battery"],
    "Shipping": ["parcel", "delivery", "courier", "tracking", "address", "package"],
}
FILLER = ["please", "help", "today", "urgent", "thanks", "hello", "issue", "problem", "again", "team"]
OPTIONS = FitOptions(folds=3, neighbours=5)


def make_tickets(n: int, *, noise: float, seed: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Texts mixing topic words with filler (and, with ``noise``, another topic's words), and embeddings:
    the topic's centroid plus noise, so both signals carry the label imperfectly."""
    rng = np.random.default_rng(seed)
    labels = sorted(TOPICS)
    centroids = np.random.default_rng(99).normal(size=(len(labels), 32))
    texts, vectors, truth = [], [], []
    for _ in range(n):
        k = int(rng.integers(len(labels)))
        shown = int(rng.integers(len(labels))) if rng.random() < noise else k
        words = list(rng.choice(TOPICS[labels[shown]], size=2)) + list(rng.choice(FILLER, size=4))
        rng.shuffle(words)
        texts.append(" ".join(words))
        vector = centroids[k] + rng.normal(scale=2.2, size=32)
        vectors.append(vector / np.linalg.norm(vector))
        truth.append(labels[k])
    return texts, np.asarray(vectors, dtype=np.float32), truth


@pytest.fixture(scope="module")
def fitted() -> LabelModel:
    texts, vectors, labels = make_tickets(600, noise=0.3, seed=1)
    steps: list[tuple[str, int, int]] = []
    model = fit_label_model(
        texts=texts,
        embeddings=vectors,
        labels=labels,
        embedding_model="fake-32",
        options=OPTIONS,
        progress=lambda step, done, total: steps.append((step, done, total)),
    )
    assert steps and steps[-1][1] == steps[-1][2], "progress ends at its total"
    return model


def test_learns_and_its_confidence_means_what_it_says(fitted: LabelModel) -> None:
    texts, vectors, labels = make_tickets(800, noise=0.3, seed=2)
    proba = fitted.predict_proba(texts=texts, embeddings=vectors)
    assert proba.shape == (800, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    predicted = np.asarray(fitted.labels)[proba.argmax(axis=1)]
    correct = predicted == np.asarray(labels)
    accuracy = correct.mean()
    # Each signal alone is weaker than the stack: the text lies 30% of the time, the vectors are noisy.
    assert 0.75 < accuracy < 1.0
    assert fitted.stats["oof_accuracy"] > max(
        fitted.stats["oof_accuracy_semantic"],
        fitted.stats["oof_accuracy_words"],
        fitted.stats["oof_accuracy_chars"],
    )
    confidence = proba.max(axis=1)
    assert abs(confidence.mean() - accuracy) < 0.05, "average confidence matches accuracy"
    assert calibration_error(confidence, correct) < 0.06
    # Confident decisions are more often right than unsure ones.
    assert correct[confidence >= 0.9].mean() > correct[confidence < 0.6].mean() + 0.2


def test_predict_maps_labels_and_checks_shapes(fitted: LabelModel) -> None:
    texts, vectors, _ = make_tickets(3, noise=0.0, seed=3)
    rows = fitted.predict(texts=texts, embeddings=vectors)
    assert [set(row) for row in rows] == [set(TOPICS)] * 3
    assert fitted.predict_proba(texts=[], embeddings=np.zeros((0, 32), np.float32)).shape == (0, 4)
    with pytest.raises(ValueError, match="dimensions"):
        fitted.predict_proba(texts=texts, embeddings=np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match="shape"):
        fitted.predict_proba(texts=texts, embeddings=vectors[:2])


def test_save_load_roundtrip_and_refusals(fitted: LabelModel, tmp_path: Path) -> None:
    path = tmp_path / "label_model.bin"
    fitted.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["label_model.bin"], "no temporary file left"
    loaded = LabelModel.load(path, embedding_model="fake-32", labels=list(TOPICS))
    texts, vectors, _ = make_tickets(20, noise=0.2, seed=4)
    np.testing.assert_allclose(
        loaded.predict_proba(texts=texts, embeddings=vectors),
        fitted.predict_proba(texts=texts, embeddings=vectors),
    )
    assert loaded.labels == fitted.labels and loaded.stats["n_train"] == 600
    with pytest.raises(LabelModelStale, match=r"fake-32.*other-model"):
        LabelModel.load(path, embedding_model="other-model")
    with pytest.raises(LabelModelStale, match="label set differs"):
        LabelModel.load(path, embedding_model="fake-32", labels=[*TOPICS, "New team"])
    damaged = bytearray(path.read_bytes())
    damaged[-10] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(IndexCorrupt):
        LabelModel.load(path, embedding_model="fake-32")


def test_two_classes_and_rare_labels_fit_one_class_does_not() -> None:
    texts, vectors, labels = make_tickets(120, noise=0.0, seed=5)
    two = [label if label == "Hardware" else "Other" for label in labels]
    two[0] = "Rare"  # one example: not in every fold
    model = fit_label_model(texts=texts, embeddings=vectors, labels=two, embedding_model="m", options=OPTIONS)
    assert set(model.labels) == {"Hardware", "Other", "Rare"}
    assert model.predict_proba(texts=texts[:5], embeddings=vectors[:5]).shape == (5, 3)
    with pytest.raises(ValueError, match="at least 2 distinct labels"):
        fit_label_model(texts=texts, embeddings=vectors, labels=["x"] * 120, embedding_model="m")
    with pytest.raises(ValueError, match="labels"):
        fit_label_model(texts=texts, embeddings=vectors, labels=labels[:-1], embedding_model="m")


def test_calibration_measures() -> None:
    # Perfectly calibrated bins have no error; overconfidence shows up.
    confidence = np.array([0.9] * 10 + [0.6] * 10)
    correct = np.array([True] * 9 + [False] + [True] * 6 + [False] * 4)
    assert calibration_error(confidence, correct) == pytest.approx(0.0)
    assert calibration_error(np.full(10, 0.99), np.array([True] * 5 + [False] * 5)) == pytest.approx(0.49)
    threshold, coverage = threshold_for_precision(confidence, correct, 0.9)
    assert threshold == pytest.approx(0.9) and coverage == pytest.approx(0.5)
    assert threshold_for_precision(confidence, correct, 0.99) == (None, 0.0)
    threshold, coverage = threshold_for_precision(confidence, correct, 0.75)
    assert threshold == pytest.approx(0.6) and coverage == 1.0


# --- the saved artefact: arrays and JSON, the fitted model's numbers, nothing executed ------------------


class PlantedPayload:
    """What an attacker with write access to INDEX_DIR would plant: unpickling it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_a_saved_model_predicts_exactly_what_the_fitted_one_does(fitted: LabelModel, tmp_path: Path) -> None:
    path = tmp_path / "label_model.bin"
    fitted.save(path)
    loaded = LabelModel.load(path, embedding_model="fake-32", labels=list(TOPICS))
    texts, vectors, _ = make_tickets(300, noise=0.3, seed=11)  # held out: never seen by the fit
    texts += ["Ünïcödé refund für den Laptop", "", "zzz qqq"]  # unseen words, an empty text
    vectors = np.vstack([vectors, vectors[:3]])
    np.testing.assert_allclose(
        loaded.predict_proba(texts=texts, embeddings=vectors),
        fitted.predict_proba(texts=texts, embeddings=vectors),
        rtol=1e-12,
        atol=1e-15,
    )
    assert loaded.options == fitted.options and loaded.temperature == fitted.temperature
    assert loaded.oof_proba is not None and fitted.oof_proba is not None
    np.testing.assert_array_equal(loaded.oof_proba, fitted.oof_proba)
    assert loaded.stats == fitted.stats


def test_a_planted_pickle_is_refused_unread(fitted: LabelModel, tmp_path: Path) -> None:
    import pickle

    from retrieval._storage import write_container
    from retrieval.errors import IndexFormatMismatch

    marker = tmp_path / "pwned"
    payload = pickle.dumps(PlantedPayload(marker))
    pickle.loads(payload)  # noqa: S301  (the control: unpickling it does run code)
    assert marker.exists()
    marker.unlink()

    path = tmp_path / "label_model.bin"
    path.write_bytes(payload)  # a bare pickle in place of the artefact
    with pytest.raises(IndexCorrupt, match="bad magic"):
        LabelModel.load(path, embedding_model="fake-32")
    # The old format 2 was a pickle inside the container: its header is read, its payload never.
    write_container(path, b"SBLABEL1", {"format_version": 2, "embedding_model": "fake-32"}, payload)
    with pytest.raises(IndexFormatMismatch, match="format_version 2"):
        LabelModel.load(path, embedding_model="fake-32")
    # The current format with an object array slipped into its arrays.
    fitted.save(path)
    header_and_arrays = _rewrite_arrays(path, knn_labels=np.array([PlantedPayload(marker)], dtype=object))
    with pytest.raises(IndexCorrupt, match="cannot read the arrays"):
        LabelModel.load(header_and_arrays, embedding_model="fake-32")
    assert not marker.exists(), "nothing in a planted file was executed"


def test_an_inconsistent_artefact_is_refused_before_use(fitted: LabelModel, tmp_path: Path) -> None:
    path = tmp_path / "label_model.bin"
    fitted.save(path)
    with pytest.raises(IndexCorrupt, match="stacker"):
        LabelModel.load(
            _rewrite_arrays(path, **{"stacker.coef": np.zeros((4, 3))}), embedding_model="fake-32"
        )
    with pytest.raises(IndexCorrupt, match="knn_labels"):
        LabelModel.load(_rewrite_arrays(path, knn_labels=np.zeros(3, np.int32)), embedding_model="fake-32")


def test_nearest_ticket_per_label_by_character_ngrams() -> None:
    """The ``nearest`` signal: per label, the cosine of the closest history ticket in character n-grams,
    which finds a near-duplicate in any language (MiniLM reads English only); never the ticket itself."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from retrieval.label_neighbours import nearest_by_label

    history = [
        "Doppelte Abbuchung für März auf meiner Kreditkarte",
        "Passwort zurücksetzen geht nicht",
        "Doppelte Abbuchung im Februar",
        "Drucker druckt nicht",
    ]
    labels = np.array([0, 1, 0, 2])
    rows = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).fit(history)
    matrix = rows.transform(history)
    query = rows.transform(["Doppelte Abbuchung für März auf der Kreditkarte"])
    nearest = nearest_by_label(query, matrix, labels, 4)
    assert nearest[0].argmax() == 0 and nearest[0, 0] > 0.8
    assert nearest[0, 3] == 0.0  # no history ticket with label 3
    cosine = (matrix @ matrix.T).toarray()
    own = nearest_by_label(matrix, matrix, labels, 4, self_offset=0)
    assert own[1, 1] == 0.0  # its only ticket is itself
    assert own[0, 0] == pytest.approx(cosine[0, 2]) and own[2, 0] == pytest.approx(cosine[2, 0])
    # Only the latest tickets kept (rows 2 and 3): ticket 0 still finds ticket 2, ticket 2 not itself.
    latest = nearest_by_label(matrix, matrix[2:], labels[2:], 4, self_offset=2)
    assert latest[0, 0] == pytest.approx(cosine[0, 2]) and latest[2, 0] == 0.0
    assert latest[3, 2] == 0.0 and latest[1, 1] == 0.0


def test_the_nearest_signal_is_saved_and_checked(fitted: LabelModel, tmp_path: Path) -> None:
    assert fitted.nearest_matrix is not None and fitted.nearest_labels is not None
    assert "oof_accuracy_nearest" in fitted.stats
    path = tmp_path / "label_model.bin"
    fitted.save(path)
    terms = len(fitted.char_vectorizer.vocabulary_)
    with pytest.raises(IndexCorrupt, match="nearest"):
        LabelModel.load(
            _rewrite_arrays(path, **{"nearest.indices": fitted.nearest_matrix.indices + terms}),
            embedding_model="fake-32",
        )
    with pytest.raises(IndexCorrupt, match="nearest"):
        LabelModel.load(
            _rewrite_arrays(path, **{"nearest.labels": fitted.nearest_labels[:-1]}), embedding_model="fake-32"
        )


def test_a_model_saved_before_the_nearest_signal_still_loads(fitted: LabelModel, tmp_path: Path) -> None:
    """An artefact of the four older signals (no ``signals`` in its manifest) predicts as it did."""
    import dataclasses

    from retrieval.label_model_parts import LinearScores, ScaledLinear

    width = 4 * len(fitted.labels)
    stacker = fitted.stacker
    legacy = dataclasses.replace(
        fitted,
        nearest_matrix=None,
        nearest_labels=None,
        stacker=ScaledLinear(
            mean=stacker.mean[:width],
            scale=stacker.scale[:width],
            linear=LinearScores(
                coef=np.ascontiguousarray(stacker.linear.coef[:, :width]),
                intercept=stacker.linear.intercept,
                classes_=stacker.linear.classes_,
            ),
        ),
    )
    path = tmp_path / "label_model.bin"
    legacy.save(path)
    old = _rewrite_manifest(path, lambda manifest: manifest.pop("signals"))
    loaded = LabelModel.load(old, embedding_model="fake-32", labels=list(TOPICS))
    assert loaded.nearest_matrix is None
    texts, vectors, _ = make_tickets(50, noise=0.3, seed=12)
    np.testing.assert_allclose(
        loaded.predict_proba(texts=texts, embeddings=vectors),
        legacy.predict_proba(texts=texts, embeddings=vectors),
        rtol=1e-12,
    )
    # A five-signal stacker over four signals' features does not add up: refused.
    fitted.save(path)
    with pytest.raises(IndexCorrupt, match="stacker reads"):
        LabelModel.load(
            _rewrite_manifest(path, lambda manifest: manifest.update(signals=list(LEGACY))),
            embedding_model="fake-32",
        )


LEGACY = ("semantic", "words", "chars", "neighbours")


def _rewrite_arrays(path: Path, **replace: np.ndarray) -> Path:
    """A copy of the artefact at ``path`` with some arrays replaced (pickled if they hold objects)."""
    return _rewrite(path, replace)


def _rewrite_manifest(path: Path, edit: Callable[[dict[str, Any]], object]) -> Path:
    """A copy of the artefact at ``path`` with its manifest edited in place by ``edit``."""
    return _rewrite(path, {}, edit)


def _rewrite(
    path: Path,
    replace: dict[str, np.ndarray],
    manifest_edit: Callable[[dict[str, Any]], object] | None = None,
) -> Path:
    import io
    import zipfile

    from retrieval._storage import read_container, write_container
    from retrieval.label_model import FORMAT_VERSION, MAGIC

    header, payload = read_container(path, MAGIC, format_version=FORMAT_VERSION)
    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays.update(replace)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, value, allow_pickle=True)
    if manifest_edit is not None:
        manifest_edit(header["manifest"])
    target = path.with_name("rewritten.bin")
    header = {k: v for k, v in header.items() if k not in ("payload_bytes", "payload_crc32")}
    write_container(target, MAGIC, header, buffer.getbuffer())
    return target
