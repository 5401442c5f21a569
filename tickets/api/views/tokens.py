"""/tokens (admin): API tokens; a new token's secret is shown once."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from tickets.api.errors import ApiError
from tickets.api.permissions import AdminScope
from tickets.api.selectors import api_token_id, api_token_name_taken, api_tokens
from tickets.api.serializers.tokens import (
    ApiTokenSerializer,
    ApiTokenWithSecretSerializer,
    TokenCreateSerializer,
)
from tickets.api.views.base import ID_PARAM, ApiView, error_response
from tickets.services.api_tokens import token_create, token_forget_cached, token_revoke


class TokenCollectionView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(operation_id="tokens_list", responses={200: ApiTokenSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(ApiTokenSerializer(api_tokens(), many=True).data)

    @extend_schema(
        operation_id="tokens_create",
        request=TokenCreateSerializer,
        responses={201: ApiTokenWithSecretSerializer, 409: error_response("the name is taken")},
        summary="Make a token; its secret is in this answer only",
    )
    def post(self, request: Request) -> Response:
        data = self.data(TokenCreateSerializer)
        if api_token_name_taken(data["name"]):
            raise ApiError(
                status_code=409,
                code="conflict",
                message="A token with this name exists.",
                fields={"name": ["Already taken."]},
            )
        token, secret = token_create(created_by=self.principal.user, **data)
        body = dict(ApiTokenSerializer(token).data) | {"token": secret}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenDetailView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(
        operation_id="tokens_revoke",
        parameters=[ID_PARAM],
        responses={200: ApiTokenSerializer},
        summary="Revoke a token at once",
    )
    def delete(self, request: Request, id: int) -> Response:
        token = token_revoke(token_id=api_token_id(id))
        token_forget_cached(token)
        return Response(ApiTokenSerializer(token).data)
