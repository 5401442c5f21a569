"""Decision model versions: the registry's moves and gate, the canary split, shadow decisions and the
retrain path, on PostgreSQL with the real embedder and label model (tasks run eagerly here; the
switch under real workers is in tests/pipeline/test_model_switch.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from tests.model_factories import label_version as _label_version
from tests.model_factories import lifecycle_history
from tickets.decision_models import DecisionModel, DecisionModelEvent, DecisionStamp, ShadowDecision
from tickets.models import AuditEvent, Category, Suggestion, Ticket, WebhookDelivery, WebhookEndpoint
from tickets.pipeline.versions import forget_pointers, live_versions, ticket_bucket, version_for
from tickets.services.model_registry import (
    GateFailed,
    LifecycleError,
    model_promote,
    model_register,
    model_retire,
    model_roll_back,
)
from tickets.services.model_retrain import promote_shadowed, retrain_cycle
from tickets.services.submission import ticket_submit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


@pytest.fixture
def history(db: Any, knowledge_dir: Any) -> Iterator[dict[str, Category]]:
    forget_pointers()
    yield lifecycle_history()
    forget_pointers()


def _submit(capture: Any, subject: str, body: str) -> Ticket:
    with capture(execute=True):
        ticket = ticket_submit(subject=subject, body=body)
    return Ticket.objects.get(pk=ticket.pk)


def test_the_canary_gets_its_share_by_a_stable_hash_of_the_ticket_id() -> None:
    from tickets.pipeline.versions import LiveVersions, VersionRef

    live = LiveVersions(active=VersionRef(1, "a"), canary=VersionRef(2, "b"), canary_share=0.25)
    chosen = [version_for(ticket_id, live) for ticket_id in range(1, 4001)]
    canary = [
        ticket_id for ticket_id, (_, is_canary) in zip(range(1, 4001), chosen, strict=True) if is_canary
    ]
    assert 0.22 < len(canary) / 4000 < 0.28
    assert all(ticket_bucket(ticket_id) < 0.25 for ticket_id in canary)
    # The same ticket always lands on the same version, and a larger share keeps every earlier canary.
    assert [version_for(t, live) for t in range(1, 4001)] == chosen
    wider = LiveVersions(active=live.active, canary=live.canary, canary_share=0.5)
    assert all(version_for(t, wider)[1] for t in canary)


@override_settings(MODEL_PROMOTION_MARGIN=0.02, PIPELINE_USE_MODEL="never")
def test_promote_gate_override_and_roll_back_are_audited(history: dict[str, Category]) -> None:
    first = _label_version(holdout_share=0.1, name="v1", accuracy=0.90)
    model_promote(decision_model_id=first.pk, to="active", actor="alice", reason="first")
    worse = _label_version(holdout_share=0.2, name="v2", accuracy=0.80)

    with pytest.raises(GateFailed, match="worse than the active version"):
        model_promote(decision_model_id=worse.pk, to="active", actor="alice", reason="try")
    with pytest.raises(GateFailed):
        model_promote(decision_model_id=worse.pk, to="canary", canary_share=0.5, actor="alice")
    with pytest.raises(LifecycleError, match="needs a reason"):
        model_promote(decision_model_id=worse.pk, to="active", actor="alice", override=True)
    worse.refresh_from_db()
    assert worse.state == "candidate"

    model_promote(
        decision_model_id=worse.pk, to="active", actor="alice", override=True, reason="known better on X"
    )
    first.refresh_from_db()
    worse.refresh_from_db()
    assert (first.state, worse.state, worse.replaced_id) == ("retired", "active", first.pk)
    promoted = DecisionModelEvent.objects.get(decision_model=worse, action="model.promoted")
    assert (promoted.actor, promoted.reason, promoted.override) == ("alice", "known better on X", True)
    assert promoted.details["gate"]["passed"] is False

    restored = model_roll_back(actor="bob", reason="complaints")
    worse.refresh_from_db()
    assert (restored.pk, restored.state, worse.state) == (first.pk, "active", "retired")
    assert DecisionModelEvent.objects.filter(
        decision_model=worse, action="model.rolled_back", actor="bob"
    ).exists()
    assert live_versions().active is not None and live_versions().active.id == first.pk  # type: ignore[union-attr]
    with pytest.raises(LifecycleError, match="cannot be retired"):
        model_retire(decision_model_id=first.pk, actor="bob")
    with pytest.raises(LifecycleError, match="nothing to roll back"):
        model_roll_back(actor="bob")


def test_register_refuses_a_label_model_without_its_artefact(history: dict[str, Category]) -> None:
    with pytest.raises(LifecycleError, match="no label model artefact"):
        model_register(name="ghost", actor="tester", artefact_hash="0" * 64)
    with pytest.raises(LifecycleError, match="not a SHA-256"):
        model_register(name="bad", actor="tester", artefact_hash="../../etc/passwd")


@override_settings(PIPELINE_USE_MODEL="never", MODEL_SHADOW_SHARE=1.0)
def test_decisions_are_stamped_and_a_shadow_decides_beside_without_touching_the_ticket(
    history: dict[str, Category], django_capture_on_commit_callbacks: Any
) -> None:
    active = _label_version(holdout_share=0.1, name="active", accuracy=0.9)
    model_promote(decision_model_id=active.pk, to="active", actor="alice")
    shadow = _label_version(holdout_share=0.2, name="shadow", accuracy=0.9)
    model_promote(decision_model_id=shadow.pk, to="shadow", actor="alice", reason="compare")
    WebhookEndpoint.objects.create(name="crm", url="https://crm.example/hook", events=["suggestion.ready"])

    ticket = _submit(
        django_capture_on_commit_callbacks, "VPN gone", "The VPN tunnel drops from my home office."
    )

    suggestion = Suggestion.objects.get(ticket=ticket)
    stamp = DecisionStamp.objects.get(suggestion=suggestion)
    assert (stamp.decision_model_id, stamp.canary) == (active.pk, False)
    assert stamp.audit_event is not None and stamp.audit_event.action == "model.decided"
    assert stamp.audit_event.details["decision_model_id"] == active.pk
    shadowed = ShadowDecision.objects.get(ticket=ticket)
    assert shadowed.decision_model_id == shadow.pk and shadowed.active_suggestion_id == suggestion.pk
    assert shadowed.category == history["VPN"] and shadowed.cost_usd == 0 and shadowed.latency_ms > 0
    # The ticket, its trail and its notifications are the active decision's alone.
    assert ticket.category == history["VPN"] and Suggestion.objects.filter(ticket=ticket).count() == 1
    assert not AuditEvent.objects.filter(ticket=ticket, action__startswith="shadow").exists()
    assert WebhookDelivery.objects.filter(ticket=ticket, event="suggestion.ready").count() == 1
    # Running the shadow task again changes nothing (idempotent).
    from tickets.pipeline.shadowing import run_shadow

    assert run_shadow([ticket.pk], shadow.pk) == 0
    assert ShadowDecision.objects.filter(ticket=ticket).count() == 1


@override_settings(PIPELINE_USE_MODEL="never")
def test_canary_tickets_are_decided_and_stamped_by_the_canary(
    history: dict[str, Category], django_capture_on_commit_callbacks: Any
) -> None:
    active = _label_version(holdout_share=0.1, name="active", accuracy=0.9)
    model_promote(decision_model_id=active.pk, to="active", actor="alice")
    canary = _label_version(holdout_share=0.2, name="canary", accuracy=0.9)
    model_promote(
        decision_model_id=canary.pk, to="canary", canary_share=0.5, actor="alice", reason="try half"
    )
    tickets = [
        _submit(django_capture_on_commit_callbacks, f"VPN {n}", "The VPN tunnel drops at home.")
        for n in range(8)
    ]
    for ticket in tickets:
        stamp = DecisionStamp.objects.get(suggestion__ticket=ticket)
        expected = canary.pk if ticket_bucket(ticket.pk) < 0.5 else active.pk
        assert (stamp.decision_model_id, stamp.canary) == (expected, expected == canary.pk)


@override_settings(
    MODEL_HOLDOUT_SHARE=0.2, MODEL_PROMOTION="auto", MODEL_SHADOW_HOURS=0, MODEL_PROMOTION_MARGIN=0.5
)
def test_the_retrain_yields_an_evaluated_candidate_in_shadow_and_auto_promotes_it(
    history: dict[str, Category],
) -> None:
    first = retrain_cycle()
    assert first["state"] == "active"  # a fresh install: the first version goes live at once
    version = DecisionModel.objects.get(pk=first["registered"])
    assert version.evaluation["tickets"] == 6 and 0 <= version.evaluation["accuracy"] <= 1
    assert version.training_entries == 24 and version.trained_until is not None

    # New history arrives; the next retrain is a different candidate, scored beside the active one.
    make_more = {
        "VPN": ("Network", "Reset the VPN profile.", [("VPN again", "VPN down again after reboot.")])
    }
    make_resolved_history_extra(make_more)
    second = retrain_cycle()
    candidate = DecisionModel.objects.get(pk=second["registered"])
    assert candidate.state == "shadow" and candidate.evaluation["active_id"] == version.pk
    assert "active_accuracy" in candidate.evaluation
    assert DecisionModelEvent.objects.filter(decision_model=candidate, actor="beat").count() == 2

    assert promote_shadowed() == [candidate.pk]
    candidate.refresh_from_db()
    assert candidate.state == "active" and candidate.replaced_id == version.pk


def make_resolved_history_extra(data: dict[str, tuple[str, str, list[tuple[str, str]]]]) -> None:
    """More resolved tickets of existing categories, indexed."""
    from tickets.models import Channel, PipelineStage, TicketStatus
    from tickets.services.knowledge import index_missing_resolved

    for name, (_team, resolution, examples) in data.items():
        category = Category.objects.get(name=name)
        for number, (subject, body) in enumerate(examples):
            Ticket.objects.create(
                subject=subject,
                body=body,
                channel=Channel.IMPORT,
                external_id=f"{name}-extra-{number}",
                status=TicketStatus.RESOLVED,
                stage=PipelineStage.DONE,
                category=category,
                team=category.default_team,
                priority="normal",
                resolution=resolution,
            )
    index_missing_resolved()


def test_a_version_fitted_under_another_embedder_leaves_the_decision_to_the_current_file(
    history: dict[str, Category],
) -> None:
    """Adopting a tuned embedder refits the current label model; a registered version fitted on the old
    embedder's vectors cannot score the new ones, so the current file decides and no version is stamped."""
    import dataclasses

    from retrieval.label_services import train_label_model
    from retrieval.label_versions import fit_candidate, load_version, save_version
    from retrieval.services import embedder
    from tickets.pipeline.versions import label_probs_for

    candidate = fit_candidate(holdout_share=0.1)
    assert candidate.model is not None
    foreign = dataclasses.replace(candidate.model, embedding_model="another-embedder-tuned-0123")
    saved = save_version(foreign)
    version = model_register(
        name="before tuning", actor="tester", artefact_hash=saved.sha256, format_version=saved.format_version
    )
    model_promote(decision_model_id=version.pk, to="active", actor="alice")
    forget_pointers()
    train_label_model()
    assert load_version(saved.sha256) is None
    texts = ["The VPN tunnel drops every few minutes at home."]
    probs, marks = label_probs_for([1], texts, embedder().encode(texts))
    assert probs[0] is not None and max(probs[0], key=probs[0].__getitem__) == "VPN"
    assert marks == [{}]
