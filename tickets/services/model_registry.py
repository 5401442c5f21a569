"""The decision model registry's write side: register, shadow, canary, promote, roll back, retire.

Every move is one transaction and one ``DecisionModelEvent`` (who, why, from and to which state).
A promotion to canary or active passes the gate (:func:`gate_check`: its accuracy on held-back history
is not worse than the active version's by more than ``MODEL_PROMOTION_MARGIN``) or is refused with
:class:`GateFailed`, unless the caller overrides it with a reason. Promoting to active retires the
previous active version and remembers it, so :func:`model_roll_back` restores it in one action; its
artefact stays in ``INDEX_DIR/label_models/``. Workers see each move within the pointer TTL of
:mod:`tickets.pipeline.versions`, without a restart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from tickets.decision_models import DecisionModel, DecisionModelEvent
from tickets.pipeline.versions import forget_pointers

State = DecisionModel.State
PROMOTABLE: dict[str, tuple[str, ...]] = {
    State.SHADOW: (State.CANDIDATE, State.CANARY, State.RETIRED),
    State.CANARY: (State.CANDIDATE, State.SHADOW),
    State.ACTIVE: (State.CANDIDATE, State.SHADOW, State.CANARY),
}


class LifecycleError(ValueError):
    """A move the lifecycle does not allow (the message says why): a 4xx, never a 500."""


class GateFailed(LifecycleError):
    """The candidate is worse than the active version by more than the margin; override with a reason."""

    def __init__(self, gate: GateResult) -> None:
        super().__init__(gate.detail)
        self.gate = gate


@dataclass(frozen=True)
class GateResult:
    passed: bool
    candidate_accuracy: float | None
    active_accuracy: float | None
    margin: float
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _accuracy(report: dict[str, Any], key: str = "accuracy") -> float | None:
    value = report.get(key) if isinstance(report, dict) else None
    return float(value) if isinstance(value, int | float) else None


def gate_check(*, candidate: DecisionModel, active: DecisionModel | None) -> GateResult:
    """The candidate against the active version of its kind, on their evaluate reports.

    The retrain scores the active version on the candidate's own held-back entries
    (``evaluation["active_accuracy"]``); otherwise each version's own report is compared."""
    margin = float(settings.MODEL_PROMOTION_MARGIN)
    mine = _accuracy(candidate.evaluation)
    if active is None or active.pk == candidate.pk:
        return GateResult(True, mine, None, margin, "no active version to compare with")
    theirs = _accuracy(candidate.evaluation, "active_accuracy")
    if theirs is None:
        theirs = _accuracy(active.evaluation)
    if mine is None or theirs is None:
        return GateResult(
            False,
            mine,
            theirs,
            margin,
            "no evaluate accuracy on history for the candidate or the active version",
        )
    if mine < theirs - margin:
        return GateResult(
            False,
            mine,
            theirs,
            margin,
            f"accuracy on history {mine:.4f} is worse than the active version's {theirs:.4f} "
            f"by more than the margin {margin:.4f}",
        )
    return GateResult(True, mine, theirs, margin, f"accuracy {mine:.4f} vs active {theirs:.4f}")


def _event(
    model: DecisionModel, *, action: str, from_state: str, actor: str, reason: str, **extra: Any
) -> DecisionModelEvent:
    return DecisionModelEvent.objects.create(
        decision_model=model,
        action=action,
        from_state=from_state,
        to_state=model.state,
        actor=actor,
        reason=reason,
        override=bool(extra.pop("override", False)),
        details=extra,
    )


def _move(model: DecisionModel, state: str, **fields: Any) -> str:
    before = model.state
    model.state = state
    model.state_changed_at = timezone.now()
    for name, value in fields.items():
        setattr(model, name, value)
    model.save()
    return before


def model_register(
    *,
    name: str,
    kind: str = DecisionModel.Kind.LABEL_MODEL,
    actor: str,
    user: AbstractBaseUser | None = None,
    artefact_hash: str = "",
    format_version: int = 0,
    config: dict[str, Any] | None = None,
    evaluation: dict[str, Any] | None = None,
    trained_from: datetime | None = None,
    trained_until: datetime | None = None,
    training_entries: int = 0,
    reason: str = "",
) -> DecisionModel:
    """A new candidate version (a label model's artefact must already be saved under its hash; an LLM
    version's ``config`` must pass :func:`inference_app.llm.backends.check_llm_config`)."""
    if kind not in DecisionModel.Kind.values:
        raise LifecycleError(f"unknown kind {kind!r}")
    if kind == DecisionModel.Kind.LLM:
        from inference_app.llm.backends import check_llm_config

        try:
            config = check_llm_config(config or {}).as_dict()
        except ValueError as exc:
            raise LifecycleError(f"LLM configuration: {exc}") from exc
    if kind == DecisionModel.Kind.LABEL_MODEL:
        from retrieval.label_versions import version_path

        try:
            if not version_path(artefact_hash).exists():
                raise LifecycleError(f"no label model artefact with hash {artefact_hash[:12]!r}")
        except ValueError as exc:
            raise LifecycleError(str(exc)) from exc
    with transaction.atomic():
        model = DecisionModel.objects.create(
            name=name[:100],
            kind=kind,
            artefact_hash=artefact_hash,
            format_version=format_version,
            config=config or {},
            evaluation=evaluation or {},
            trained_from=trained_from,
            trained_until=trained_until,
            training_entries=training_entries,
            created_by=user if user is not None and user.pk else None,  # type: ignore[misc]
            created_by_name=actor[:200],
            state_changed_at=timezone.now(),
        )
        _event(model, action="model.registered", from_state="", actor=actor, reason=reason)
    return model


