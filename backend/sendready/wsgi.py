"""The WSGI entry point for gunicorn: ``sendready.wsgi:app``, configured from the environment."""

from __future__ import annotations

from .config import Settings
from .web import create_app
from .web.logs import configure_logging

settings = Settings.from_env()
configure_logging(settings.log_level)
app = create_app(settings)
