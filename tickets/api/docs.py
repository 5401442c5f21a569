"""The API's docs pages (Swagger UI and Redoc), under the site's Content-Security-Policy.

drf-spectacular's stock pages hold an inline <script> and <style> (and Redoc's loads Google Fonts).
Swagger UI uses the split view, which serves its start-up script as a separate (same-origin) file;
both pages use our templates, which link a static stylesheet instead of the inline one. Redoc's
bundle writes its styles into <style> tags at run time and searches in a blob: worker: only its page
allows inline styles (never script) and blob: workers.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response


class SwaggerDocsView(SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"


class RedocDocsView(SpectacularRedocView):
    template_name = "api/redoc.html"
    csp_update = {"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]}

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response._csp_update = self.csp_update  # type: ignore[attr-defined]  # read by django-csp
        return response
