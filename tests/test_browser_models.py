"""The decision model pages in a real headless Chromium, under the Content-Security-Policy: an admin
opens a shadow candidate's comparison, reads its figures and moves it to canary."""

from __future__ import annotations

from typing import Any

import pytest

from tests.model_factories import comparison_fixture
from tests.test_browser_e2e import (  # noqa: F401 (fixtures)
    _shot,
    _sign_in,
    browser_page,
    csp_violations,
    short_lived_connections,
)
from tests.ui_factories import make_user
from tickets.decision_models import DecisionModel, DecisionModelEvent

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_admin_compares_a_shadow_candidate_and_moves_it_to_canary(
    live_server: Any,
    browser_page: Any,  # noqa: F811
    csp_violations: list[str],  # noqa: F811
) -> None:
    _active, candidate = comparison_fixture()
    make_user("root", superuser=True)
    page, base = browser_page, live_server.url
    _sign_in(page, base, "root")
    page.click("text=Models")
    page.wait_for_url(f"{base}/models/")
    assert "Shadow" in page.inner_text(f"#model-{candidate.pk}")
    page.click(f"#model-{candidate.pk} a")
    page.wait_for_url(f"{base}/models/{candidate.pk}/")
    accuracy = page.inner_text("#category-accuracy")
    assert "0.500" in accuracy and "0.750" in accuracy and "n=4" in accuracy
    _shot(page, "7-model-comparison")
    page.select_option("#id_to", "canary")
    page.fill("#id_canary_share", "0.25")
    page.fill("#id_reason", "looks as good on live traffic")
    page.click("#promote button[type=submit]")
    page.wait_for_selector("text=on 0.25 of tickets")
    version = DecisionModel.objects.get(pk=candidate.pk)
    assert (version.state, version.canary_share) == ("canary", 0.25)
    assert DecisionModelEvent.objects.get(decision_model=version, action="model.canary").actor == "root"
    assert csp_violations == []
