"""The emerging-topics page (admins): clusters of tickets sent to triage as of no known category, and
the action that makes one a category. Reads through ``tickets.topic_selectors``; the clusters are
computed by the worker (task ``tickets.refresh_emerging_topics``), never in the web process."""

from __future__ import annotations

from celery import current_app
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from tickets.forms import TopicCategoryForm
from tickets.permissions import is_admin
from tickets.services.emerging_topics import DEFAULT_DAYS, REFRESH_TASK, topic_create_category
from tickets.topic_selectors import emerging_topic, emerging_topics_list
from tickets.views.common import role_required

WINDOWS = {"7": 7, "14": 14, "30": 30}
WHAT = "the emerging topics (admins)"


def _page(
    request: HttpRequest, *, days: int, failed: tuple[int, TopicCategoryForm] | None = None
) -> HttpResponse:
    rows = emerging_topics_list(days=days)
    forms = {
        row.id: TopicCategoryForm(initial={"name": row.suggested_name[:100]}, prefix=f"topic-{row.id}")
        for row in rows
        if row.category is None
    }
    errors: list[str] = []
    if failed is not None:
        topic_id, form = failed
        if topic_id in forms:
            forms[topic_id] = form
        else:  # the topic has its category now: say why, above the list
            errors = [str(error) for error in form.non_field_errors()]
    topics = [(row, forms.get(row.id)) for row in rows]
    return render(
        request,
        "tickets/topics.html",
        {"topics": topics, "days": days, "windows": list(WINDOWS), "errors": errors},
        status=422 if failed else 200,
    )


@require_GET
@role_required(is_admin, what=WHAT)
def topics_page(request: HttpRequest) -> HttpResponse:
    return _page(request, days=WINDOWS.get(request.GET.get("days", ""), DEFAULT_DAYS))


@require_POST
@role_required(is_admin, what=WHAT)
def topics_refresh(request: HttpRequest) -> HttpResponse:
    days = WINDOWS.get(request.POST.get("days", ""), DEFAULT_DAYS)
    current_app.signature(REFRESH_TASK, kwargs={"days": days}).apply_async()
    messages.success(request, "The clusters are being recomputed; reload the page in a minute.")
    return redirect(f"{reverse('tickets:topics')}?days={days}")


@require_POST
@role_required(is_admin, what=WHAT)
def topic_category(request: HttpRequest, pk: int) -> HttpResponse:
    if emerging_topic(topic_id=pk) is None:
        raise Http404("no such topic")
    form = TopicCategoryForm(request.POST, prefix=f"topic-{pk}")
    if form.is_valid():
        try:
            category, moved = topic_create_category(
                topic_id=pk,
                name=form.cleaned_data["name"],
                team_id=form.cleaned_data["team"].pk,
                reason=form.cleaned_data["reason"],
                user=request.user,
                actor=request.user.get_username(),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(
                request, f"Category {category.name!r} created; {moved} open tickets re-routed to it."
            )
            return redirect("tickets:topics")
    return _page(request, days=DEFAULT_DAYS, failed=(pk, form))
