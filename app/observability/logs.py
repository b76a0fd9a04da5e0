"""Structured logs: one JSON object per line on stderr.

Log calls pass their fields in `extra={"fields": {...}}`. Nothing here ever
receives a secret, a signature, a body or a customer's personal data: callers
log ids, topics, outcomes and timings only.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# Libraries whose INFO lines name whole URLs: a bulk result's URL carries its
# signature, an OAuth callback's its code. Their warnings and errors still show.
QUIETED = ("httpx", "httpcore")


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIETED:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def server_logging_config(level: str) -> dict[str, Any]:
    """Uvicorn's logging (its own messages), in the same JSON format."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {"uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False}},
    }
