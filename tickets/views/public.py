"""The requester's side: the submission form, its confirmation, and the status page (token link)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from tickets.audit import record_event
from tickets.forms import SubmitTicketForm
from tickets.models import AuditEvent, Channel, PipelineStage, Ticket, TicketStatus
from tickets.services.submission import ticket_submit
from tickets.views import ratelimit
from tickets.views.common import is_htmx

# Service field -> form field, for errors the service finds that the form did not.
_FORM_FIELD = {"subject": "subject", "body": "body", "requester_email": "email"}
RATE_WINDOW_SECONDS = 3600


def _submit(form: SubmitTicketForm) -> Ticket:
    """Save the ticket (the pipeline starts once this transaction commits) with the requester's hint."""
    data = form.cleaned_data
    with transaction.atomic():
        ticket = ticket_submit(
            subject=data["subject"],
            body=data["body"],
            requester_email=data["email"],
            channel=Channel.WEB,
            actor_type=AuditEvent.ActorType.REQUESTER,
        )
        attachments = [
            {"name": file.name[:200], "bytes": file.size, "content_type": (file.content_type or "")[:100]}
            for file in data.get("attachments") or []
        ]
        if attachments:
            record_event(
                ticket_id=ticket.pk,
                stage=AuditEvent.Stage.INTAKE,
                action="ticket.attachments",
                actor_type=AuditEvent.ActorType.REQUESTER,
                actor=data["email"],
                details={"attachments": attachments},
            )
        hint = data.get("category_hint")
        if hint is not None:
            record_event(
                ticket_id=ticket.pk,
                stage=AuditEvent.Stage.INTAKE,
                action="ticket.category_hint",
                actor_type=AuditEvent.ActorType.REQUESTER,
                actor=data["email"],
                details={"category_id": hint.pk, "category": hint.name},
            )
    return ticket


@require_http_methods(["GET", "POST"])
def submit_ticket(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "tickets/submit.html", {"form": SubmitTicketForm()})
    limit = settings.SUBMIT_RATE_LIMIT_PER_HOUR
    decision = ratelimit.hit(
        scope="submit",
        key=ratelimit.client_address(request),
        limit=limit,
        window_seconds=RATE_WINDOW_SECONDS,
    )
    if not decision.allowed:
        response = render(
            request,
            "429.html",
            {
                "reason": f"This address has sent {limit} tickets within the hour, the most we accept.",
                "retry_minutes": max(1, decision.retry_after_seconds // 60),
            },
            status=429,
        )
        response["Retry-After"] = str(decision.retry_after_seconds)
        return response
    form = SubmitTicketForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            ticket = _submit(form)
        except ValidationError as error:
            for field, field_errors in error.message_dict.items():
                form.add_error(_FORM_FIELD.get(field), field_errors)
        else:
            return redirect("tickets:submitted", token=ticket.status_token)
    return render(request, "tickets/submit.html", {"form": form}, status=422)


def submitted(request: HttpRequest, token: str) -> HttpResponse:
    ticket = get_object_or_404(Ticket, status_token=token)
    return render(request, "tickets/submitted.html", {"ticket": ticket})


# What the requester sees of the ticket's way, in her words.
_REQUESTER_STEPS = [
    ("received", "Received"),
    ("analysing", "Being read and classified"),
    ("team", "With a support team"),
    ("resolved", "Resolved"),
]


def requester_progress(ticket: Ticket) -> dict[str, object]:
    if ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        current = "resolved"
    elif ticket.status in (TicketStatus.ROUTED, TicketStatus.NEEDS_TRIAGE):
        current = "team"
    elif ticket.status == TicketStatus.PROCESSING or ticket.stage not in (PipelineStage.QUEUED,):
        current = "analysing"
    else:
        current = "received"
    keys = [key for key, _ in _REQUESTER_STEPS]
    reached = keys.index(current)
    return {
        "steps": [
            {"key": key, "label": label, "done": position < reached, "current": position == reached}
            for position, (key, label) in enumerate(_REQUESTER_STEPS)
        ],
        "finished": current in ("team", "resolved"),
        "in_triage": ticket.status == TicketStatus.NEEDS_TRIAGE,
    }


def ticket_status(request: HttpRequest, token: str) -> HttpResponse:
    ticket = get_object_or_404(Ticket.objects.select_related("team"), status_token=token)
    context = {"ticket": ticket, **requester_progress(ticket)}
    template = "tickets/partials/status_progress.html" if is_htmx(request) else "tickets/status.html"
    response = render(request, template, context)
    response["X-Robots-Tag"] = "noindex"
    response["Vary"] = "HX-Request"
    return response
