"""A small company with a resolved history in its knowledge base, for the pipeline's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui_factories import make_resolved_history
from tickets.models import Category
from tickets.pipeline.versions import forget_pointers

HISTORY: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    # category: (team, resolution, [(subject, body), ...])
    "Refund": (
        "Billing",
        "Refunded the duplicate charge to the original card; it shows within 5 working days.",
        [
            ("Charged twice", "I was billed two times for my March subscription, please refund one."),
            ("Double payment", "My card shows the same payment twice this month."),
            ("Refund please", "You took the money twice from my credit card for one order."),
            ("Duplicate charge", "There are two identical charges on my bank statement from you."),
            ("Money back", "I cancelled within the trial but was still charged, I want a refund."),
            ("Refund status", "When will I get my money back for the cancelled order?"),
            ("Charged after cancel", "You charged my card after I cancelled, please reimburse me."),
        ],
    ),
    "VPN": (
        "Network",
        "Reinstalled the VPN profile and reset the token; the tunnel connects again.",
        [
            ("VPN down", "The VPN client says the tunnel could not be established since this morning."),
            ("Cannot connect VPN", "GlobalProtect keeps disconnecting after a few seconds from home."),
            ("VPN token", "My VPN token is rejected although I typed it right."),
            ("Remote access broken", "I can't reach the office network over the VPN from my laptop."),
            ("VPN slow", "The VPN connection drops every time I join a video call."),
            ("No tunnel", "Remote VPN access fails with a handshake error on my laptop."),
            ("VPN certificate", "The VPN client complains about an expired certificate and won't connect."),
        ],
    ),
    "Password reset": (
        "Accounts",
        "Sent a password reset link and unlocked the account after identity checks.",
        [
            ("Locked out", "I forgot my password and the account is locked after three attempts."),
            ("Reset password", "Please reset my password, the reset e-mail never arrives."),
            ("Login fails", "I can't log in, it says my password is wrong but I just changed it."),
            ("Account locked", "My account got locked, I need to sign in for a deadline today."),
            ("Forgot password", "How do I reset the password of my user account?"),
            ("Password expired", "My password expired and the change password page shows an error."),
            ("Cannot sign in", "Sign in keeps failing with invalid credentials after the reset."),
        ],
    ),
}


@pytest.fixture
def company(db: Any, knowledge_dir: Path) -> dict[str, Category]:
    """Three teams, three categories, and 21 resolved tickets indexed in the knowledge base."""
    return make_resolved_history(HISTORY)


@pytest.fixture
def calibrated_small_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 21-ticket company's ranker calibrated as a large history's would be (below
    MIN_CALIBRATION_QUERIES a fitted ranker stays uncalibrated and never abstains)."""
    from retrieval import answer_ranker

    monkeypatch.setattr(answer_ranker, "MIN_CALIBRATION_QUERIES", 10)


@pytest.fixture
def history(knowledge_dir: Path) -> Iterator[dict[str, Category]]:
    """The model-lifecycle company (tests.model_factories), with no worker-side version pointers cached
    before or after (the switch tests)."""
    from tests.model_factories import lifecycle_history  # it builds on HISTORY above

    forget_pointers()
    yield lifecycle_history()
    forget_pointers()
