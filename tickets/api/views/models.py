"""/models (admin): decision model versions (and registering an LLM one), a candidate's comparison
with the active one, and the moves: promote (shadow, canary, active; the gate, or an override with a
reason), roll back, retire."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from tickets.api.errors import ApiError
from tickets.api.permissions import AdminScope
from tickets.api.serializers.models import (
    ComparisonOutputSerializer,
    DecisionModelOutputSerializer,
    LlmRegisterInputSerializer,
    PromoteInputSerializer,
    RetireInputSerializer,
    RollBackInputSerializer,
)
from tickets.api.views.base import ID_PARAM, ApiView, error_response
from tickets.decision_models import DecisionModel
from tickets.model_comparison import decision_model_get, decision_models_list, model_comparison
from tickets.services.model_registry import (
    GateFailed,
    LifecycleError,
    model_promote,
    model_register,
    model_retire,
    model_roll_back,
)

CONFLICT = error_response("the move is not allowed now, or the gate failed (code gate_failed)")


def _version(decision_model_id: int) -> DecisionModel:
    model = decision_model_get(decision_model_id=decision_model_id)
    if model is None:
        raise ApiError(status_code=404, code="not_found", message="No such decision model.")
    return model


def _refused(exc: LifecycleError) -> ApiError:
    if isinstance(exc, GateFailed):
        return ApiError(
            status_code=409,
            code="gate_failed",
            message=f"{exc} Promote with override=true and a reason to go ahead anyway.",
            fields={"override": ["Needed: the gate failed."]},
        )
    return ApiError(status_code=409, code="conflict", message=str(exc))


class ModelCollectionView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(operation_id="models_list", responses={200: DecisionModelOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(DecisionModelOutputSerializer(decision_models_list(), many=True).data)

    @extend_schema(
        operation_id="models_register_llm",
        request=LlmRegisterInputSerializer,
        responses={201: DecisionModelOutputSerializer, 400: error_response("the configuration is not valid")},
        summary="Register an LLM endpoint + model + prompt version as a candidate",
    )
    def post(self, request: Request) -> Response:
        data = self.data(LlmRegisterInputSerializer)
        try:
            model = model_register(kind=DecisionModel.Kind.LLM, actor=self.principal.actor, **data)
        except LifecycleError as exc:
            raise ApiError(
                status_code=400, code="invalid", message=str(exc), fields={"config": [str(exc)]}
            ) from exc
        return Response(DecisionModelOutputSerializer(model).data, status=201)


class ModelComparisonView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(
        operation_id="models_comparison",
        parameters=[ID_PARAM],
        responses={200: ComparisonOutputSerializer, 404: error_response("no such decision model")},
        summary="A candidate against the active version on the live tickets it shadowed",
    )
    def get(self, request: Request, id: int) -> Response:
        comparison = model_comparison(candidate=_version(id))
        return Response(ComparisonOutputSerializer(comparison.as_dict()).data)


class ModelPromoteView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(
        operation_id="models_promote",
        parameters=[ID_PARAM],
        request=PromoteInputSerializer,
        responses={200: DecisionModelOutputSerializer, 404: error_response("no such model"), 409: CONFLICT},
        summary="Move a version to shadow, canary (a share of tickets) or active",
    )
    def post(self, request: Request, id: int) -> Response:
        data = self.data(PromoteInputSerializer)
        _version(id)
        try:
            model = model_promote(decision_model_id=id, actor=self.principal.actor, **data)
        except LifecycleError as exc:
            raise _refused(exc) from exc
        return Response(DecisionModelOutputSerializer(model).data)


class ModelRetireView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(
        operation_id="models_retire",
        parameters=[ID_PARAM],
        request=RetireInputSerializer,
        responses={200: DecisionModelOutputSerializer, 404: error_response("no such model"), 409: CONFLICT},
    )
    def post(self, request: Request, id: int) -> Response:
        data = self.data(RetireInputSerializer)
        _version(id)
        try:
            model = model_retire(decision_model_id=id, actor=self.principal.actor, **data)
        except LifecycleError as exc:
            raise _refused(exc) from exc
        return Response(DecisionModelOutputSerializer(model).data)


class ModelRollBackView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(
        operation_id="models_roll_back",
        request=RollBackInputSerializer,
        responses={200: DecisionModelOutputSerializer, 409: CONFLICT},
        summary="Put the version the active one replaced back in place",
    )
    def post(self, request: Request) -> Response:
        data: dict[str, Any] = self.data(RollBackInputSerializer)
        try:
            model = model_roll_back(actor=self.principal.actor, **data)
        except LifecycleError as exc:
            raise _refused(exc) from exc
        return Response(DecisionModelOutputSerializer(model).data)
