"""The web UI's URLs (included at the site root)."""

from django.urls import path
from django.views.generic import RedirectView

from tickets.views import analytics, dashboard, models, public, ticket, topics

app_name = "tickets"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="tickets:submit"), name="home"),
    path("submit/", public.submit_ticket, name="submit"),
    path("submit/sent/<str:token>/", public.submitted, name="submitted"),
    path("status/<str:token>/", public.ticket_status, name="status"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("tickets/<int:pk>/", ticket.ticket_detail, name="ticket"),
    path("tickets/<int:pk>/progress/", ticket.ticket_progress, name="ticket_progress"),
    path("tickets/<int:pk>/actions/<slug:action>/", ticket.ticket_action, name="ticket_action"),
    path("analytics/", analytics.analytics_page, name="analytics"),
    path("topics/", topics.topics_page, name="topics"),
    path("models/", models.models_page, name="models"),
    path("models/roll-back/", models.model_roll_back_view, name="models_roll_back"),
    path("models/<int:pk>/", models.model_detail, name="model"),
    path("models/<int:pk>/promote/", models.model_promote_view, name="model_promote"),
    path("topics/refresh/", topics.topics_refresh, name="topics_refresh"),
    path("topics/<int:pk>/category/", topics.topic_category, name="topic_category"),
]
