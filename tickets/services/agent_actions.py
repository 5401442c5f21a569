"""What agents do with tickets and the pipeline's suggestions: the web UI and the REST API both call these.

Each function runs in one transaction: it validates, writes the change, a ``Feedback`` row (the
ground truth that routing accuracy and acceptance rates are measured on) and an ``AuditEvent``
(stage ``agent``). Bad input raises ``ValidationError`` (field -> messages); a ticket or
suggestion in the wrong state raises ``InvalidTransition``. Permissions are the caller's job
(``tickets.permissions``). The audit trail keeps fingerprints of texts, never the texts.
"""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tickets.audit import record_event, text_fingerprint
from tickets.models import (
    OPEN_STATUSES,
    AuditEvent,
    Category,
    Feedback,
    Priority,
    Suggestion,
    Team,
    Ticket,
    TicketStatus,
)
from tickets.pipeline.output import due_at_for
from tickets.services.lifecycle import InvalidTransition, ticket_reopen, ticket_resolve, ticket_transition
from tickets.services.webhooks import emit_resolved

MAX_TEXT_CHARS = 20_000
MAX_REASON_CHARS = 2_000
_SIMILARITY_CHARS = 5_000  # difflib is quadratic; compare the first few thousand characters
# Where an agent can work on a ticket: the pipeline has finished with it and it is not closed.
ACTIONABLE_STATUSES = frozenset({TicketStatus.ROUTED, TicketStatus.NEEDS_TRIAGE})


def text_similarity(original: str, edited: str) -> float:
    """0..1, how much of the original text survived an edit (difflib's ratio)."""
    return round(
        difflib.SequenceMatcher(None, original[:_SIMILARITY_CHARS], edited[:_SIMILARITY_CHARS]).ratio(), 4
    )


def latest_suggestion(ticket_id: int) -> Suggestion | None:
    """The pipeline's most recent decision for a ticket."""
    return Suggestion.objects.filter(ticket_id=ticket_id).order_by("-created_at", "-id").first()


def _required_text(field: str, value: str, *, what: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({field: [f"{what} is required."]})
    if len(value) > limit:
        raise ValidationError({field: [f"At most {limit} characters."]})
    if "\x00" in value:
        raise ValidationError({field: ["Contains a NUL character."]})
    return value


def _optional_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON_CHARS:
        raise ValidationError({"reason": [f"At most {MAX_REASON_CHARS} characters."]})
    return reason


def _lock_ticket(ticket_id: int) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket_id)


def _lock_suggestion(suggestion_id: int) -> tuple[Suggestion, Ticket]:
    suggestion = Suggestion.objects.get(pk=suggestion_id)
    ticket = _lock_ticket(suggestion.ticket_id)  # ticket first, like record_event, to avoid deadlocks
    suggestion = Suggestion.objects.select_for_update().get(pk=suggestion_id)
    return suggestion, ticket


def _require_actionable(ticket: Ticket, action: str) -> None:
    if ticket.status not in ACTIONABLE_STATUSES:
        raise InvalidTransition(
            f"ticket {ticket.reference} is {ticket.get_status_display().lower()}; cannot {action}"
        )


def _audit(ticket_id: int, action: str, *, actor: str, actor_type: str, details: dict[str, Any]) -> None:
    record_event(
        ticket_id=ticket_id,
        stage=AuditEvent.Stage.AGENT,
        action=action,
        actor_type=actor_type,
        actor=actor,
        details=details,
    )


def _feedback(
    ticket: Ticket, kind: str, *, suggestion: Suggestion | None, user: Any, actor: str, **fields: Any
) -> Feedback:
    """The agent's verdict on the pipeline's work, for accuracy and acceptance figures."""
    user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    return Feedback.objects.create(
        ticket=ticket, suggestion=suggestion, user_id=user_id, actor=actor, kind=kind, **fields
    )


def _require_open(ticket: Ticket) -> None:
    if ticket.status not in OPEN_STATUSES:
        raise InvalidTransition(f"ticket {ticket.reference} is {ticket.get_status_display().lower()}")


