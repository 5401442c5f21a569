"""The web pages' hardening: a strict Content-Security-Policy on every page, Vary on the HTMX views
that switch templates, and plain 404 and 500 pages with DEBUG off."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import path

from retrieval.models import KnowledgeEntry
from tests.ui_factories import make_category, make_team, make_ticket, make_user
from tickets.models import Feedback, ModelCall

pytestmark = pytest.mark.django_db

STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
}


def directives(response: Any) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


@pytest.fixture
def site() -> dict[str, Any]:
    billing = make_team("Billing")
    ticket = make_ticket(team=billing, category=make_category("Payments", billing))
    ModelCall.objects.create(
        ticket=ticket, purpose="classify", backend="llamacpp", model_name="m", outcome="ok"
    )
    Feedback.objects.create(ticket=ticket, kind=Feedback.Kind.ACCEPTED, actor="ana")
    KnowledgeEntry.objects.create(doc_id=ticket.pk, text="Refund it.", version=1)
    admin = Client()
    admin.force_login(make_user("root", superuser=True))
    return {"ticket": ticket, "admin": admin}


def pages(site: dict[str, Any]) -> list[tuple[str, Client]]:
    ticket, admin, anonymous = site["ticket"], site["admin"], Client()
    return [
        ("/submit/", anonymous),
        (f"/status/{ticket.status_token}/", anonymous),
        ("/accounts/login/", anonymous),
        ("/dashboard/", admin),
        (f"/tickets/{ticket.pk}/", admin),
        ("/analytics/", admin),
        ("/topics/", admin),
        ("/admin/", admin),
        ("/admin/tickets/ticket/", admin),
        ("/admin/tickets/modelcall/", admin),
        ("/admin/tickets/feedback/", admin),
        ("/admin/retrieval/knowledgeentry/", admin),
        ("/api/v1/docs/", anonymous),
        ("/api/v1/docs/?script=", anonymous),
        ("/api/v1/schema/", anonymous),
        ("/no/such/page/", anonymous),
    ]


def test_every_page_sends_a_strict_content_security_policy(site: dict[str, Any]) -> None:
    for url, client in pages(site):
        response = client.get(url)
        assert response.status_code == (404 if url.startswith("/no/") else 200), url
        policy = directives(response)
        for name, value in STRICT.items():
            assert policy[name] == value, (url, name, policy)
        if response["Content-Type"].startswith("text/html"):
            html = response.content.decode()
            # Nothing inline the policy would block: the pages hold no inline script or style.
            assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html), url
            assert not re.search(r"\son[a-z]+\s*=", html), url
            assert " style=" not in html and "<style" not in html, url


def test_htmx_is_configured_to_work_under_the_policy(client: Client) -> None:
    html = client.get("/submit/").content.decode()
    config = json.loads(re.search(r'name="htmx-config" content=\'([^\']*)\'', html).group(1))  # type: ignore[union-attr]
    # No eval, no script tags from swapped content, no <style> of its own, and no style attribute
    # copied while settling a swap (htmx's default does, which the policy blocks).
    assert config["allowEval"] is False and config["allowScriptTags"] is False
    assert config["includeIndicatorStyles"] is False and "style" not in config["attributesToSettle"]


def test_the_analytics_charts_draw_without_inline_styles(site: dict[str, Any]) -> None:
    html = site["admin"].get("/analytics/").content.decode()
    assert '<svg class="chart"' in html and '<svg class="swatch"' in html
    assert "style=" not in html


def test_only_the_redoc_page_allows_inline_styles_and_never_inline_script(client: Client) -> None:
    response = client.get("/api/v1/redoc/")
    policy = directives(response)
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self' 'unsafe-inline'"
    html = response.content.decode()
    assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html)
    assert "fonts.googleapis" not in html


def test_the_htmx_views_that_switch_templates_vary_on_hx_request(site: dict[str, Any]) -> None:
    ticket, admin = site["ticket"], site["admin"]
    for url, client in (
        ("/dashboard/", admin),
        (f"/status/{ticket.status_token}/", Client()),
        (f"/tickets/{ticket.pk}/progress/", admin),
    ):
        full, partial = client.get(url), client.get(url, HTTP_HX_REQUEST="true")
        assert full.status_code == partial.status_code == 200, url
        for response in (full, partial):
            assert "HX-Request" in [v.strip() for v in response["Vary"].split(",")], url
        assert full.content != partial.content or "progress" in url, url
    action = admin.post(
        f"/tickets/{ticket.pk}/actions/priority/", {"priority": "high"}, HTTP_HX_REQUEST="true"
    )
    assert "HX-Request" in action["Vary"]


def boom(request: Any) -> Any:
    raise RuntimeError("a bug")


urlpatterns = [path("boom/", boom)]


@override_settings(DEBUG=False, ROOT_URLCONF=__name__)
def test_an_unhandled_error_shows_the_plain_500_page() -> None:
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html and "a bug" not in html and "Traceback" not in html
    assert directives(response)["script-src"] == "'self'"


@override_settings(DEBUG=False)
def test_an_unknown_page_shows_the_404_page(client: Client) -> None:
    response = client.get("/nothing-here/")
    assert response.status_code == 404 and "Not found" in response.content.decode()
