"""Agent actions on tickets and suggestions (tickets.services.agent_actions), against PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from tests.ui_factories import make_category, make_suggestion, make_team, make_ticket, make_user
from tickets.audit import verify_chain
from tickets.models import AuditEvent, Category, Feedback, Suggestion, Team, Ticket, TicketStatus
from tickets.services.agent_actions import (
    suggestion_accept,
    suggestion_edit,
    suggestion_reject,
    text_similarity,
    ticket_assign,
    ticket_reassign,
    ticket_reopen_with_feedback,
    ticket_resolve_with_feedback,
    ticket_set_priority,
)
from tickets.services.lifecycle import InvalidTransition

pytestmark = pytest.mark.django_db

AGENT = AuditEvent.ActorType.AGENT


@dataclass
class World:
    billing: Team
    tech: Team
    payments: Category
    login: Category
    agent: Any


@pytest.fixture
def world() -> World:
    billing, tech = make_team("Billing"), make_team("Tech")
    return World(
        billing=billing,
        tech=tech,
        payments=make_category("Payments", billing, sla_hours=8),
        login=make_category("Login", tech, sla_hours=24),
        agent=make_user("ann", teams={billing: "agent"}),
    )


def _routed_with_suggestion(world: World, status: str = TicketStatus.ROUTED) -> tuple[Ticket, Suggestion]:
    ticket = make_ticket(team=world.billing, category=world.payments, status=status)
    suggestion = make_suggestion(ticket, team=world.billing, category=world.payments)
    return ticket, suggestion


def _last_event(ticket: Ticket) -> AuditEvent:
    return ticket.audit_events.order_by("-sequence").first()  # type: ignore[return-value]


def test_accept_marks_the_suggestion_and_records_feedback_and_audit(world: World) -> None:
    ticket, suggestion = _routed_with_suggestion(world)
    result = suggestion_accept(suggestion_id=suggestion.pk, user=world.agent, actor="ann", actor_type=AGENT)
    assert result.decision == Suggestion.Decision.ACCEPTED
    suggestion.refresh_from_db()
    assert suggestion.decision == Suggestion.Decision.ACCEPTED
    feedback = Feedback.objects.get(ticket=ticket)
    assert (feedback.kind, feedback.routing_correct, feedback.user, feedback.actor) == (
        "accepted",
        True,
        world.agent,
        "ann",
    )
    event = _last_event(ticket)
    assert (event.stage, event.action, event.actor_type, event.actor) == (
        "agent",
        "suggestion.accepted",
        "agent",
        "ann",
    )
    with pytest.raises(InvalidTransition, match="already accepted"):
        suggestion_accept(suggestion_id=suggestion.pk, user=world.agent, actor="ann", actor_type=AGENT)
    assert list(verify_chain(ticket.audit_events.all())) == []


def test_accept_in_triage_routes_the_ticket_to_the_suggested_team(world: World) -> None:
    ticket = make_ticket(status=TicketStatus.NEEDS_TRIAGE, priority="")
    suggestion = make_suggestion(
        ticket, team=world.tech, category=world.login, confidence=0.3, priority="high"
    )
    suggestion_accept(suggestion_id=suggestion.pk, user=None, actor="zendesk", actor_type="api_client")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.team, ticket.category, ticket.priority) == (
        "routed",
        world.tech,
        world.login,
        "high",
    )
    assert Feedback.objects.get(ticket=ticket).user is None


def test_accept_on_a_resolved_ticket_is_refused(world: World) -> None:
    _ticket, suggestion = _routed_with_suggestion(world, status=TicketStatus.RESOLVED)
    with pytest.raises(InvalidTransition, match="resolved"):
        suggestion_accept(suggestion_id=suggestion.pk, user=world.agent, actor="ann", actor_type=AGENT)
    assert not Feedback.objects.exists()


def test_edit_keeps_the_original_text_and_a_similarity(world: World) -> None:
    ticket, suggestion = _routed_with_suggestion(world)
    original = suggestion.resolution_text
    edited_text = original + " Then refund the duplicate charge."
    suggestion_edit(
        suggestion_id=suggestion.pk,
        resolution_text=edited_text,
        user=world.agent,
        actor="ann",
        actor_type=AGENT,
    )
    suggestion.refresh_from_db()
    assert (suggestion.decision, suggestion.resolution_text) == ("edited", edited_text)
    feedback = Feedback.objects.get(ticket=ticket, kind="edited")
    assert feedback.details["original_text"] == original
    assert 0.5 < feedback.details["similarity"] < 1.0
    # A second edit still remembers the pipeline's own text.
    suggestion_edit(
        suggestion_id=suggestion.pk,
        resolution_text="Completely new.",
        user=None,
        actor="ann",
        actor_type=AGENT,
    )
    second = Feedback.objects.filter(kind="edited").order_by("-id").first()
    assert second is not None and second.details["original_text"] == original
    # The audit trail holds fingerprints, not the texts.
    event = _last_event(ticket)
    assert event.action == "suggestion.edited" and "Completely new" not in str(event.details)


@pytest.mark.parametrize("text", ["", "   ", "x" * 20_001, "a\x00b"])
def test_edit_rejects_empty_oversized_or_nul_text(world: World, text: str) -> None:
    _ticket, suggestion = _routed_with_suggestion(world)
    with pytest.raises(ValidationError) as error:
        suggestion_edit(
            suggestion_id=suggestion.pk, resolution_text=text, user=None, actor="ann", actor_type=AGENT
        )
    assert "resolution_text" in error.value.message_dict
    suggestion.refresh_from_db()
    assert suggestion.decision == "pending"


def test_reject_needs_a_reason_and_keeps_it(world: World) -> None:
    ticket, suggestion = _routed_with_suggestion(world)
    with pytest.raises(ValidationError) as error:
        suggestion_reject(suggestion_id=suggestion.pk, reason="  ", user=None, actor="ann", actor_type=AGENT)
    assert error.value.message_dict == {"reason": ["A reason is required."]}
    suggestion_reject(
        suggestion_id=suggestion.pk,
        reason="Cites the wrong product",
        user=None,
        actor="ann",
        actor_type=AGENT,
    )
    feedback = Feedback.objects.get(ticket=ticket)
    assert (feedback.kind, feedback.reason) == ("rejected", "Cites the wrong product")
    assert _last_event(ticket).details["reason"] == "Cites the wrong product"
    with pytest.raises(InvalidTransition):
        suggestion_edit(
            suggestion_id=suggestion.pk, resolution_text="x", user=None, actor="a", actor_type=AGENT
        )


def test_reassign_to_another_team_marks_the_routing_wrong(world: World) -> None:
    ticket, _suggestion = _routed_with_suggestion(world)
    result = ticket_reassign(
        ticket_id=ticket.pk,
        team_id=world.tech.pk,
        reason="It is a login problem",
        user=world.agent,
        actor="ann",
        actor_type=AGENT,
    )
    assert result.team == world.tech and result.status == "routed"
    feedback = Feedback.objects.get(ticket=ticket)
    assert (feedback.kind, feedback.routing_correct, feedback.reason) == (
        "reassigned",
        False,
        "It is a login problem",
    )
    assert feedback.details["pipeline_team"] == world.billing.pk
    event = _last_event(ticket)
    assert event.action == "ticket.reassigned" and event.details["to_team"] == world.tech.pk
    # Back to the pipeline's team: its routing was right after all.
    ticket_reassign(ticket_id=ticket.pk, team_id=world.billing.pk, user=None, actor="ann", actor_type=AGENT)
    assert Feedback.objects.order_by("-id")[0].routing_correct is True


def test_reassign_from_triage_routes_and_a_category_brings_its_team(world: World) -> None:
    ticket = make_ticket(status=TicketStatus.NEEDS_TRIAGE, priority="")
    ticket_reassign(ticket_id=ticket.pk, category_id=world.login.pk, user=None, actor="ann", actor_type=AGENT)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.team, ticket.category, ticket.priority) == (
        "routed",
        world.tech,
        world.login,
        "normal",
    )
    # No suggestion: nobody knows whether the pipeline was right.
    assert Feedback.objects.get(ticket=ticket).routing_correct is None
    assert list(verify_chain(ticket.audit_events.all())) == []


def test_reassign_rejects_bad_input(world: World) -> None:
    ticket, _ = _routed_with_suggestion(world)
    with pytest.raises(ValidationError) as error:
        ticket_reassign(ticket_id=ticket.pk, user=None, actor="a", actor_type=AGENT)
    assert "team" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        ticket_reassign(
            ticket_id=ticket.pk, team_id=999_999, category_id=999_998, user=None, actor="a", actor_type=AGENT
        )
    assert set(error.value.message_dict) == {"team", "category"}
    with pytest.raises(ValidationError, match="already has"):
        ticket_reassign(ticket_id=ticket.pk, team_id=world.billing.pk, user=None, actor="a", actor_type=AGENT)
    with pytest.raises(ValidationError):
        ticket_reassign(
            ticket_id=ticket.pk,
            team_id=world.tech.pk,
            reason="r" * 2001,
            user=None,
            actor="a",
            actor_type=AGENT,
        )
    assert not Feedback.objects.exists()


def test_set_priority_recomputes_the_due_time_from_the_sla(world: World) -> None:
    ticket, _ = _routed_with_suggestion(world)
    result = ticket_set_priority(
        ticket_id=ticket.pk, priority="urgent", user=None, actor="ann", actor_type=AGENT
    )
    # Payments: 8 hours at normal priority; urgent is a quarter of that.
    assert result.due_at == ticket.created_at + timedelta(hours=2)
    result.refresh_from_db()
    assert result.priority == "urgent"
    feedback = Feedback.objects.get(ticket=ticket)
    assert (feedback.kind, feedback.details) == ("priority", {"from": "normal", "to": "urgent"})
    assert _last_event(ticket).action == "ticket.priority_changed"
    ticket_set_priority(ticket_id=ticket.pk, priority="urgent", user=None, actor="ann", actor_type=AGENT)
    assert Feedback.objects.count() == 1  # same priority again: nothing to record
    with pytest.raises(ValidationError) as error:
        ticket_set_priority(ticket_id=ticket.pk, priority="asap", user=None, actor="ann", actor_type=AGENT)
    assert "priority" in error.value.message_dict


def test_resolve_notes_whether_the_suggestion_was_used(world: World) -> None:
    ticket, suggestion = _routed_with_suggestion(world)
    suggestion_accept(suggestion_id=suggestion.pk, user=None, actor="ann", actor_type=AGENT)
    resolved = ticket_resolve_with_feedback(
        ticket_id=ticket.pk,
        resolution=suggestion.resolution_text,
        user=world.agent,
        actor="ann",
        actor_type=AGENT,
    )
    assert (resolved.status, resolved.resolution) == ("resolved", suggestion.resolution_text)
    assert resolved.resolved_at is not None
    feedback = Feedback.objects.get(kind="resolved")
    assert feedback.routing_correct is True
    assert (
        feedback.details["equals_suggestion"] is True
        and feedback.details["suggestion_decision"] == "accepted"
    )
    assert [e.action for e in ticket.audit_events.order_by("sequence")][-2:] == [
        "suggestion.accepted",
        "status.resolved",
    ]
    with pytest.raises(InvalidTransition):
        ticket_resolve_with_feedback(
            ticket_id=ticket.pk, resolution="again", user=None, actor="a", actor_type=AGENT
        )


def test_resolve_needs_a_resolution(world: World) -> None:
    ticket, _ = _routed_with_suggestion(world)
    with pytest.raises(ValidationError) as error:
        ticket_resolve_with_feedback(
            ticket_id=ticket.pk, resolution=" ", user=None, actor="a", actor_type=AGENT
        )
    assert "resolution" in error.value.message_dict
    ticket.refresh_from_db()
    assert ticket.status == "routed"


def test_reopen_a_resolved_ticket(world: World) -> None:
    ticket, _ = _routed_with_suggestion(world, status=TicketStatus.RESOLVED)
    reopened = ticket_reopen_with_feedback(
        ticket_id=ticket.pk, reason="Customer wrote back", user=None, actor="ann", actor_type=AGENT
    )
    assert reopened.status == "routed" and reopened.resolved_at is None
    assert Feedback.objects.get(ticket=ticket).reason == "Customer wrote back"
    with pytest.raises(InvalidTransition):
        ticket_reopen_with_feedback(ticket_id=ticket.pk, reason="", user=None, actor="ann", actor_type=AGENT)


def test_assign_and_unassign(world: World) -> None:
    ticket, _ = _routed_with_suggestion(world)
    ticket_assign(ticket_id=ticket.pk, assignee=world.agent, user=world.agent, actor="ann", actor_type=AGENT)
    ticket.refresh_from_db()
    assert ticket.assignee == world.agent
    assert _last_event(ticket).details == {"from": "", "to": "ann"}
    ticket_assign(ticket_id=ticket.pk, assignee=None, user=world.agent, actor="ann", actor_type=AGENT)
    ticket.refresh_from_db()
    assert ticket.assignee is None


def test_text_similarity() -> None:
    assert text_similarity("same", "same") == 1.0
    assert text_similarity("abc", "xyz") == 0.0


def test_resolving_from_the_dashboard_queues_one_ticket_resolved_webhook(world: World) -> None:
    from tickets.models import WebhookDelivery
    from tickets.services.webhooks import webhook_endpoint_create

    webhook_endpoint_create(name="helpdesk", url="https://helpdesk.example/hook", events=["ticket.resolved"])
    ticket, _suggestion = _routed_with_suggestion(world)
    ticket_resolve_with_feedback(
        ticket_id=ticket.pk, resolution="Reset the token.", user=world.agent, actor="ann", actor_type=AGENT
    )
    delivery = WebhookDelivery.objects.get(ticket=ticket)
    assert delivery.event == "ticket.resolved"
