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
