"""Does language-aware evidence close tobi-bueck's German gap? Measured on ``bench_evaluate``'s split.

Reuses the workspace an evaluate run left (``python benchmarks/bench_evaluate.py --dataset tobi
--routing-only --output DIR -- --limit 800``): its history vectors and label model, fitted on both
languages (production's). Compares, on the same first 800 test tickets, grouped by the production
language detector (label model's top category, no language model):

- ``joint``: production's label model;
- ``joint x language prior``: its probabilities times each category's share in the ticket's language's
  history over its overall share;
- ``per-language``: a label model fitted on the history in the ticket's language only;
- ``blend``: the mean of ``joint`` and ``per-language``;
- ``en-only on N``: English models fitted on N English history tickets (seeded samples), to tell a
  weaker handling of German from a smaller German history.

    python benchmarks/bench_language_evidence.py DIR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    base = Path(sys.argv[1]) / "tobi"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inference_app.settings")
    import django

    django.setup()
    from django.conf import settings

    from retrieval.embeddings import get_embedder
    from retrieval.label_model import FitOptions, LabelModel, fit_label_model
    from tickets.evaluation.data import read_rows
    from tickets.evaluation.runner import prepare_text
    from tickets.pipeline.language import detect_language
    from tickets.services.history_files import ColumnMap

    workspace = base / "report" / "workspace"
    columns = ColumnMap(subject="subject", body="body", category="queue")
    history = read_rows(base / "tobi_history.csv", columns=columns, team_map={}).tickets
    test = read_rows(base / "tobi_test.csv", columns=columns, team_map={}, limit=800).tickets
    embedder = get_embedder(settings.EMBEDDING_MODEL, threads=settings.SWITCHBOARD_THREADS)
    history_vectors = np.load(workspace / "history_vectors.npy")
    joint = LabelModel.load(workspace / "label_model.bin", embedding_model=embedder.name)
    texts = [prepare_text(ticket.text) for ticket in test]
    vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
    history_language = np.asarray([detect_language(ticket.text) or "?" for ticket in history])
    test_language = np.asarray([detect_language(text) or "?" for text in texts])
    history_y = np.asarray([ticket.category for ticket in history])
    truth = np.asarray([ticket.category for ticket in test])
    labels = list(joint.labels)

    def show(name: str, proba: np.ndarray, rows: np.ndarray | None = None) -> None:
        chosen = np.asarray(labels)[proba.argmax(axis=1)]
        rows = np.arange(len(test)) if rows is None else rows
        parts = [f"all={(chosen[rows] == truth[rows]).mean():.4f}"] if len(rows) == len(test) else []
        for language in ("en", "de"):
            mask = np.isin(rows, np.flatnonzero(test_language == language))
            if mask.any():
                parts.append(f"{language}={(chosen[rows[mask]] == truth[rows[mask]]).mean():.4f}")
        print(f"{name:34s} {' '.join(parts)}", flush=True)

    def fit(rows: np.ndarray) -> LabelModel:
        return fit_label_model(
            texts=[history[i].text for i in rows],
            embeddings=history_vectors[rows],
            labels=list(history_y[rows]),
            embedding_model=embedder.name,
            options=FitOptions(unknown_groups=0),
        )

    def in_joint_order(model: LabelModel, rows: np.ndarray) -> np.ndarray:
        proba = model.predict_proba(texts=[texts[i] for i in rows], embeddings=vectors[rows])
        full = np.zeros((len(rows), len(labels)))
        for column, label in enumerate(model.labels):
            full[:, labels.index(label)] = proba[:, column]
        return full

    for name, found in (("history", history_language), ("test", test_language)):
        values, counts = np.unique(found, return_counts=True)
        print(f"{name}: " + " ".join(f"{v}={int(c)}" for v, c in zip(values, counts, strict=True)))
    base_proba = joint.predict_proba(texts=texts, embeddings=vectors)
    show("joint (production)", base_proba)
    prior = np.asarray([(history_y == label).mean() for label in labels])
    with_prior = base_proba.copy()
    per_language = base_proba.copy()
    for language in ("en", "de"):
        in_history = history_language == language
        rows = np.flatnonzero(test_language == language)
        share = np.asarray(
            [((history_y[in_history] == c).sum() + 1) / (in_history.sum() + len(labels)) for c in labels]
        )
        with_prior[rows] = base_proba[rows] * share / prior
        per_language[rows] = in_joint_order(fit(np.flatnonzero(in_history)), rows)
    show("joint x language prior", with_prior / with_prior.sum(axis=1, keepdims=True))
    show("per-language label models", per_language)
    show("blend joint + per-language", (base_proba + per_language) / 2)
    english = np.flatnonzero(history_language == "en")
    english_test = np.flatnonzero(test_language == "en")
    rng = np.random.default_rng(0)
    for size in (int((history_language == "de").sum()), 1600):
        sample = np.sort(rng.choice(english, size, replace=False))
        proba = np.zeros((len(test), len(labels)))
        proba[english_test] = in_joint_order(fit(sample), english_test)
        show(f"en-only on {size} en history", proba, english_test)


if __name__ == "__main__":
    main()
