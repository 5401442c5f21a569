"""Top-level URLs."""

from django.contrib import admin
from django.urls import include, path

from inference_app import health, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("tickets.api.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
]
