"""What every signed-in page shares: the role check (deny by default) and HTMX detection."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tickets.permissions import has_role


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


View = Callable[..., HttpResponse]


def role_required(
    check: Callable[[Any], bool] = has_role, *, what: str = "the dashboard"
) -> Callable[[View], View]:
    """Signed in (else to the sign-in page) and passing ``check`` (else a 403 page saying why)."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not check(request.user):
                return render(
                    request,
                    "403.html",
                    {"reason": f"Your account has no role that opens {what}. Ask an administrator."},
                    status=403,
                )
            return view(request, *args, **kwargs)

        return login_required(wrapper)

    return decorator
