"""The decision model pages (admins): every version with its state, a candidate compared with the
active version on the live tickets it shadowed, and the moves (promote, roll back, retire). Reads
through ``tickets.model_comparison``; writes through ``tickets.services.model_registry``."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from tickets.forms import ModelPromoteForm, ModelRollBackForm
from tickets.model_comparison import (
    decision_model_events,
    decision_model_get,
    decision_models_list,
    model_comparison,
)
from tickets.permissions import is_admin
from tickets.services.model_registry import GateFailed, LifecycleError, model_promote, model_roll_back
from tickets.views.common import role_required

WHAT = "the decision models (admins)"


@require_GET
@role_required(is_admin, what=WHAT)
def models_page(request: HttpRequest) -> HttpResponse:
    return render(
        request, "tickets/models.html", {"versions": decision_models_list(), "rollback": ModelRollBackForm()}
    )


def _detail(
    request: HttpRequest, pk: int, *, form: ModelPromoteForm | None = None, status: int = 200
) -> HttpResponse:
    version = decision_model_get(decision_model_id=pk)
    if version is None:
        raise Http404("no such decision model")
    context: dict[str, Any] = {
        "version": version,
        "comparison": model_comparison(candidate=version),
        "events": decision_model_events(decision_model_id=pk)[:50],
        "form": form or ModelPromoteForm(),
    }
    return render(request, "tickets/model_detail.html", context, status=status)


@require_GET
@role_required(is_admin, what=WHAT)
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, pk)


@require_POST
@role_required(is_admin, what=WHAT)
def model_promote_view(request: HttpRequest, pk: int) -> HttpResponse:
    if decision_model_get(decision_model_id=pk) is None:
        raise Http404("no such decision model")
    form = ModelPromoteForm(request.POST)
    if not form.is_valid():
        return _detail(request, pk, form=form, status=422)
    try:
        model_promote(
            decision_model_id=pk, actor=request.user.get_username(), **_promotion(form.cleaned_data)
        )
    except GateFailed as exc:
        form.add_error("override", f"{exc}. Tick override and give a reason to go ahead anyway.")
        return _detail(request, pk, form=form, status=422)
    except LifecycleError as exc:
        form.add_error(None, str(exc))
        return _detail(request, pk, form=form, status=422)
    messages.success(request, f"Moved to {form.cleaned_data['to']}; workers use it within seconds.")
    return redirect("tickets:model", pk=pk)


def _promotion(data: dict[str, Any]) -> dict[str, Any]:
    moves = {"to": data["to"], "reason": data.get("reason") or "", "override": bool(data.get("override"))}
    if data["to"] == "canary" and data.get("canary_share") is not None:
        moves["canary_share"] = data["canary_share"]
    return moves


@require_POST
@role_required(is_admin, what=WHAT)
def model_roll_back_view(request: HttpRequest) -> HttpResponse:
    form = ModelRollBackForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose what to roll back: the label model or the LLM endpoint.")
        return redirect("tickets:models")
    try:
        restored = model_roll_back(
            kind=form.cleaned_data.get("kind") or "label_model",
            actor=request.user.get_username(),
            reason=form.cleaned_data.get("reason", ""),
        )
    except LifecycleError as exc:
        messages.error(request, str(exc))
        return redirect("tickets:models")
    messages.success(request, f"Rolled back: {restored.name} is active again.")
    return redirect("tickets:models")
