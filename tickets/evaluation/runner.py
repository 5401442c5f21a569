"""Running TEST tickets through production's steps in one mode, one ticket at a time, resumably.

Modes: ``retrieval`` (label model + neighbours, no language model), ``model`` (the language model alone,
given the retrieved tickets as examples) and ``combined`` (what production does: the model consulted
only where the calibrated confidence is low, its choice weighed by what history says it is worth).
Each finished ticket is appended to ``results-<mode>.jsonl``; a re-run skips the tickets already there.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference_app.llm.redaction import redact
from inference_app.llm.types import Neighbour, Taxonomy
from retrieval.answer_choice import CANDIDATES as ANSWER_CANDIDATES
from tickets.evaluation.data import EvalTicket
from tickets.evaluation.workspace import Workspace
from tickets.pipeline.policy import (
    DecisionPolicy,
    decide_category,
    fit_model_weight,
    policy_from_stats,
    should_consult_model,
)
from tickets.pipeline.text import prepare

if TYPE_CHECKING:
    from inference_app.llm.classify import ModelVerdict, Pricing
    from inference_app.llm.types import ChatBackend
    from tickets.evaluation.suggestions import SuggestionSetup

MODES = ("retrieval", "model", "combined")
NEIGHBOURS = 5
CANDIDATES = 5
STAGES = ("input", "embed", "retrieval", "classifier", "model", "decision")


def prepare_text(text: str) -> str:
    """The input step production applies before embedding and prompting (``tickets.pipeline.input``): the
    text normalised (markup, control characters, whitespace) and its personal data redacted."""
    prepared = prepare(subject="", body=text)
    return redact(prepared.text or text).text


@dataclass
class ModelAccess:
    """The language model as the evaluation uses it."""

    backend: ChatBackend
    pricing: Pricing
    company: str = "the company"
    samples: int = 1

    def ask(
        self, text: str, neighbours: Sequence[Neighbour], taxonomy: Taxonomy, candidates: Sequence[str]
    ) -> ModelVerdict:
        from inference_app.llm.classify import ask_model

        return ask_model(
            backend=self.backend,
            ticket_text=text,
            neighbours=neighbours,
            taxonomy=taxonomy,
            candidates=candidates,
            company=self.company,
            samples=self.samples,
            pricing=self.pricing,
        )


def results_path(output: Path, mode: str) -> Path:
    return output / f"results-{mode}.jsonl"


def read_results(path: Path) -> list[dict[str, Any]]:
    """Finished tickets of a mode; a line cut short by an interruption is dropped (and redone)."""
    rows: list[dict[str, Any]] = []
    if not path.is_file():
        return rows
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break
            if isinstance(row, dict) and "index" in row:
                rows.append(row)
    return rows


def _rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    """Drop a torn last line so appends start on a clean line."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class Runner:
    """Runs test tickets against one workspace."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        model: ModelAccess | None,
        policy: DecisionPolicy | None = None,
        suggestions: SuggestionSetup | None = None,
        draft_replies: bool = False,
    ) -> None:
        self.ws = workspace
        self.model = model
        self.suggestions = suggestions
        self.draft_replies = draft_replies
        stats = workspace.label_model.stats if workspace.label_model is not None else {}
        self.policy = policy or policy_from_stats(stats)
        self.taxonomy = Taxonomy(
            categories=workspace.categories,
            teams=tuple(sorted(set(workspace.team_of_category.values()))),
            team_of_category=workspace.team_of_category,
        )

    # -- one ticket -----------------------------------------------------------------------------------

    def _neighbours(self, hits: Sequence[Any]) -> list[Neighbour]:
        history = self.ws.history
        return [
            Neighbour(
                doc_id=int(hit.id),
                score=float(hit.dense_score if hit.dense_score is not None else hit.score),
                category=hit.category or "",
                team=hit.team or "",
                text=prepare_text(history[hit.id].text),
                priority=history[hit.id].priority,
                resolution=history[hit.id].resolution,
            )
            for hit in hits
        ]

    def _candidates(self, neighbours: Sequence[Neighbour], probs: dict[str, float] | None) -> list[str]:
        ranked = sorted(probs, key=lambda c: -probs[c])[:CANDIDATES] if probs else []
        for neighbour in neighbours:
            if neighbour.category and neighbour.category not in ranked:
                ranked.append(neighbour.category)
        return ranked

    def classify(
        self,
        text: str,
        mode: str,
        *,
        exclude: Sequence[int] = (),
        probs_override: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """One ticket through the stages of ``mode``; the decision, evidence and per-stage timings."""
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = (now - clock) * 1000.0
            clock = now

        prepared = prepare_text(text)
        lap("input")
        vector = np.asarray(self.ws.embedder.encode([prepared]), dtype=np.float32)
        lap("embed")
        # The answer ranker looks at more candidates than the decision's NEIGHBOURS (same fused order).
        found = self.ws.kb.search(prepared, ANSWER_CANDIDATES, query_vector=vector[0], exclude_ids=exclude)
        hits = found[:NEIGHBOURS]
        neighbours = self._neighbours(hits)
        lap("retrieval")
        probs = probs_override
        if probs is None and self.ws.label_model is not None and mode != "model":
            from retrieval.novelty import predict_with_unknown

            probs = predict_with_unknown(self.ws.label_model, texts=[prepared], embeddings=vector)[0]
        lap("classifier")
        verdict = None
        consulted = False
        if mode == "model":
            consulted = True
        elif mode == "combined":
            base = decide_category(neighbours=neighbours, label_probs=probs, model_category=None)
            consulted = should_consult_model(
                decision=base, policy=self.policy, model_available=self.model is not None
            )
        if consulted and self.model is not None:
            verdict = self.model.ask(prepared, neighbours, self.taxonomy, self._candidates(neighbours, probs))
        lap("model")
        model_category = verdict.category if verdict is not None else None
        if mode == "model":
            decision = decide_category(
                neighbours=[], label_probs=None, model_category=model_category, model_consulted=True
            )
        else:
            decision = decide_category(
                neighbours=neighbours,
                label_probs=probs,
                model_category=model_category,
                model_consulted=consulted,
                allowed=self.ws.categories,
                policy=self.policy,
            )
        lap("decision")
        calls = verdict.calls if verdict is not None else ()
        return {
            "predicted": decision.category,
            "confidence": decision.confidence,
            "source": decision.source,
            "degraded": decision.degraded,
            "consulted": consulted,
            "model_category": model_category,
            "hit_labels": [hit.category for hit in hits],
            "latency_ms": {**timings, "total": sum(timings.values())},
            "prompt_tokens": sum(call.prompt_tokens for call in calls),
            "completion_tokens": sum(call.completion_tokens for call in calls),
            "cost_usd": sum(call.cost_usd for call in calls),
            "energy_wh": sum(call.energy_wh for call in calls),
            "probs": probs,
            "found": found,
            "text": prepared,
            "vector": vector[0],
        }

    # -- a whole mode ---------------------------------------------------------------------------------

    def run(
        self,
        mode: str,
        tests: Sequence[EvalTicket],
        output: Path,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Every test ticket in ``mode``, resuming after the ones already in the results file."""
        path = results_path(output, mode)
        done = read_results(path)
        _rewrite(path, done)
        if progress and done:
            progress(len(done))
        finished = {row["index"] for row in done}
        with path.open("a", encoding="utf-8") as handle:
            for index, ticket in enumerate(tests):
                if index in finished:
                    continue
                result = self.classify(ticket.text, mode)
                result.pop("probs")
                found, prepared, vector = result.pop("found"), result.pop("text"), result.pop("vector")
                if self.suggestions is not None:
                    result["suggestion"] = self._suggest(
                        mode, index, prepared, vector, found, result["predicted"]
                    )
                predicted = result["predicted"]
                row = {
                    "index": index,
                    "line": ticket.line,
                    "truth": ticket.category,
                    "team_truth": ticket.team,
                    "team_predicted": self.ws.team_of_category.get(predicted) if predicted else None,
                    **result,
                }
                handle.write(json.dumps(row) + "\n")
                handle.flush()
                done.append(row)
                if progress:
                    progress(1)
        return done

    def _suggest(
        self,
        mode: str,
        index: int,
        prepared: str,
        vector: np.ndarray,
        found: Sequence[Any],
        predicted: str | None,
    ) -> dict[str, Any]:
        from tickets.evaluation.suggestions import drafter, suggest

        assert self.suggestions is not None
        draft = None
        if self.draft_replies and self.model is not None and mode != "retrieval":
            draft = drafter(
                self.ws, self.model.backend, self.model.pricing, self.model.company, prepared, found
            )
        return suggest(
            self.suggestions,
            self.ws,
            hits=found,
            decided_category=predicted,
            test_index=index,
            query_vector=vector,
            draft=draft,
        )

    # -- what the model is worth, from history -------------------------------------------------------

    def calibrate_model_weight(
        self, size: int, *, seed: int = 0, progress: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """Ask the model about up to ``size`` history tickets the label model is unsure of (out-of-fold),
        retrieving without the ticket itself, and fit the weight its choices deserve."""
        model = self.ws.label_model
        if self.model is None or model is None or model.oof_proba is None or size <= 0:
            return {"size": 0, "model_weight": self.policy.model_weight, "learned": False}
        oof = model.oof_proba.astype(np.float64)
        unsure = np.flatnonzero(oof.max(axis=1) < self.policy.consult_below)
        chosen = np.random.default_rng(seed).permutation(unsure)[:size]
        observations = []
        agreed = 0
        for row in chosen:
            ticket = self.ws.history[int(row)]
            probs = {label: float(p) for label, p in zip(model.labels, oof[row], strict=True) if p > 1e-4}
            result = self.classify(ticket.text, "combined", exclude=[int(row)], probs_override=probs)
            choice = result["model_category"]
            agreed += int(choice == ticket.category)
            observations.append((probs, choice, ticket.category))
            if progress:
                progress(1)
        if not observations:
            return {
                "size": 0,
                "model_weight": self.policy.model_weight,
                "learned": False,
                "reason": "no history ticket below the consultation threshold",
            }
        weight = fit_model_weight(observations)
        self.policy = DecisionPolicy(
            consult_below=self.policy.consult_below,
            model_weight=weight,
            min_neighbours=self.policy.min_neighbours,
        )
        return {
            "size": len(observations),
            "model_accuracy_on_unsure": agreed / len(observations) if observations else None,
            "model_weight": weight,
            "learned": True,
        }


def iter_modes(modes: Sequence[str]) -> Iterator[str]:
    for mode in MODES:
        if mode in modes:
            yield mode
