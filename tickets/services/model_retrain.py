"""The periodic retrain, through the registry: a candidate, evaluated on held-back history, shadowed.

:func:`retrain_cycle` (beat, every ``LABEL_MODEL_RETRAIN_HOURS``) fits a label model on the older part
of the labelled history, scores it and the active version on the newest ``MODEL_HOLDOUT_SHARE``
(the same entries for both), saves it under its hash and registers it as a candidate in shadow. With
no active version yet, the label model file already live is adopted as the active version; on a fresh
install (no file either) the first candidate becomes active at once: there is nothing to compare it
with or to disturb. :func:`promote_shadowed` (beat) promotes a candidate whose shadow
period (``MODEL_SHADOW_HOURS``) is over, only when ``MODEL_PROMOTION`` is ``auto`` and the gate holds;
otherwise it waits for an admin.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from tickets.decision_models import DecisionModel
from tickets.services.model_registry import active_model, gate_check, model_promote, model_register

logger = logging.getLogger(__name__)

BEAT = "beat"
RETRAINED = "retrained"
"""``config["origin"]`` of a candidate the periodic retrain made (only these are promoted by beat)."""


def retrain_cycle() -> dict[str, Any]:
    """Fit, evaluate, save and register a candidate; shadow it (or make it active on a fresh install)."""
    from retrieval.label_versions import fit_candidate, holdout_report, load_version, save_version

    kind = DecisionModel.Kind.LABEL_MODEL
    candidate = fit_candidate(holdout_share=settings.MODEL_HOLDOUT_SHARE)
    if candidate.model is None:
        logger.info("no label model candidate: %s", candidate.reason)
        return {"registered": None, "reason": candidate.reason}
    report: dict[str, Any] = dict(candidate.report or {})
    active = active_model(kind=kind) or _adopt_current_file()
    if active is not None and candidate.held_back_data is not None:
        active_label_model = load_version(active.artefact_hash)
        if active_label_model is not None:
            theirs = holdout_report(active_label_model, *candidate.held_back_data)
            report["active_accuracy"] = theirs["accuracy"]
            report["active_ece"] = theirs["ece"]
            report["active_id"] = active.pk
    saved = save_version(candidate.model)
    existing = DecisionModel.objects.filter(kind=kind, artefact_hash=saved.sha256).exclude(
        state=DecisionModel.State.RETIRED
    )
    if existing.exists():
        return {"registered": None, "reason": "the same artefact is already registered"}
    model = model_register(
        name=f"label model {timezone.now():%Y-%m-%d %H:%M}",
        kind=kind,
        actor=BEAT,
        artefact_hash=saved.sha256,
        format_version=saved.format_version,
        config={"origin": RETRAINED, "held_back": candidate.held_back},
        evaluation=report,
        trained_from=candidate.trained_from,  # type: ignore[arg-type]
        trained_until=candidate.trained_until,  # type: ignore[arg-type]
        training_entries=candidate.entries,
        reason="periodic retrain",
    )
    if active is None:
        model_promote(
            decision_model_id=model.pk, to=DecisionModel.State.ACTIVE, actor=BEAT, reason="first version"
        )
    else:
        model_promote(
            decision_model_id=model.pk, to=DecisionModel.State.SHADOW, actor=BEAT, reason="periodic retrain"
        )
    model.refresh_from_db()
    return {"registered": model.pk, "state": model.state, "evaluation": report}


def promote_shadowed() -> list[int]:
    """The retrained candidates promoted to active now (auto mode, shadow period over, gate holds)."""
    if settings.MODEL_PROMOTION != "auto":
        return []
    due = timezone.now() - timedelta(hours=settings.MODEL_SHADOW_HOURS)
    promoted = []
    for model in DecisionModel.objects.filter(
        kind=DecisionModel.Kind.LABEL_MODEL, state=DecisionModel.State.SHADOW, state_changed_at__lte=due
    ).order_by("-created_at")[:1]:
        if model.config.get("origin") != RETRAINED:
            continue
        gate = gate_check(candidate=model, active=active_model(kind=model.kind))
        if not gate.passed:
            logger.info("retrained candidate %d stays in shadow: %s", model.pk, gate.detail)
            continue
        model_promote(
            decision_model_id=model.pk,
            to=DecisionModel.State.ACTIVE,
            actor=BEAT,
            reason=f"automatic after {settings.MODEL_SHADOW_HOURS:g} h in shadow; gate: {gate.detail}",
        )
        promoted.append(model.pk)
    return promoted


def _adopt_current_file() -> DecisionModel | None:
    """The label model file of an install from before versions, registered as the active version (so
    the first retrained candidate is compared with it and a roll back can return to it)."""
    from retrieval.label_versions import keep_current_as_version, load_version

    saved = keep_current_as_version()
    if saved is None or load_version(saved.sha256) is None:
        return None
    model = model_register(
        name="label model (before versions)",
        actor=BEAT,
        artefact_hash=saved.sha256,
        format_version=saved.format_version,
        reason="the label model that was live when versions were introduced",
    )
    return model_promote(
        decision_model_id=model.pk, to=DecisionModel.State.ACTIVE, actor=BEAT, reason="adopted"
    )
