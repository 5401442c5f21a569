"""One ticket's page and the agent actions on it (HTMX forms that also work without script)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from tickets.forms import (
    EditSuggestionForm,
    EmptyForm,
    PriorityForm,
    ReassignForm,
    RejectSuggestionForm,
    ReopenForm,
    ResolveForm,
    SuggestionForm,
)
from tickets.models import AuditEvent, PipelineStage, Suggestion, Ticket, TicketStatus
from tickets.permissions import visible_tickets
from tickets.pipeline import stages
from tickets.selectors import audit_timeline, cited_tickets, similar_tickets, triage_reasons
from tickets.services import agent_actions as actions
from tickets.services.lifecycle import InvalidTransition
from tickets.suggestion_bands import band_of
from tickets.views.common import is_htmx, role_required

PIPELINE_STEPS = list(stages.IN_FLIGHT)


def _visible_ticket(request: HttpRequest, pk: int) -> Ticket:
    """The ticket if this user may see it; 404 otherwise (never confirm that it exists)."""
    return get_object_or_404(
        visible_tickets(request.user).select_related("team", "category", "assignee", "duplicate_of"), pk=pk
    )


def pipeline_progress(ticket: Ticket) -> dict[str, Any]:
    finished = ticket.stage in (PipelineStage.DONE, PipelineStage.FAILED)
    current = PIPELINE_STEPS.index(PipelineStage(ticket.stage)) if not finished else len(PIPELINE_STEPS)
    return {
        "steps": [
            {"label": PipelineStage(step).label, "done": position < current, "current": position == current}
            for position, step in enumerate(PIPELINE_STEPS)
        ],
        "pipeline_finished": finished,
        "pipeline_failed": ticket.stage == PipelineStage.FAILED,
    }


def _resolution_draft(suggestion: Suggestion | None) -> str:
    if suggestion and suggestion.decision in (Suggestion.Decision.ACCEPTED, Suggestion.Decision.EDITED):
        return suggestion.resolution_text
    return ""


def _context(ticket: Ticket, *, forms_with_errors: dict[str, forms.Form] | None = None) -> dict[str, Any]:
    suggestion = actions.latest_suggestion(ticket.pk)
    initial_suggestion = {"suggestion_id": suggestion.pk} if suggestion else None
    context_forms: dict[str, forms.Form] = {
        "accept": SuggestionForm(initial=initial_suggestion),
        "edit": EditSuggestionForm(
            initial={
                **(initial_suggestion or {}),
                "resolution_text": suggestion.resolution_text if suggestion else "",
            }
        ),
        "reject": RejectSuggestionForm(initial=initial_suggestion),
        "reassign": ReassignForm(),
        "priority": PriorityForm(initial={"priority": ticket.priority or "normal"}),
        "resolve": ResolveForm(initial={"resolution": _resolution_draft(suggestion)}),
        "reopen": ReopenForm(),
        "take": EmptyForm(),
    }
    context_forms.update(forms_with_errors or {})
    abstained = suggestion is not None and suggestion.abstained
    return {
        "ticket": ticket,
        "suggestion": suggestion,
        "abstained": abstained,
        "suggestion_band": band_of(suggestion.suggestion_confidence) if suggestion else None,
        "citations": cited_tickets(suggestion),
        "similar": similar_tickets(suggestion) if abstained else [],
        "events": audit_timeline(ticket),
        "triage_reasons": triage_reasons(ticket),
        "forms": context_forms,
        "actionable": ticket.status in actions.ACTIONABLE_STATUSES,
        "reopenable": ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED),
        **pipeline_progress(ticket),
    }


@role_required()
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = _visible_ticket(request, pk)
    return render(request, "tickets/ticket.html", _context(ticket))


@vary_on_headers("HX-Request")
@role_required()
def ticket_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The pipeline-progress partial the ticket page polls until the pipeline is done."""
    ticket = _visible_ticket(request, pk)
    progress = pipeline_progress(ticket)
    response = render(request, "tickets/partials/pipeline.html", {"ticket": ticket, **progress})
    if progress["pipeline_finished"] and is_htmx(request):
        response["HX-Refresh"] = (
            "true"  # the page polled because it was unfinished: reload with the suggestion
        )
    return response


