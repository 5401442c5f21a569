"""WSGI entry point for gunicorn: ``gunicorn inference_app.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inference_app.settings")

application = get_wsgi_application()
