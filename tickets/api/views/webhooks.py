"""/webhooks (admin): endpoints that get a signed POST per event, and their deliveries."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from tickets.api.errors import ApiError
from tickets.api.filters import WebhookDeliveryFilter
from tickets.api.pagination import CursorListMixin
from tickets.api.permissions import AdminScope
from tickets.api.selectors import (
    webhook_deliveries,
    webhook_endpoint,
    webhook_endpoint_name_taken,
    webhook_endpoints,
)
from tickets.api.serializers.webhooks import (
    WebhookDeliverySerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointUpdateSerializer,
    WebhookEndpointWithSecretSerializer,
)
from tickets.api.views.base import ID_PARAM, ApiView, error_response
from tickets.models import WebhookEndpoint
from tickets.services.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
)


class WebhookCollectionView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(operation_id="webhooks_list", responses={200: WebhookEndpointSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(WebhookEndpointSerializer(webhook_endpoints(), many=True).data)

    @extend_schema(
        operation_id="webhooks_create",
        request=WebhookEndpointCreateSerializer,
        responses={201: WebhookEndpointWithSecretSerializer, 409: error_response("the name is taken")},
        summary="Register an endpoint; the answer holds its signing secret",
    )
    def post(self, request: Request) -> Response:
        data = self.data(WebhookEndpointCreateSerializer)
        if webhook_endpoint_name_taken(data["name"]):
            raise ApiError(
                status_code=409,
                code="conflict",
                message="An endpoint with this name exists.",
                fields={"name": ["Already taken."]},
            )
        endpoint = webhook_endpoint_create(created_by=self.principal.user, **data)
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class _WebhookEndpointView(ApiView):
    permission_classes = [AdminScope]

    def endpoint(self, id: int) -> WebhookEndpoint:
        return webhook_endpoint(id)


class WebhookDetailView(_WebhookEndpointView):
    @extend_schema(
        operation_id="webhooks_retrieve", parameters=[ID_PARAM], responses={200: WebhookEndpointSerializer}
    )
    def get(self, request: Request, id: int) -> Response:
        return Response(WebhookEndpointSerializer(self.endpoint(id)).data)

    @extend_schema(
        operation_id="webhooks_update",
        parameters=[ID_PARAM],
        request=WebhookEndpointUpdateSerializer,
        responses={200: WebhookEndpointSerializer},
    )
    def patch(self, request: Request, id: int) -> Response:
        endpoint = self.endpoint(id)
        data = self.data(WebhookEndpointUpdateSerializer)
        webhook_endpoint_update(endpoint=endpoint, changes=data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(operation_id="webhooks_destroy", parameters=[ID_PARAM], responses={204: None})
    def delete(self, request: Request, id: int) -> Response:
        webhook_endpoint_delete(endpoint=self.endpoint(id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveriesView(CursorListMixin, _WebhookEndpointView):
    filterset_class = WebhookDeliveryFilter

    @extend_schema(
        operation_id="webhooks_deliveries",
        parameters=[ID_PARAM],
        responses={200: WebhookDeliverySerializer(many=True)},
        summary="The endpoint's deliveries, newest first, with every attempt",
    )
    def get(self, request: Request, id: int) -> Response:
        return self.cursor_page(webhook_deliveries(self.endpoint(id)), WebhookDeliverySerializer)
