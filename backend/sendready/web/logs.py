"""Structured JSON logs, one object a line, with anything that looks like a token removed."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# A JWT (three base64url parts, the first two JSON), a bearer credential, a secret= pair.
SECRETS = re.compile(
    r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]+"
    r"|(?i:(?:client_secret|password|assertion|access_token|refresh_token)[\"']?\s*[=:]\s*[\"']?)"
    r"[^\s\"'&,]+"
)
REDACTED = "[redacted]"

#: LogRecord attributes that are not "extra" fields.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def redact(text: str) -> str:
    return SECRETS.sub(REDACTED, text)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; extras become fields; secrets never survive."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=lambda v: redact(str(v)))


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the sendready and gunicorn loggers (called by the entry points)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("sendready", "gunicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
