"""Switchboard's Django project package: settings, URLs, the Celery app and the model layer."""

from inference_app.celery import app as celery_app

__all__ = ("celery_app",)
