"""Sign-in for agents, leads and admins: Django's own views with the site's template, throttled."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tickets.views import ratelimit

SIGN_IN_ATTEMPTS = 20  # per client address per window; enough for typos, too few for guessing
SIGN_IN_WINDOW_SECONDS = 900


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        decision = ratelimit.hit(
            scope="login",
            key=ratelimit.client_address(request),
            limit=SIGN_IN_ATTEMPTS,
            window_seconds=SIGN_IN_WINDOW_SECONDS,
        )
        if not decision.allowed:
            response = render(
                request,
                "429.html",
                {
                    "title": "Too many sign-in attempts",
                    "reason": f"More than {SIGN_IN_ATTEMPTS} sign-in attempts came from this address.",
                    "retry_minutes": max(1, decision.retry_after_seconds // 60),
                },
                status=429,
            )
            response["Retry-After"] = str(decision.retry_after_seconds)
            return response
        return super().post(request, *args, **kwargs)