def _decide_pending(suggestion_id: int, decision: str, action: str) -> tuple[Suggestion, Ticket]:
    """Lock a pending suggestion of an actionable ticket and record the agent's ``decision`` on it."""
    suggestion, ticket = _lock_suggestion(suggestion_id)
    _require_actionable(ticket, action)
    if suggestion.decision != Suggestion.Decision.PENDING:
        raise InvalidTransition(f"the suggestion was already {suggestion.get_decision_display().lower()}")
    suggestion.decision = decision
    suggestion.save(update_fields=["decision"])
    return suggestion, ticket


def _due_at(ticket: Ticket, *, priority: str) -> datetime | None:
    """The SLA due time for ``priority`` (the category's SLA, scaled by priority); kept without a category."""
    if ticket.category is None:
        return ticket.due_at
    return due_at_for(created_at=ticket.created_at, category=ticket.category, priority=priority)


# --- suggestions ---------------------------------------------------------------------------------


def suggestion_accept(*, suggestion_id: int, user: Any, actor: str, actor_type: str) -> Suggestion:
    """Use the suggestion as is. In triage, the ticket takes the suggested team and category."""
    with transaction.atomic():
        suggestion, ticket = _decide_pending(
            suggestion_id, Suggestion.Decision.ACCEPTED, "accept its suggestion"
        )
        _feedback(
            ticket,
            Feedback.Kind.ACCEPTED,
            suggestion=suggestion,
            user=user,
            actor=actor,
            routing_correct=True,
            details={"confidence": suggestion.confidence},
        )
        _audit(
            ticket.pk,
            "suggestion.accepted",
            actor=actor,
            actor_type=actor_type,
            details={"suggestion_id": suggestion.pk, "confidence": suggestion.confidence},
        )
        if ticket.status == TicketStatus.NEEDS_TRIAGE and suggestion.team_id is not None:
            priority = ticket.priority or suggestion.priority
            ticket_transition(
                ticket_id=ticket.pk,
                to_status=TicketStatus.ROUTED,
                stage=AuditEvent.Stage.AGENT,
                actor_type=actor_type,
                actor=actor,
                details={"accepted_suggestion": suggestion.pk},
                team_id=suggestion.team_id,
                category_id=suggestion.category_id or ticket.category_id,
                priority=priority,
            )
    return suggestion


def suggestion_edit(
    *, suggestion_id: int, resolution_text: str, user: Any, actor: str, actor_type: str
) -> Suggestion:
    """Replace the suggested resolution with the agent's edit; the original stays in the feedback."""
    edited = _required_text("resolution_text", resolution_text, what="The edited text", limit=MAX_TEXT_CHARS)
    with transaction.atomic():
        suggestion, ticket = _lock_suggestion(suggestion_id)
        _require_actionable(ticket, "edit its suggestion")
        if suggestion.decision == Suggestion.Decision.REJECTED:
            raise InvalidTransition("the suggestion was rejected")
        # The pipeline's own text, even when this is a second edit.
        first_edit = (
            Feedback.objects.filter(suggestion=suggestion, kind=Feedback.Kind.EDITED)
            .order_by("created_at", "id")
            .first()
        )
        original = first_edit.details["original_text"] if first_edit else suggestion.resolution_text
        similarity = text_similarity(original, edited)
        suggestion.resolution_text = edited
        suggestion.decision = Suggestion.Decision.EDITED
        suggestion.save(update_fields=["resolution_text", "decision"])
        _feedback(
            ticket,
            Feedback.Kind.EDITED,
            suggestion=suggestion,
            user=user,
            actor=actor,
            details={"original_text": original, "edited_text": edited, "similarity": similarity},
        )
        _audit(
            ticket.pk,
            "suggestion.edited",
            actor=actor,
            actor_type=actor_type,
            details={
                "suggestion_id": suggestion.pk,
                "similarity": similarity,
                "original_sha256": text_fingerprint(original),
                "edited_sha256": text_fingerprint(edited),
            },
        )
    return suggestion


