"""Admin screens for routing rules and per-team thresholds (Django admin)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.ui_factories import make_category, make_team, make_user
from tickets.models import RoutingRule, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(make_user("root", superuser=True))
    return client


def test_team_thresholds_are_edited_from_the_team_list(admin_client: Client) -> None:
    team = make_team("Billing", threshold=0.6)
    page = admin_client.get("/admin/tickets/team/")
    assert page.status_code == 200 and 'name="form-0-auto_route_threshold"' in page.content.decode()
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": str(team.pk),
        "form-0-auto_route_threshold": "0.75",
        "_save": "Save",
    }
    assert admin_client.post("/admin/tickets/team/", data).status_code == 302
    team.refresh_from_db()
    assert team.auto_route_threshold == 0.75
    data["form-0-auto_route_threshold"] = "1.5"  # out of range: refused with a message
    refused = admin_client.post("/admin/tickets/team/", data)
    assert refused.status_code == 200 and "less than or equal to 1.0" in refused.content.decode()
    team.refresh_from_db()
    assert team.auto_route_threshold == 0.75


def test_routing_rules_are_created_and_listed(admin_client: Client) -> None:
    billing = make_team("Billing")
    vip = make_team("VIP desk")
    category = make_category("Payments", billing)
    response = admin_client.post(
        "/admin/tickets/routingrule/add/",
        {
            "name": "VIP customers",
            "position": "10",
            "is_active": "on",
            "stop": "on",
            "match_category": str(category.pk),
            "match_keywords": "",
            "match_requesters": "@bigcorp.example",
            "match_channel": "",
            "match_priority": "",
            "set_team": str(vip.pk),
            "set_priority": "high",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = RoutingRule.objects.get()
    assert (rule.set_team, rule.match_requesters, rule.set_priority) == (vip, "@bigcorp.example", "high")
    listing = admin_client.get("/admin/tickets/routingrule/").content.decode()
    assert "VIP customers" in listing and "VIP desk" in listing


def test_agents_cannot_open_the_admin() -> None:
    client = Client()
    client.force_login(make_user("ann", teams={Team.objects.create(name="Billing"): "agent"}))
    assert client.get("/admin/tickets/routingrule/").status_code == 302
