"""POST /search: resolved tickets most similar to a text."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from tickets.api.errors import ApiError
from tickets.api.permissions import ReadScope
from tickets.api.selectors import search_similar
from tickets.api.serializers.search import SearchResultSerializer, SearchSerializer
from tickets.api.views.base import ApiView, error_response


class SearchView(ApiView):
    permission_classes = [ReadScope]

    @extend_schema(
        operation_id="search",
        request=SearchSerializer,
        responses={200: SearchResultSerializer, 503: error_response("no search worker answered in time")},
        summary="Resolved tickets most similar to a text (hybrid FAISS + BM25, in a worker)",
    )
    def post(self, request: Request) -> Response:
        data = self.data(SearchSerializer)
        if not data["text"].strip():
            raise ApiError(
                status_code=400,
                code="validation_error",
                message="The request is not valid.",
                fields={"text": ["This field may not be blank."]},
            )
        hits = search_similar(text=data["text"], k=data["k"], team=data["team"], category=data["category"])
        return Response({"results": hits})