def suggestion_reject(
    *, suggestion_id: int, reason: str, user: Any, actor: str, actor_type: str
) -> Suggestion:
    """Reject the suggestion, saying why (the reason is required)."""
    reason = _required_text("reason", reason, what="A reason", limit=MAX_REASON_CHARS)
    with transaction.atomic():
        suggestion, ticket = _decide_pending(
            suggestion_id, Suggestion.Decision.REJECTED, "reject its suggestion"
        )
        _feedback(
            ticket,
            Feedback.Kind.REJECTED,
            suggestion=suggestion,
            user=user,
            actor=actor,
            reason=reason,
            details={"confidence": suggestion.confidence},
        )
        _audit(
            ticket.pk,
            "suggestion.rejected",
            actor=actor,
            actor_type=actor_type,
            details={"suggestion_id": suggestion.pk, "reason": reason[:500]},
        )
    return suggestion


# --- tickets -------------------------------------------------------------------------------------


def ticket_reassign(
    *,
    ticket_id: int,
    team_id: int | None = None,
    category_id: int | None = None,
    reason: str = "",
    user: Any,
    actor: str,
    actor_type: str,
) -> Ticket:
    """Change a ticket's team and/or category. A ticket in triage moves to ``routed``.

    Given only a category, a ticket without a team takes the category's default team.
    """
    reason = _optional_reason(reason)
    if team_id is None and category_id is None:
        raise ValidationError({"team": ["Choose a team or a category."]})
    team = Team.objects.filter(pk=team_id).first() if team_id is not None else None
    category = Category.objects.filter(pk=category_id).first() if category_id is not None else None
    errors: dict[str, list[str]] = {}
    if team_id is not None and team is None:
        errors["team"] = [f"No team {team_id}."]
    if category_id is not None and category is None:
        errors["category"] = [f"No category {category_id}."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        ticket = _lock_ticket(ticket_id)
        _require_actionable(ticket, "reassign it")
        new_team_id = team.pk if team else ticket.team_id
        if new_team_id is None and category is not None:
            new_team_id = category.default_team_id
        new_category_id = category.pk if category else ticket.category_id
        if new_team_id == ticket.team_id and new_category_id == ticket.category_id:
            raise ValidationError({"team": ["The ticket already has this team and category."]})
        suggestion = latest_suggestion(ticket.pk)
        pipeline_team_id = suggestion.team_id if suggestion else None
        routing_correct = None if pipeline_team_id is None else new_team_id == pipeline_team_id
        change = {
            "from_team": ticket.team_id,
            "to_team": new_team_id,
            "from_category": ticket.category_id,
            "to_category": new_category_id,
            "pipeline_team": pipeline_team_id,
        }
        _feedback(
            ticket,
            Feedback.Kind.REASSIGNED,
            suggestion=suggestion,
            user=user,
            actor=actor,
            routing_correct=routing_correct,
            reason=reason,
            details=change,
        )
        if ticket.status == TicketStatus.NEEDS_TRIAGE:
            fields: dict[str, Any] = {"team_id": new_team_id, "category_id": new_category_id}
            if not ticket.priority and category is not None:
                fields["priority"] = category.default_priority
            ticket_transition(
                ticket_id=ticket.pk,
                to_status=TicketStatus.ROUTED,
                stage=AuditEvent.Stage.AGENT,
                actor_type=actor_type,
                actor=actor,
                details={"reassigned": True},
                **fields,
            )
        else:
            Ticket.objects.filter(pk=ticket.pk).update(
                team_id=new_team_id, category_id=new_category_id, updated_at=timezone.now()
            )
        _audit(
            ticket.pk,
            "ticket.reassigned",
            actor=actor,
            actor_type=actor_type,
            details={**change, "routing_correct": routing_correct, "reason": reason[:500]},
        )
    return Ticket.objects.get(pk=ticket_id)


def ticket_set_priority(*, ticket_id: int, priority: str, user: Any, actor: str, actor_type: str) -> Ticket:
    """Set the priority; the SLA due time follows it. Setting the same priority changes nothing."""
    if priority not in Priority.values:
        raise ValidationError({"priority": [f"Choose one of: {', '.join(Priority.values)}."]})
    with transaction.atomic():
        ticket = _lock_ticket(ticket_id)
        _require_open(ticket)
        if ticket.priority == priority:
            return ticket
        previous = ticket.priority
        ticket.priority = priority
        ticket.due_at = _due_at(ticket, priority=priority)
        ticket.save(update_fields=["priority", "due_at", "updated_at"])
        _feedback(
            ticket,
            Feedback.Kind.PRIORITY,
            suggestion=latest_suggestion(ticket.pk),
            user=user,
            actor=actor,
            details={"from": previous, "to": priority},
        )
        _audit(
            ticket.pk,
            "ticket.priority_changed",
            actor=actor,
            actor_type=actor_type,
            details={"from": previous, "to": priority, "due_at": ticket.due_at},
        )
    return ticket


def ticket_resolve_with_feedback(
    *, ticket_id: int, resolution: str, user: Any, actor: str, actor_type: str
) -> Ticket:
    """Resolve with the final resolution (it joins the knowledge base), noting how it used the suggestion."""
    resolution = _required_text("resolution", resolution, what="A resolution", limit=MAX_TEXT_CHARS)
    with transaction.atomic():
        ticket = _lock_ticket(ticket_id)
        _require_actionable(ticket, "resolve it")
        suggestion = latest_suggestion(ticket.pk)
        details: dict[str, Any] = {"had_suggestion": suggestion is not None}
        routing_correct = None
        if suggestion is not None:
            details.update(
                suggestion_decision=suggestion.decision,
                equals_suggestion=resolution == suggestion.resolution_text.strip(),
                similarity=text_similarity(suggestion.resolution_text, resolution),
            )
            if suggestion.team_id is not None and ticket.team_id is not None:
                routing_correct = ticket.team_id == suggestion.team_id
        resolved = ticket_resolve(
            ticket_id=ticket.pk, resolution=resolution, actor_type=actor_type, actor=actor
        )
        _feedback(
            resolved,
            Feedback.Kind.RESOLVED,
            suggestion=suggestion,
            user=user,
            actor=actor,
            routing_correct=routing_correct,
            details=details,
        )
        emit_resolved(resolved, actor=actor)  # webhook, sent after the commit
    return resolved


def ticket_reopen_with_feedback(
    *, ticket_id: int, reason: str, user: Any, actor: str, actor_type: str
) -> Ticket:
    """Reopen a resolved or closed ticket (it leaves the knowledge base until resolved again)."""
    reason = _optional_reason(reason)
    with transaction.atomic():
        ticket = _lock_ticket(ticket_id)
        if ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            raise InvalidTransition(f"ticket {ticket.reference} is not resolved or closed")
        reopened = ticket_reopen(ticket_id=ticket.pk, reason=reason, actor_type=actor_type, actor=actor)
        _feedback(
            reopened,
            Feedback.Kind.REOPENED,
            suggestion=latest_suggestion(ticket.pk),
            user=user,
            actor=actor,
            reason=reason,
        )
    return reopened


def ticket_assign(*, ticket_id: int, assignee: Any, user: Any, actor: str, actor_type: str) -> Ticket:
    """Assign the ticket to ``assignee`` (a user), or unassign it with ``None``. Audit only, no feedback."""
    with transaction.atomic():
        ticket = _lock_ticket(ticket_id)
        _require_open(ticket)
        assignee_id = assignee.pk if assignee is not None else None
        if ticket.assignee_id == assignee_id:
            return ticket
        previous = ticket.assignee.get_username() if ticket.assignee else ""
        ticket.assignee_id = assignee_id
        ticket.save(update_fields=["assignee", "updated_at"])
        _audit(
            ticket.pk,
            "ticket.assigned",
            actor=actor,
            actor_type=actor_type,
            details={"from": previous, "to": assignee.get_username() if assignee is not None else ""},
        )
    return ticket
