"""Artefacts as NumPy arrays plus a JSON manifest: round trip, refusals, and the label model's parts
computing exactly what the fitted scikit-learn estimators compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.array_artefact import load_artefact, pack_strings, save_artefact, unpack_strings
from retrieval.errors import IndexCorrupt, IndexFormatMismatch
from retrieval.label_model_parts import LinearScores, ScaledLinear, vectorizer_from_state, vectorizer_state

MAGIC = b"SBTEST01"


def test_round_trip_is_atomic_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    arrays: dict[str, np.ndarray] = {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3),
        "ids": np.array([3, 1], dtype=np.int64),
    }
    save_artefact(path, magic=MAGIC, format_version=1, manifest={"name": "ranker", "c": 0.5}, arrays=arrays)
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"], "no temporary file left"
    loaded = load_artefact(path, magic=MAGIC, format_version=1)
    assert loaded.manifest == {"name": "ranker", "c": 0.5}
    np.testing.assert_array_equal(loaded.array("w", kind="f", shape=(2, 3)), arrays["w"])
    assert loaded.field("c", float) == 0.5
    with pytest.raises(IndexCorrupt, match="expected kind"):
        loaded.array("ids", kind="f")
    with pytest.raises(IndexCorrupt, match="missing"):
        loaded.array("bias")
    with pytest.raises(IndexCorrupt, match="manifest entry 'name'"):
        loaded.field("name", int)
    with pytest.raises(IndexFormatMismatch):
        load_artefact(path, magic=MAGIC, format_version=2)
    with pytest.raises(IndexCorrupt, match="bad magic"):
        load_artefact(path, magic=b"SBOTHER1", format_version=1)


def test_only_numbers_are_saved(tmp_path: Path) -> None:
    for bad in (np.array([{"a": 1}], dtype=object), np.array(["text"])):
        with pytest.raises(ValueError, match="only numeric arrays"):
            save_artefact(tmp_path / "x.bin", magic=MAGIC, format_version=1, manifest={}, arrays={"a": bad})
    with pytest.raises(TypeError):
        save_artefact(tmp_path / "x.bin", magic=MAGIC, format_version=1, manifest={"f": print}, arrays={})
    assert not list(tmp_path.iterdir()), "nothing written when refused"


def test_strings_of_any_kind_pack_and_unpack() -> None:
    strings = ["", "a\nb", "Ünïcödé ✓", " padded ", "\x00"]
    data, ends = pack_strings(strings)
    assert data.dtype == np.uint8 and ends.dtype == np.int64
    assert unpack_strings(data, ends) == strings
    assert unpack_strings(*pack_strings([])) == []
    with pytest.raises(IndexCorrupt, match="offsets"):
        unpack_strings(data, ends[::-1].copy())
    with pytest.raises(IndexCorrupt, match="UTF-8"):
        unpack_strings(np.array([0xFF], np.uint8), np.array([1]))


@pytest.mark.parametrize("n_classes", [2, 4])
def test_the_parts_compute_what_scikit_learn_computes(n_classes: int, tmp_path: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(n_classes)
    words = ["refund", "invoice", "login", "password", "laptop", "printer", "parcel", "courier", "help"]
    texts = [" ".join(rng.choice(words, size=5)) for _ in range(300)]
    held_out = [" ".join(rng.choice([*words, "unseen", "Ärger"], size=4)) for _ in range(50)]
    y = rng.integers(n_classes, size=300)
    dense = rng.normal(size=(300, 16)).astype(np.float32) + y[:, None]
    dense_held = rng.normal(size=(50, 16)).astype(np.float32)

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, dtype=np.float32)
    matrix = vectorizer.fit_transform(texts)
    params, arrays = vectorizer_state(vectorizer, "v")
    save_artefact(tmp_path / "v.bin", magic=MAGIC, format_version=1, manifest={"v": params}, arrays=arrays)
    saved = load_artefact(tmp_path / "v.bin", magic=MAGIC, format_version=1)
    rebuilt = vectorizer_from_state(saved, "v", saved.manifest["v"])
    assert (rebuilt.transform(held_out) != vectorizer.transform(held_out)).nnz == 0

    svc = LinearSVC(C=0.5).fit(matrix, y)
    np.testing.assert_array_equal(
        LinearScores.of(svc).decision_function(rebuilt.transform(held_out)),
        svc.decision_function(vectorizer.transform(held_out)),
    )
    sgd = SGDClassifier(loss="log_loss", max_iter=30, tol=None, random_state=0).fit(dense, y)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(
            LinearScores.of(sgd).predict_log_proba(dense_held), sgd.predict_log_proba(dense_held), rtol=1e-12
        )
    # The stacker's features are float64 (the label model stacks float64 signals).
    features, features_held = dense.astype(np.float64), dense_held.astype(np.float64)
    stacker = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, y)
    np.testing.assert_allclose(
        ScaledLinear.of(stacker).decision_function(features_held),
        stacker.decision_function(features_held),
        rtol=1e-12,
    )
