"""Sign in and out (included at ``accounts/``; the names ``login`` and ``logout`` are global, as
Django's ``LOGIN_URL`` and the templates expect)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from tickets.views.auth import SignInView

urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
