"""The agent dashboard: queues with counts, filters, search, sort, pagination and live refresh."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render

from tickets.forms import CONFIDENCE_BANDS, QUEUE_SORTS, QueueFilterForm
from tickets.permissions import visible_tickets
from tickets.selectors import QueueQuery, queue_counts, queue_tickets
from tickets.views.common import is_htmx, role_required

PAGE_SIZE = 25


def _query(form: QueueFilterForm, queue_keys: set[str]) -> QueueQuery:
    """The cleaned filters; a bad one is dropped (the form shows its error) rather than failing."""
    form.is_valid()  # cleaned_data keeps the valid fields; the page shows the others' errors
    data = dict(form.cleaned_data)
    queue = data.get("queue") or "all"
    if queue not in queue_keys:
        form.add_error("queue", "No such queue.")
        queue = "all"
    category = data.get("category")
    status = data.get("status")
    return QueueQuery(
        queue=queue,
        q=data.get("q") or "",
        status="open" if status is None else status,
        priority=data.get("priority") or "",
        category_id=category.pk if category is not None else None,
        confidence=CONFIDENCE_BANDS.get(data.get("confidence") or ""),
        language=data.get("language") or "",
        due_soon=bool(data.get("due_soon")),
        order_by=QUEUE_SORTS[data.get("sort") or "newest"],
    )


@role_required()
def dashboard(request: HttpRequest) -> HttpResponse:
    params = request.GET.copy()
    params.setdefault("status", "open")
    form = QueueFilterForm(params)
    tickets = visible_tickets(request.user)
    queues = queue_counts(user=request.user, tickets=tickets)
    query = _query(form, {queue.key for queue in queues})
    page = Paginator(queue_tickets(user=request.user, tickets=tickets, query=query), PAGE_SIZE).get_page(
        form.cleaned_data.get("page") or 1
    )
    context = {
        "form": form,
        "queues": queues,
        "current_queue": query.queue,
        "page": page,
        "query_string": _without(params, "page"),
        "queue_params": _without(params, "queue", "page"),
        "now": query.now,
    }
    template = "tickets/partials/queue.html" if is_htmx(request) else "tickets/dashboard.html"
    response = render(request, template, context)
    response["Vary"] = "HX-Request"
    return response


def _without(params: QueryDict, *names: str) -> str:
    copy = params.copy()
    for name in names:
        copy.pop(name, None)
    return copy.urlencode()
