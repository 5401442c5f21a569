"""The comparison of a shadow candidate with the active version, against a hand computation on a small
fixture (tests/model_factories.COMPARISON_ROWS); the /models API and pages, and who may use them."""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.model_factories import comparison_fixture, label_version, lifecycle_history
from tests.ui_factories import PASSWORD, make_user
from tickets.decision_models import DecisionModel, DecisionModelEvent
from tickets.model_comparison import model_comparison
from tickets.pipeline.versions import forget_pointers
from tickets.services.api_tokens import token_create

pytestmark = pytest.mark.django_db
Z = 1.959963984540054


def wilson(k: int, n: int) -> tuple[float, float, float]:
    """Wilson's 95% score interval, written out (the selector uses SciPy's)."""
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return p, centre - half, centre + half


def assert_proportion(figure: Any, k: int, n: int) -> None:
    p, low, high = wilson(k, n)
    assert (figure.successes, figure.tickets) == (k, n)
    assert (
        figure.value == pytest.approx(p)
        and figure.low == pytest.approx(low)
        and figure.high == pytest.approx(high)
    )


def test_the_comparison_equals_a_hand_computation() -> None:
    _active, candidate = comparison_fixture()
    result = model_comparison(candidate=candidate)
    assert result.paired_tickets == 5
    # Same category on tickets 0 and 3.
    assert_proportion(result.category_agreement, 2, 5)
    # Judged: 0, 1, 2, 4 (3 has no feedback). Active right on 0, 2, 4; candidate right on 0, 1.
    assert_proportion(result.active.category_accuracy, 3, 4)
    assert_proportion(result.candidate.category_accuracy, 2, 4)
    assert_proportion(result.active.team_accuracy, 3, 4)
    # They differ on 1, 2, 4: the agents used the active suggestion on 2 (accepted) and 4 (edited) of 3;
    # the final category is the candidate's on 1 only.
    assert_proportion(result.differing_active_used, 2, 3)
    assert_proportion(result.differing_candidate_right, 1, 3)
    # Every confidence in its own 1/15 bin: ECE is the mean |confidence - right|.
    assert result.active.calibration.ece == pytest.approx((0.09 + 0.62 + 0.17 + 0.45) / 4, abs=1e-6)
    assert result.candidate.calibration.ece == pytest.approx((0.18 + 0.29 + 0.64 + 0.43) / 4, abs=1e-6)
    # Latency: 10..50 ms active (mean 30, sd 15.81), 1..5 ms shadow; one model call of $0.002.
    half = Z * math.sqrt(250) / math.sqrt(5)
    assert result.active.latency_ms.value == 30.0
    assert result.active.latency_ms.low == pytest.approx(30 - half)
    assert result.candidate.latency_ms.value == 3.0 and result.candidate.latency_ms.tickets == 5
    assert result.active.cost_usd.value == pytest.approx(0.0004) and result.candidate.cost_usd.value == 0.0
    assert result.canary.tickets == 0 and result.evaluation == {"accuracy": 0.88, "tickets": 40}


def test_the_api_lists_compares_and_refuses_non_admins() -> None:
    _active, candidate = comparison_fixture()
    _, admin = token_create(name="ops", scopes=["read", "write", "admin"])
    _, reader = token_create(name="bi", scopes=["read", "write"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {reader}")
    assert api.get("/api/v1/models").status_code == 403
    assert api.get(f"/api/v1/models/{candidate.pk}/comparison").status_code == 403
    assert (
        api.post(f"/api/v1/models/{candidate.pk}/promote", {"to": "active"}, format="json").status_code == 403
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {admin}")
    listed = api.get("/api/v1/models").json()
    assert {row["name"]: row["state"] for row in listed} == {"active": "active", "candidate": "shadow"}
    body = api.get(f"/api/v1/models/{candidate.pk}/comparison").json()
    assert body["candidate"]["category_accuracy"]["successes"] == 2 and body["paired_tickets"] == 5
    assert api.get("/api/v1/models/999999/comparison").status_code == 404
    bad = api.post(f"/api/v1/models/{candidate.pk}/promote", {"to": "king"}, format="json")
    assert bad.status_code == 400
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "models_comparison" in schema and "ComparisonOutput" in schema


@pytest.mark.usefixtures("eager_celery")
def test_the_gate_through_the_api_refuses_then_an_override_with_a_reason_passes(
    knowledge_dir: Any, settings: Any
) -> None:
    settings.MODEL_PROMOTION_MARGIN = 0.02
    forget_pointers()
    lifecycle_history()
    first = label_version(holdout_share=0.1, name="v1", accuracy=0.9)
    worse = label_version(holdout_share=0.2, name="v2", accuracy=0.7)
    _, admin = token_create(name="ops", scopes=["read", "write", "admin"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {admin}")
    assert api.post(f"/api/v1/models/{first.pk}/promote", {"to": "active"}, format="json").status_code == 200
    refused = api.post(
        f"/api/v1/models/{worse.pk}/promote", {"to": "canary", "canary_share": 0.2}, format="json"
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "gate_failed"
    no_reason = api.post(
        f"/api/v1/models/{worse.pk}/promote", {"to": "canary", "override": True}, format="json"
    )
    assert no_reason.status_code == 409 and "reason" in no_reason.json()["error"]["message"]
    passed = api.post(
        f"/api/v1/models/{worse.pk}/promote",
        {"to": "canary", "canary_share": 0.2, "override": True, "reason": "better on the new product line"},
        format="json",
    )
    assert passed.status_code == 200 and passed.json()["state"] == "canary"
    event = DecisionModelEvent.objects.get(decision_model=worse, action="model.canary")
    assert (event.actor, event.override, event.reason) == ("ops", True, "better on the new product line")
    assert api.post("/api/v1/models/roll-back", {}, format="json").status_code == 409  # v1 replaced none
    forget_pointers()


def test_the_pages_are_for_admins_and_show_the_gate_error() -> None:
    _active, candidate = comparison_fixture()
    make_user("root", superuser=True)
    make_user("lee")
    client = Client()
    client.login(username="lee", password=PASSWORD)
    assert client.get("/models/").status_code == 403
    assert client.get(f"/models/{candidate.pk}/").status_code == 403
    client.login(username="root", password=PASSWORD)
    page = client.get(f"/models/{candidate.pk}/").content.decode()
    assert "Category accuracy" in page and "n=4" in page
    # The Django admin shows the versions, their moves and the shadow decisions, view only.
    assert client.get("/admin/tickets/decisionmodel/").status_code == 200
    assert client.get("/admin/tickets/shadowdecision/").status_code == 200
    assert client.get("/admin/tickets/decisionmodel/add/").status_code == 403
    # Worse on history than the active version (0.88 < 0.90 - 0.01): refused with the reason on the form.
    with pytest.MonkeyPatch.context() as patch:
        from django.conf import settings

        patch.setattr(settings, "MODEL_PROMOTION_MARGIN", 0.01)
        refused = client.post(f"/models/{candidate.pk}/promote/", {"to": "active"})
    assert refused.status_code == 422 and "worse than the active version" in refused.content.decode()
    assert DecisionModel.objects.get(pk=candidate.pk).state == "shadow"
    no_reason = client.post(f"/models/{candidate.pk}/promote/", {"to": "active", "override": "on"})
    assert no_reason.status_code == 422 and "An override needs a reason" in no_reason.content.decode()
