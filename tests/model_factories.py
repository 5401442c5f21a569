"""Decision model versions for tests: a history large enough to hold a fifth back, and real label
model versions fitted on parts of it (different artefacts, so different versions)."""

from __future__ import annotations

from retrieval.label_versions import fit_candidate, save_version
from tests.pipeline.conftest import HISTORY
from tests.ui_factories import make_resolved_history
from tickets.decision_models import DecisionModel
from tickets.models import Category
from tickets.services.model_registry import model_register

MORE = {
    "Refund": [
        ("Refund not received", "The refund you promised two weeks ago is still not on my card."),
        ("Charged wrong amount", "I was charged more than the price shown, please refund the difference."),
        ("Billing error refund", "Your invoice charged me twice, I need one payment back."),
    ],
    "VPN": [
        ("VPN fails at home", "From home the VPN handshake fails and I cannot reach internal sites."),
        ("VPN disconnects", "The VPN tunnel drops every few minutes on the hotel wifi."),
        ("VPN error 809", "Connecting to the VPN gives error 809 since the update."),
    ],
    "Password reset": [
        ("Password reset link expired", "The password reset link says it expired, I need a new one."),
        ("Wrong password lockout", "I typed a wrong password and now my account is locked."),
        ("Change password", "I want to change my password but the form rejects the new one."),
    ],
}


def lifecycle_history() -> dict[str, Category]:
    """30 resolved, indexed tickets in three categories (needs the ``knowledge_dir`` fixture)."""
    data = {
        name: (team, answer, [*examples, *MORE[name]]) for name, (team, answer, examples) in HISTORY.items()
    }
    return make_resolved_history(data)


def label_version(*, holdout_share: float, name: str, accuracy: float) -> DecisionModel:
    """A real label model fitted on part of the history, saved under its hash and registered."""
    candidate = fit_candidate(holdout_share=holdout_share)
    assert candidate.model is not None, candidate.reason
    saved = save_version(candidate.model)
    return model_register(
        name=name,
        actor="tester",
        artefact_hash=saved.sha256,
        format_version=saved.format_version,
        evaluation={"accuracy": accuracy},
    )


# Five tickets decided by the active version and shadowed by a candidate (see
# tests/test_model_comparison.py for the hand computation of every figure):
# (active category, active confidence, agents' use of the suggestion, shadow category, shadow confidence,
#  final category or None when no agent judged it, active latency ms, shadow latency ms)
COMPARISON_ROWS: list[tuple[str, float, str, str, float, str | None, float, float]] = [
    ("A", 0.91, "accepted", "A", 0.82, "A", 10.0, 1.0),
    ("A", 0.62, "rejected", "B", 0.71, "B", 20.0, 2.0),
    ("B", 0.83, "accepted", "A", 0.64, "B", 30.0, 3.0),
    ("B", 0.70, "pending", "B", 0.90, None, 40.0, 4.0),
    ("A", 0.55, "edited", "B", 0.43, "A", 50.0, 5.0),
]
JUDGEMENT = {"accepted": "accepted", "rejected": "reassigned", "edited": "edited"}


def comparison_fixture() -> tuple[DecisionModel, DecisionModel]:
    """An active version and a shadow candidate with the decisions of :data:`COMPARISON_ROWS`."""
    from decimal import Decimal

    from tests.ui_factories import make_category, make_suggestion, make_team, make_ticket
    from tickets.audit import record_event
    from tickets.decision_models import DecisionStamp, ShadowDecision
    from tickets.models import Feedback, ModelCall

    teams = {"A": make_team("Team A"), "B": make_team("Team B")}
    categories = {name: make_category(f"Cat {name}", teams[name]) for name in teams}
    active = DecisionModel.objects.create(name="active", state="active", evaluation={"accuracy": 0.9})
    candidate = DecisionModel.objects.create(
        name="candidate", state="shadow", evaluation={"accuracy": 0.88, "tickets": 40}
    )
    for number, (chosen, conf, use, shadow, shadow_conf, final, latency, shadow_latency) in enumerate(
        COMPARISON_ROWS
    ):
        final_name = final or chosen
        ticket = make_ticket(
            subject=f"ticket {number}", team=teams[final_name], category=categories[final_name]
        )
        suggestion = make_suggestion(ticket, team=teams[chosen], category=categories[chosen], confidence=conf)
        suggestion.decision = use
        suggestion.save(update_fields=["decision"])
        event = record_event(
            ticket_id=ticket.pk, stage="model", action="model.decided", details={"latency_ms": latency}
        )
        DecisionStamp.objects.create(suggestion=suggestion, audit_event=event, decision_model=active)
        ShadowDecision.objects.create(
            ticket=ticket,
            decision_model=candidate,
            active_suggestion=suggestion,
            category=categories[shadow],
            team=teams[shadow],
            confidence=shadow_conf,
            latency_ms=shadow_latency,
        )
        if final is not None:
            Feedback.objects.create(ticket=ticket, suggestion=suggestion, kind=JUDGEMENT[use])
        if number == 1:
            ModelCall.objects.create(
                ticket=ticket,
                purpose="classify",
                backend="x",
                model_name="m",
                outcome="ok",
                cost_usd=Decimal("0.002"),
            )
    return active, candidate
