"""Top-level URLs. The apps' URLconfs are included by name: the project shell imports no app code."""

from django.contrib import admin
from django.urls import include, path

from inference_app import health, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("tickets.api.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("accounts/", include("tickets.auth_urls")),
    path("", include("tickets.urls")),
]
