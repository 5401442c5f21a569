"""Who sees which tickets (tickets.permissions), against PostgreSQL. Deny by default."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from tests.ui_factories import make_category, make_team, make_ticket, make_user
from tickets.models import Team, Ticket, TicketStatus
from tickets.permissions import (
    analytics_tickets,
    can_act_on,
    can_view_analytics,
    has_role,
    is_admin,
    visible_tickets,
)

pytestmark = pytest.mark.django_db


@dataclass
class Tickets:
    billing: Team
    tech: Team
    billing_ticket: Ticket
    tech_ticket: Ticket
    triage_ticket: Ticket
    new_ticket: Ticket


@pytest.fixture
def tickets() -> Tickets:
    billing, tech = make_team("Billing"), make_team("Tech")
    return Tickets(
        billing=billing,
        tech=tech,
        billing_ticket=make_ticket(team=billing, category=make_category("Payments", billing)),
        tech_ticket=make_ticket(team=tech, category=make_category("Login", tech)),
        triage_ticket=make_ticket(status=TicketStatus.NEEDS_TRIAGE),
        new_ticket=make_ticket(status=TicketStatus.RECEIVED),
    )


def _ids(queryset: QuerySet[Ticket]) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


def test_agent_sees_her_team_and_triage_only(tickets: Tickets) -> None:
    agent = make_user("ann", teams={tickets.billing: "agent"})
    assert _ids(visible_tickets(agent)) == {tickets.billing_ticket.pk, tickets.triage_ticket.pk}
    assert can_act_on(agent, tickets.billing_ticket)
    assert not can_act_on(agent, tickets.tech_ticket)
    assert not can_act_on(agent, tickets.new_ticket)
    assert has_role(agent) and not can_view_analytics(agent) and not is_admin(agent)
    assert not analytics_tickets(agent).exists()


def test_agent_sees_a_ticket_assigned_to_her_in_another_team(tickets: Tickets) -> None:
    agent = make_user("ann", teams={tickets.billing: "agent"})
    tech_ticket = tickets.tech_ticket
    tech_ticket.assignee = agent
    tech_ticket.save()
    assert can_act_on(agent, tech_ticket)


def test_lead_sees_her_teams_and_their_analytics(tickets: Tickets) -> None:
    lead = make_user("lee", teams={tickets.billing: "lead", tickets.tech: "agent"})
    assert _ids(visible_tickets(lead)) == {
        tickets.billing_ticket.pk,
        tickets.tech_ticket.pk,
        tickets.triage_ticket.pk,
    }
    assert can_view_analytics(lead)
    # Figures only for the team she leads.
    assert _ids(analytics_tickets(lead)) == {tickets.billing_ticket.pk}


def test_admin_sees_everything(tickets: Tickets) -> None:
    admin = make_user("root", superuser=True)
    assert visible_tickets(admin).count() == 4
    assert can_act_on(admin, tickets.new_ticket) and can_view_analytics(admin)


def test_no_role_or_no_login_sees_nothing(tickets: Tickets) -> None:
    nobody = make_user("nobody")
    for user in (nobody, AnonymousUser(), None):
        assert not visible_tickets(user).exists()
        assert not can_act_on(user, tickets.triage_ticket)
        assert not has_role(user) and not can_view_analytics(user)


def test_inactive_members_see_nothing(tickets: Tickets) -> None:
    agent = make_user("ann", teams={tickets.billing: "agent"})
    agent.is_active = False
    agent.save()
    assert not visible_tickets(agent).exists()
    admin = make_user("root", superuser=True)
    admin.is_active = False
    admin.save()
    assert not visible_tickets(admin).exists()
