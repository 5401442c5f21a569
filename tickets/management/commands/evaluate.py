"""``python manage.py evaluate --history H --test T --output DIR``: accuracy, calibration, cost and speed
of Switchboard's decisions on a company's own history, before anyone trusts them."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from tickets.evaluation.data import EvaluationInputError, read_rows
from tickets.evaluation.languages import language_report, languages_of
from tickets.evaluation.report import mode_report, write_reports
from tickets.evaluation.runner import MODES, ModelAccess, Runner, iter_modes
from tickets.evaluation.workspace import build_workspace, file_digest, prepare_directory
from tickets.management.commands.import_tickets import add_column_arguments, columns_from_options
from tickets.services.history_files import FORMATS


def _advance(bar: tqdm[Any]) -> Callable[[int], None]:
    def advance(count: int) -> None:
        bar.update(count)

    return advance


class Command(BaseCommand):
    help = (
        "Replay TEST tickets through the pipeline's steps against a workspace built from HISTORY only "
        "(never the live data) and write report.json and report.html to DIR. Re-running resumes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--history", type=Path, required=True, help="Resolved, labelled history.")
        parser.add_argument("--test", type=Path, required=True, help="Labelled tickets to evaluate on.")
        parser.add_argument("--output", type=Path, required=True, help="Folder for the reports (and resume).")
        parser.add_argument("--format", choices=FORMATS, help="Default: from each file's extension.")
        add_column_arguments(parser)
        parser.add_argument(
            "--modes",
            default="retrieval,model,combined",
            help=f"Comma-separated subset of {','.join(MODES)} (default: all).",
        )
        parser.add_argument("--limit", type=int, help="Evaluate only the first N test rows.")
        parser.add_argument("--history-limit", type=int, help="Use only the first N history rows.")
        parser.add_argument(
            "--processes",
            type=int,
            default=1,
            help="Embed the history and the answers in this many processes (one thread each).",
        )
        parser.add_argument("--backend", choices=("llamacpp", "openai"), help="Default: LLM_BACKEND.")
        parser.add_argument("--llm-base-url", help="Default: LLM_BASE_URL.")
        parser.add_argument("--llm-model", help="Default: LLM_MODEL.")
        parser.add_argument(
            "--samples", type=int, default=1, help="Model answers per ticket (majority vote)."
        )
        parser.add_argument(
            "--calibration-size",
            type=int,
            default=100,
            help="History tickets the model is asked about, to learn what its choice is worth (combined).",
        )
        parser.add_argument(
            "--model-weight",
            type=float,
            help="Use this weight for the model's choice instead of learning it.",
        )
        parser.add_argument(
            "--company", default="the company", help="The company's name, as the prompt says it."
        )
        parser.add_argument(
            "--unknown-categories",
            type=int,
            default=0,
            help="Hide K history categories (seeded, reported): their test tickets should go to triage.",
        )
        parser.add_argument("--unknown-label", help="Test rows with this label are out of scope.")
        parser.add_argument("--unknown-seed", type=int, default=0, help="Seed choosing the hidden ones.")
        parser.add_argument(
            "--unknown-groups",
            type=int,
            help="Leave-categories-out groups the novelty step learns from (0: none; default: the fit's).",
        )
        parser.add_argument(
            "--tune-embeddings",
            action="store_true",
            help="Tune the embedding model on the history and use it where it beats the shipped model on "
            "held-out history (both figures and the decision are reported).",
        )
        parser.add_argument("--tuning-seconds", type=float, help="Default: EMBEDDING_TUNING_SECONDS.")
        parser.add_argument("--tuning-steps", type=int, help="Default: EMBEDDING_TUNING_STEPS.")
        parser.add_argument(
            "--tuning-min-gain",
            type=float,
            default=0.0,
            help="Held-out accuracy gain the tuned model must exceed to be kept (default 0).",
        )
        parser.add_argument(
            "--suggestion-min-confidence",
            type=float,
            help="Suggestion confidence below which no answer is suggested (default: "
            "SUGGESTION_MIN_CONFIDENCE). Suggestions are measured when --resolution-column is given.",
        )
        parser.add_argument(
            "--draft-replies",
            action="store_true",
            help="In the model and combined modes, let the model draft the reply from the chosen answers "
            "(checked for grounding; a failed draft falls back to the stored answer).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        modes = [mode.strip() for mode in options["modes"].split(",") if mode.strip()]
        unknown = sorted(set(modes) - set(MODES))
        if unknown or not modes:
            raise CommandError(
                f"unknown mode(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODES)}"
            )
        columns, team_map = columns_from_options(options)
        output: Path = options["output"]
        try:
            history = read_rows(
                options["history"],
                columns=columns,
                team_map=team_map,
                file_format=options["format"],
                limit=options["history_limit"],
            )
            tests = read_rows(
                options["test"],
                columns=columns,
                team_map=team_map,
                file_format=options["format"],
                limit=options["limit"],
            )
        except EvaluationInputError as exc:
            raise CommandError(str(exc)) from None
        hidden: list[str] = []
        if options["unknown_categories"] or options["unknown_label"]:
            from tickets.evaluation.unknown_topics import hide_categories

            try:
                kept, hidden = hide_categories(
                    history.tickets,
                    count=options["unknown_categories"],
                    label=options["unknown_label"],
                    seed=options["unknown_seed"],
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            history = type(history)(kept, history.skipped)
            self.stdout.write(f"hidden categories (unknown topics): {', '.join(hidden)}")
        if not history.tickets:
            raise CommandError(f"{options['history']}: no usable labelled rows")
        if not tests.tickets:
            raise CommandError(f"{options['test']}: no usable labelled rows")
        self.stdout.write(
            f"history: {len(history.tickets)} tickets ({len(history.skipped)} rows skipped); "
            f"test: {len(tests.tickets)} tickets ({len(tests.skipped)} rows skipped)"
        )

        from retrieval.embeddings import get_embedder
        from retrieval.label_model import FitOptions

        embedder = get_embedder(settings.EMBEDDING_MODEL, threads=settings.SWITCHBOARD_THREADS)
        fit_options = FitOptions()
        if options["unknown_groups"] is not None:
            fit_options = FitOptions(unknown_groups=max(0, options["unknown_groups"]))
        processes = max(1, options["processes"])
        tuning: dict[str, Any] | None = None
        if options["tune_embeddings"]:
            embedder, tuning = self._tune(options, history.tickets, embedder, hidden)
            if tuning["kept"]:
                processes = 1  # the tuned model is registered in this process only
        fingerprint = {
            "history": file_digest(options["history"]),
            "test": file_digest(options["test"]),
            "columns": repr(columns),
            "team_map": team_map,
            "history_limit": options["history_limit"],
            "embedding_model": embedder.name,
            **({"hidden_categories": hidden} if hidden else {}),
        }
        output.mkdir(parents=True, exist_ok=True)
        directory, resumed = prepare_directory(output, fingerprint)
        if resumed:
            self.stdout.write(f"resuming the run in {output}")
        with tqdm(
            total=len(history.tickets), desc="embedding history", unit=" tickets", disable=None
        ) as embed_bar:
            fit_bar: tqdm[Any] | None = None

            def fit_progress(step: str, done: int, total: int) -> None:
                nonlocal fit_bar
                if fit_bar is None:
                    fit_bar = tqdm(total=total, desc="fitting the label model", unit=" steps", disable=None)
                fit_bar.set_postfix_str(step)
                fit_bar.update(done - fit_bar.n)

            workspace = build_workspace(
                directory,
                history.tickets,
                embedder=embedder,
                team_map=team_map,
                processes=processes,
                threads=settings.SWITCHBOARD_THREADS,
                options=fit_options,
                embed_progress=_advance(embed_bar),
                fit_progress=fit_progress,
            )
            if fit_bar is not None:
                fit_bar.close()
        model = self._model_access(options) if {"model", "combined"} & set(modes) else None
        suggestions = None
        if columns.resolution:
            from tickets.evaluation.suggestions import prepare as prepare_suggestions

            with tqdm(desc="embedding answers", unit=" answers", disable=None) as bar:
                suggestions = prepare_suggestions(
                    workspace,
                    tests.tickets,
                    min_confidence=options["suggestion_min_confidence"],
                    processes=max(1, options["processes"]),
                    threads=settings.SWITCHBOARD_THREADS,
                    progress=_advance(bar),
                )
        runner = Runner(
            workspace, model=model, suggestions=suggestions, draft_replies=options["draft_replies"]
        )
        calibration: dict[str, Any] = {}
        if "combined" in modes and model is not None:
            if options["model_weight"] is not None:
                runner.policy = type(runner.policy)(
                    consult_below=runner.policy.consult_below,
                    model_weight=options["model_weight"],
                    min_neighbours=runner.policy.min_neighbours,
                )
                calibration = {"model_weight": options["model_weight"], "learned": False}
            else:
                with tqdm(
                    total=options["calibration_size"], desc="weighing the model on history", disable=None
                ) as bar:
                    calibration = runner.calibrate_model_weight(
                        options["calibration_size"], progress=_advance(bar)
                    )
        reports: dict[str, Any] = {}
        languages = (languages_of(tests.tickets), languages_of(history.tickets))
        for mode in iter_modes(modes):
            with tqdm(total=len(tests.tickets), desc=f"{mode} mode", unit=" tickets", disable=None) as bar:
                rows = runner.run(mode, tests.tickets, output, progress=_advance(bar))
            reports[mode] = mode_report([row for row in rows if row["truth"] not in hidden])
            reports[mode]["per_language"] = language_report(
                rows, *languages, min_history=settings.LANGUAGE_MIN_HISTORY_TICKETS
            )
            if hidden:
                from tickets.evaluation.unknown_topics import learned_threshold, unknown_report

                reports[mode]["unknown_topics"] = unknown_report(
                    rows, hidden, learned_threshold=learned_threshold(workspace.label_model)
                )
        headline_mode = next(m for m in ("combined", "retrieval", "model") if m in reports)
        headline = reports[headline_mode]
        label_model = workspace.label_model
        report = {
            "modes": reports,
            "headline_mode": headline_mode,
            "run": {
                "history": str(options["history"]),
                "test": str(options["test"]),
                "history_tickets": len(history.tickets),
                "test_tickets": len(tests.tickets),
                "categories": len(workspace.categories),
                "embedding_model": embedder.name,
                "embedding_tuning": tuning,
                "backend": getattr(model.backend, "name", None) if model else None,
                "llm_model": getattr(model.backend, "model", None) if model else None,
                "policy": {
                    "consult_below": runner.policy.consult_below,
                    "model_weight": runner.policy.model_weight,
                },
                "model_calibration": calibration,
                "label_model_history_stats": (
                    {k: v for k, v in label_model.stats.items() if k != "class_counts"}
                    if label_model
                    else None
                ),
                "timings_s": {
                    **workspace.timings,
                    **(suggestions.timings if suggestions else {}),
                    "total_this_run": round(time.monotonic() - started, 1),
                },
                "suggestion_ranker": (
                    {
                        "min_confidence": suggestions.min_confidence,
                        "calibrated": suggestions.ranker.calibrated,
                        "history_stats": suggestions.ranker.stats,
                    }
                    if suggestions
                    else None
                ),
            },
        }
        write_reports(output, report)
        self.stdout.write(f"reports written to {output / 'report.json'} and {output / 'report.html'}")
        self.stdout.write(
            f"accuracy={headline['accuracy']:.4f} macro_f1={headline['macro_f1']:.4f} "
            f"coverage_at_precision_95={headline['coverage_at_precision_95']:.4f}"
        )

    def _tune(
        self, options: dict[str, Any], history: list[Any], shipped: Any, hidden: list[str]
    ) -> tuple[Any, dict[str, Any]]:
        from retrieval.embedding_services import tune_options
        from tickets.evaluation.tuning import choose_embedder

        budget = tune_options()
        budget = dataclasses.replace(
            budget,
            max_steps=options["tuning_steps"] or budget.max_steps,
            max_seconds=options["tuning_seconds"] or budget.max_seconds,
        )
        fingerprint = {
            "history": file_digest(options["history"]),
            "history_limit": options["history_limit"],
            "hidden_categories": hidden,
        }
        with tqdm(desc="tuning the embedding model", unit=" steps", disable=None) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            embedder, tuning = choose_embedder(
                options["output"],
                history,
                shipped=shipped,
                options=budget,
                fingerprint=fingerprint,
                min_gain=options["tuning_min_gain"],
                progress=progress,
            )
        self.stdout.write(f"embedding tuning: {tuning['reason']}; using {embedder.name}")
        return embedder, tuning

    def _model_access(self, options: dict[str, Any]) -> ModelAccess:
        from inference_app.llm.backends import get_backend, pricing

        backend_name = options["backend"]
        if backend_name == "openai" or (
            backend_name is None and (options["llm_base_url"] or options["llm_model"])
        ):
            from inference_app.llm.openai_backend import OpenAIBackend

            base_url = options["llm_base_url"] or settings.LLM_BASE_URL
            if not base_url:
                raise CommandError("--backend openai needs --llm-base-url (or LLM_BASE_URL)")
            backend: Any = OpenAIBackend(
                base_url=base_url,
                model=options["llm_model"] or settings.LLM_MODEL,
                api_key=settings.LLM_API_KEY or "",
                timeout=settings.LLM_TIMEOUT_SECONDS,
                max_retries=settings.LLM_MAX_RETRIES,
            )
        elif backend_name == "llamacpp":
            from inference_app.llm.llamacpp_backend import LlamaCppBackend

            backend = LlamaCppBackend()
        else:
            backend = get_backend()
        return ModelAccess(
            backend=backend, pricing=pricing(), company=options["company"], samples=max(1, options["samples"])
        )
