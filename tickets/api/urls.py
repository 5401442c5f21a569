"""/api/v1/: the REST API, its OpenAPI schema and its docs (served from local static files)."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from tickets.api import views
from tickets.api.docs import RedocDocsView, SwaggerDocsView
from tickets.api.errors import not_found

app_name = "api"
PUBLIC = {"authentication_classes": [], "permission_classes": [AllowAny]}

urlpatterns = [
    path("tickets", views.TicketCollectionView.as_view(), name="tickets"),
    path("tickets/<str:ticket>", views.TicketDetailView.as_view(), name="ticket"),
    path("tickets/<str:ticket>/resolve", views.TicketResolveView.as_view(), name="ticket-resolve"),
    path("tickets/<str:ticket>/reopen", views.TicketReopenView.as_view(), name="ticket-reopen"),
    path("tickets/<str:ticket>/feedback", views.TicketFeedbackView.as_view(), name="ticket-feedback"),
    path("tickets/<str:ticket>/audit", views.TicketAuditView.as_view(), name="ticket-audit"),
    path("search", views.SearchView.as_view(), name="search"),
    path("imports", views.ImportCollectionView.as_view(), name="imports"),
    path("imports/<int:id>", views.ImportDetailView.as_view(), name="import"),
    path("analytics/costs", views.AnalyticsCostsView.as_view(), name="analytics-costs"),
    path("analytics/accuracy", views.AnalyticsAccuracyView.as_view(), name="analytics-accuracy"),
    path("webhooks", views.WebhookCollectionView.as_view(), name="webhooks"),
    path("webhooks/<int:id>", views.WebhookDetailView.as_view(), name="webhook"),
    path("webhooks/<int:id>/deliveries", views.WebhookDeliveriesView.as_view(), name="webhook-deliveries"),
    path("tokens", views.TokenCollectionView.as_view(), name="tokens"),
    path("tokens/<int:id>", views.TokenDetailView.as_view(), name="token"),
    # The contract and its docs are public: they hold no data.
    path("schema/", SpectacularAPIView.as_view(api_version="v1", **PUBLIC), name="schema"),
    path("docs/", SwaggerDocsView.as_view(url_name="api:schema", **PUBLIC), name="docs"),
    path("redoc/", RedocDocsView.as_view(url_name="api:schema", **PUBLIC), name="redoc"),
    re_path(r"^.*$", not_found),
]
