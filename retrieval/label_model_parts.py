"""The label model's fitted parts as plain arrays: what is saved, and computed with NumPy on load.

A fitted linear scikit-learn classifier is its ``coef_``, ``intercept_`` and ``classes_``; its
``decision_function`` is one matrix product. :class:`LinearScores` holds exactly that (and the
one-vs-rest log-loss probabilities of ``SGDClassifier``); :class:`ScaledLinear` puts a
``StandardScaler``'s ``mean_`` / ``scale_`` in front (the stacker). They compute what the estimators
compute, the same operations in the same order, so a loaded model gives the fitted model's numbers.

The TF-IDF vectorizers are rebuilt as scikit-learn ``TfidfVectorizer`` objects with a fixed vocabulary
and their ``idf_`` (public, settable attributes): tokenisation stays scikit-learn's own. Only the
parameters listed in :data:`VECTORIZER_PARAMS`, with plain JSON values, are saved and accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from retrieval.array_artefact import Artefact, pack_strings, unpack_strings
from retrieval.errors import IndexCorrupt

VECTORIZER_PARAMS = (
    "analyzer",
    "binary",
    "lowercase",
    "ngram_range",
    "norm",
    "smooth_idf",
    "strip_accents",
    "sublinear_tf",
    "token_pattern",
    "use_idf",
)
_DTYPES = {"float32": np.float32, "float64": np.float64}
_ANALYZERS = ("word", "char", "char_wb")


@dataclass(frozen=True)
class LinearScores:
    """A fitted linear classifier: ``decision_function(x) = x @ coef.T + intercept``."""

    coef: np.ndarray
    intercept: np.ndarray
    classes_: np.ndarray

    @classmethod
    def of(cls, estimator: Any) -> LinearScores:
        """The arrays of a fitted ``SGDClassifier``, ``LinearSVC`` or ``LogisticRegression``."""
        return cls(
            coef=np.ascontiguousarray(estimator.coef_),
            intercept=np.ascontiguousarray(estimator.intercept_),
            classes_=np.asarray(estimator.classes_, dtype=np.int64),
        )

    def decision_function(self, features: Any) -> np.ndarray:
        """As scikit-learn's: one column per class, or a single score for two classes."""
        scores: np.ndarray = np.asarray(features @ self.coef.T) + self.intercept
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    def predict_log_proba(self, features: Any) -> np.ndarray:
        """``SGDClassifier(loss="log_loss")``'s: logistic per class, one-vs-rest normalised."""
        from scipy.special import expit

        proba = expit(self.decision_function(features))
        if proba.ndim == 1:
            proba = np.vstack([1 - proba, proba]).T
        else:
            proba /= proba.sum(axis=1).reshape((proba.shape[0], -1))
        result: np.ndarray = np.log(proba)
        return result

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}.coef": self.coef,
            f"{prefix}.intercept": self.intercept,
            f"{prefix}.classes": self.classes_,
        }

    @classmethod
    def from_arrays(
        cls, artefact: Artefact, prefix: str, *, n_labels: int, n_features: int | None
    ) -> LinearScores:
        coef = artefact.array(f"{prefix}.coef", kind="f", ndim=2)
        classes = artefact.array(f"{prefix}.classes", kind="iu", ndim=1)
        intercept = artefact.array(f"{prefix}.intercept", kind="f", shape=(coef.shape[0],))
        rows = 1 if classes.size == 2 else classes.size
        if (
            classes.size < 2
            or coef.shape[0] != rows
            or (n_features is not None and coef.shape[1] != n_features)
            or classes.min() < 0
            or classes.max() >= n_labels
            or np.unique(classes).size != classes.size
        ):
            raise IndexCorrupt(
                f"{artefact.path}: inconsistent {prefix} model (coef {coef.shape}, {classes.size} classes)"
            )
        return cls(coef=coef, intercept=intercept, classes_=classes.astype(np.int64))