def active_model(*, kind: str) -> DecisionModel | None:
    return DecisionModel.objects.filter(kind=kind, state=State.ACTIVE).first()


def model_promote(
    *,
    decision_model_id: int,
    to: str,
    actor: str,
    reason: str = "",
    canary_share: float | None = None,
    override: bool = False,
) -> DecisionModel:
    """Move a version to shadow, canary (with its share of tickets) or active. Canary and active pass the
    gate, or an override with a reason; a new active version retires the previous one (kept loadable)."""
    if to not in PROMOTABLE:
        raise LifecycleError(f"cannot promote to {to!r}: one of {', '.join(PROMOTABLE)}")
    if override and not reason.strip():
        raise LifecycleError("an override needs a reason")
    with transaction.atomic():
        model = DecisionModel.objects.select_for_update().filter(pk=decision_model_id).first()
        if model is None:
            raise LifecycleError(f"no decision model {decision_model_id}")
        if model.state not in PROMOTABLE[to]:
            raise LifecycleError(f"a {model.state} version cannot move to {to}")
        current = (
            DecisionModel.objects.select_for_update().filter(kind=model.kind, state=State.ACTIVE).first()
        )
        gate: GateResult | None = None
        if to in (State.CANARY, State.ACTIVE):
            gate = gate_check(candidate=model, active=current)
            if not gate.passed and not override:
                raise GateFailed(gate)
        extra: dict[str, Any] = {
            "gate": gate.as_dict() if gate else None,
            "override": override and gate is not None,
        }
        if to == State.CANARY:
            share = 0.1 if canary_share is None else float(canary_share)
            if not 0.0 < share <= 1.0:
                raise LifecycleError("the canary share must be above 0 and at most 1")
            for other in DecisionModel.objects.filter(kind=model.kind, state=State.CANARY).exclude(
                pk=model.pk
            ):
                before = _move(other, State.SHADOW, canary_share=0.0)
                _event(other, action="model.canary_replaced", from_state=before, actor=actor, reason=reason)
            before = _move(model, State.CANARY, canary_share=share)
            _event(
                model,
                action="model.canary",
                from_state=before,
                actor=actor,
                reason=reason,
                share=share,
                **extra,
            )
        elif to == State.ACTIVE:
            if current is not None:
                previous = _move(current, State.RETIRED, canary_share=0.0)
                _event(
                    current,
                    action="model.replaced",
                    from_state=previous,
                    actor=actor,
                    reason=reason,
                    by=model.pk,
                )
            before = _move(model, State.ACTIVE, canary_share=0.0, replaced=current)
            _event(model, action="model.promoted", from_state=before, actor=actor, reason=reason, **extra)
            _install_after_commit(model)
        else:
            before = _move(model, State.SHADOW, canary_share=0.0)
            _event(model, action="model.shadow", from_state=before, actor=actor, reason=reason)
    forget_pointers()
    return model


def model_roll_back(
    *, kind: str = DecisionModel.Kind.LABEL_MODEL, actor: str, reason: str = ""
) -> DecisionModel:
    """Put the version the active one replaced back in place, in one action; returns it."""
    with transaction.atomic():
        current = DecisionModel.objects.select_for_update().filter(kind=kind, state=State.ACTIVE).first()
        if current is None or current.replaced_id is None:
            raise LifecycleError("nothing to roll back to: the active version replaced none")
        previous = DecisionModel.objects.select_for_update().get(pk=current.replaced_id)
        before = _move(current, State.RETIRED, canary_share=0.0)
        _event(
            current, action="model.rolled_back", from_state=before, actor=actor, reason=reason, to=previous.pk
        )
        before = _move(previous, State.ACTIVE, canary_share=0.0)
        _event(
            previous,
            action="model.restored",
            from_state=before,
            actor=actor,
            reason=reason,
            instead_of=current.pk,
        )
        _install_after_commit(previous)
    forget_pointers()
    return previous


def model_retire(*, decision_model_id: int, actor: str, reason: str = "") -> DecisionModel:
    """Stop a candidate, shadow or canary version (an active one is replaced or rolled back instead)."""
    with transaction.atomic():
        model = DecisionModel.objects.select_for_update().filter(pk=decision_model_id).first()
        if model is None:
            raise LifecycleError(f"no decision model {decision_model_id}")
        if model.state in (State.ACTIVE, State.RETIRED):
            raise LifecycleError(f"a {model.state} version cannot be retired: promote another or roll back")
        before = _move(model, State.RETIRED, canary_share=0.0)
        _event(model, action="model.retired", from_state=before, actor=actor, reason=reason)
    forget_pointers()
    return model


def _install_after_commit(model: DecisionModel) -> None:
    if model.kind != DecisionModel.Kind.LABEL_MODEL or not model.artefact_hash:
        return
    from retrieval.label_versions import install_version

    artefact_hash = model.artefact_hash
    transaction.on_commit(lambda: install_version(artefact_hash), robust=True)
