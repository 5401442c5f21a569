"""/api/v1/: the REST API, its OpenAPI schema and its docs (served from local static files)."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from tickets.api.docs import RedocDocsView, SwaggerDocsView
from tickets.api.errors import not_found
from tickets.api.views import analytics, batch, imports, models, search, tickets, tokens, topics, webhooks

app_name = "api"
PUBLIC = {"authentication_classes": [], "permission_classes": [AllowAny]}

urlpatterns = [
    path("tickets", tickets.TicketCollectionView.as_view(), name="tickets"),
    path("tickets/batch", batch.TicketBatchView.as_view(), name="tickets-batch"),
    path("tickets/<str:ticket>", tickets.TicketDetailView.as_view(), name="ticket"),
    path("tickets/<str:ticket>/resolve", tickets.TicketResolveView.as_view(), name="ticket-resolve"),
    path("tickets/<str:ticket>/reopen", tickets.TicketReopenView.as_view(), name="ticket-reopen"),
    path("tickets/<str:ticket>/feedback", tickets.TicketFeedbackView.as_view(), name="ticket-feedback"),
    path("tickets/<str:ticket>/audit", tickets.TicketAuditView.as_view(), name="ticket-audit"),
    path("search", search.SearchView.as_view(), name="search"),
    path("imports", imports.ImportCollectionView.as_view(), name="imports"),
    path("imports/<int:id>", imports.ImportDetailView.as_view(), name="import"),
    path("analytics/costs", analytics.AnalyticsCostsView.as_view(), name="analytics-costs"),
    path("analytics/accuracy", analytics.AnalyticsAccuracyView.as_view(), name="analytics-accuracy"),
    path("webhooks", webhooks.WebhookCollectionView.as_view(), name="webhooks"),
    path("webhooks/<int:id>", webhooks.WebhookDetailView.as_view(), name="webhook"),
    path("webhooks/<int:id>/deliveries", webhooks.WebhookDeliveriesView.as_view(), name="webhook-deliveries"),
    path("topics/emerging", topics.EmergingTopicsView.as_view(), name="topics-emerging"),
    path("models", models.ModelCollectionView.as_view(), name="models"),
    path("models/roll-back", models.ModelRollBackView.as_view(), name="models-roll-back"),
    path("models/<int:id>/comparison", models.ModelComparisonView.as_view(), name="model-comparison"),
    path("models/<int:id>/promote", models.ModelPromoteView.as_view(), name="model-promote"),
    path("models/<int:id>/retire", models.ModelRetireView.as_view(), name="model-retire"),
    path("tokens", tokens.TokenCollectionView.as_view(), name="tokens"),
    path("tokens/<int:id>", tokens.TokenDetailView.as_view(), name="token"),
    # The contract and its docs are public: they hold no data.
    path("schema/", SpectacularAPIView.as_view(api_version="v1", **PUBLIC), name="schema"),
    path("docs/", SwaggerDocsView.as_view(url_name="api:schema", **PUBLIC), name="docs"),
    path("redoc/", RedocDocsView.as_view(url_name="api:schema", **PUBLIC), name="redoc"),
    # Any other path, newlines included (".*" stops at one, and the HTML 404 page would answer).
    re_path(r"^[\s\S]*\Z", not_found),
]