@dataclass(frozen=True)
class ScaledLinear:
    """``StandardScaler`` then a linear classifier (the stacker's pipeline)."""

    mean: np.ndarray
    scale: np.ndarray
    linear: LinearScores

    @classmethod
    def of(cls, pipeline: Any) -> ScaledLinear:
        scaler, model = pipeline[0], pipeline[-1]
        return cls(
            mean=np.asarray(scaler.mean_), scale=np.asarray(scaler.scale_), linear=LinearScores.of(model)
        )

    @property
    def classes_(self) -> np.ndarray:
        return self.linear.classes_

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        scaled = np.array(features, dtype=np.float64)
        scaled -= self.mean
        scaled /= self.scale
        return self.linear.decision_function(scaled)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.mean": self.mean, f"{prefix}.scale": self.scale, **self.linear.arrays(prefix)}

    @classmethod
    def from_arrays(cls, artefact: Artefact, prefix: str, *, n_labels: int) -> ScaledLinear:
        linear = LinearScores.from_arrays(artefact, prefix, n_labels=n_labels, n_features=None)
        width = (linear.coef.shape[1],)
        mean = artefact.array(f"{prefix}.mean", kind="f", shape=width)
        scale = artefact.array(f"{prefix}.scale", kind="f", shape=width)
        return cls(mean=mean, scale=scale, linear=linear)


def vectorizer_state(vectorizer: Any, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A fitted ``TfidfVectorizer`` as JSON parameters and arrays (vocabulary in index order, idf)."""
    params = vectorizer.get_params()
    manifest = {name: params[name] for name in VECTORIZER_PARAMS}
    manifest["ngram_range"] = list(manifest["ngram_range"])
    manifest["dtype"] = np.dtype(params["dtype"]).name
    terms = [""] * len(vectorizer.vocabulary_)
    for term, column in vectorizer.vocabulary_.items():
        terms[column] = term
    data, ends = pack_strings(terms)
    arrays = {
        f"{prefix}.terms": data,
        f"{prefix}.term_ends": ends,
        f"{prefix}.idf": np.asarray(vectorizer.idf_),
    }
    return manifest, arrays


def vectorizer_from_state(artefact: Artefact, prefix: str, params: Any) -> Any:
    """Rebuild the ``TfidfVectorizer`` saved by :func:`vectorizer_state`; ``IndexCorrupt`` if it does
    not add up."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    where = f"{artefact.path}: {prefix} vectorizer"
    if not isinstance(params, dict) or set(params) != {*VECTORIZER_PARAMS, "dtype"}:
        raise IndexCorrupt(f"{where}: unexpected parameters")
    ngram = params["ngram_range"]
    plain = all(
        value is None or isinstance(value, str | bool)
        for key, value in params.items()
        if key != "ngram_range"
    )
    if (
        not plain
        or params["analyzer"] not in _ANALYZERS
        or params["dtype"] not in _DTYPES
        or params["norm"] not in (None, "l1", "l2")
        or not (
            isinstance(ngram, list) and len(ngram) == 2 and all(type(n) is int and 0 < n < 20 for n in ngram)
        )
    ):
        raise IndexCorrupt(f"{where}: unexpected parameters")
    terms = unpack_strings(
        artefact.array(f"{prefix}.terms", kind="u"),
        artefact.array(f"{prefix}.term_ends", kind="iu"),
        where=where,
    )
    idf = artefact.array(f"{prefix}.idf", kind="f", shape=(len(terms),))
    if len(set(terms)) != len(terms) or not terms:
        raise IndexCorrupt(f"{where}: vocabulary is empty or repeats terms")
    settings = {**params, "ngram_range": tuple(ngram), "dtype": _DTYPES[params["dtype"]]}
    vectorizer = TfidfVectorizer(vocabulary={term: i for i, term in enumerate(terms)}, **settings)
    if params["use_idf"]:
        vectorizer.idf_ = idf
    return vectorizer
