from importlib import import_module

from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "Tickets"

    def import_models(self) -> None:
        super().import_models()
        # More of the app's models, in their own module (tickets/models.py is at the size limit).
        import_module("tickets.topic_models")
        import_module("tickets.decision_models")

    def ready(self) -> None:
        # The services and the flow enqueue tasks by name; importing the task modules registers them
        # in every process (in tests with eager Celery, a registered task runs in place).
        from tickets import metrics, tasks  # noqa: F401
        from tickets.api import tasks as api_tasks  # noqa: F401

        metrics.register()