@dataclass(frozen=True)
class Action:
    form: type[forms.Form]
    run: Callable[..., Any]  # (ticket, cleaned data, actor keyword arguments) -> anything
    done: str  # the message shown after it worked


def _suggestion_of(ticket: Ticket, data: dict[str, Any]) -> int:
    """The suggestion id from the form, which must belong to this ticket."""
    suggestion_id = int(data["suggestion_id"])
    if not Suggestion.objects.filter(pk=suggestion_id, ticket_id=ticket.pk).exists():
        raise ValidationError({"suggestion_id": ["That suggestion is not this ticket's."]})
    return suggestion_id


ACTIONS: dict[str, Action] = {
    "accept": Action(
        SuggestionForm,
        lambda t, d, who: actions.suggestion_accept(suggestion_id=_suggestion_of(t, d), **who),
        "Suggestion accepted.",
    ),
    "edit": Action(
        EditSuggestionForm,
        lambda t, d, who: actions.suggestion_edit(
            suggestion_id=_suggestion_of(t, d), resolution_text=d["resolution_text"], **who
        ),
        "Suggestion edited; resolve the ticket to send it.",
    ),
    "reject": Action(
        RejectSuggestionForm,
        lambda t, d, who: actions.suggestion_reject(
            suggestion_id=_suggestion_of(t, d), reason=d["reason"], **who
        ),
        "Suggestion rejected.",
    ),
    "reassign": Action(
        ReassignForm,
        lambda t, d, who: actions.ticket_reassign(
            ticket_id=t.pk,
            team_id=d["team"].pk if d.get("team") else None,
            category_id=d["category"].pk if d.get("category") else None,
            reason=d.get("reason") or "",
            **who,
        ),
        "Ticket reassigned.",
    ),
    "priority": Action(
        PriorityForm,
        lambda t, d, who: actions.ticket_set_priority(ticket_id=t.pk, priority=d["priority"], **who),
        "Priority set.",
    ),
    "resolve": Action(
        ResolveForm,
        lambda t, d, who: actions.ticket_resolve_with_feedback(
            ticket_id=t.pk, resolution=d["resolution"], **who
        ),
        "Ticket resolved; it joins the knowledge base.",
    ),
    "reopen": Action(
        ReopenForm,
        lambda t, d, who: actions.ticket_reopen_with_feedback(
            ticket_id=t.pk, reason=d.get("reason") or "", **who
        ),
        "Ticket reopened.",
    ),
    "take": Action(
        EmptyForm,
        lambda t, d, who: actions.ticket_assign(ticket_id=t.pk, assignee=who["user"], **who),
        "Assigned to you.",
    ),
}


@require_POST
@vary_on_headers("HX-Request")  # a partial for HTMX, the whole page (or a redirect) without
@role_required()
def ticket_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    spec = ACTIONS.get(action)
    if spec is None:
        raise Http404("no such action")
    ticket = _visible_ticket(request, pk)
    form = spec.form(request.POST)
    status, message, error = 200, "", ""
    if form.is_valid():
        who = {
            "user": request.user,
            "actor": request.user.get_username(),
            "actor_type": AuditEvent.ActorType.AGENT,
        }
        try:
            spec.run(ticket, form.cleaned_data, who)
        except ValidationError as exc:
            for field, field_errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, field_errors)
            status = 422
        except InvalidTransition as exc:
            error, status = str(exc), 409
        else:
            message = spec.done
    else:
        status = 422
    still_visible = visible_tickets(request.user).filter(pk=ticket.pk).exists()
    if status == 200 and not is_htmx(request):  # post/redirect/get, for browsers without script
        messages.success(request, message)
        return redirect("tickets:ticket", pk=ticket.pk) if still_visible else redirect("tickets:dashboard")
    if not still_visible:  # reassigned away from this user's teams: it has left her view
        return render(request, "tickets/partials/gone.html", {"message": message})
    ticket = _visible_ticket(request, pk)
    context = _context(ticket, forms_with_errors={action: form} if status == 422 else None)
    context.update(message=message, error=error, failed_action=action if status != 200 else "")
    template = "tickets/partials/ticket_main.html" if is_htmx(request) else "tickets/ticket.html"
    return render(request, template, context, status=status)
