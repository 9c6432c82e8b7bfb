"""Structured logs: one JSON object per line, carrying job_id/tenant/event fields when given.

Every text in a line passes through ``redact`` first: no secret (a query's ``user_secret``, an
``Authorization`` header, a password in a URL, an API key) is ever written.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from functions.common.redact import redact

CONTEXT_FIELDS = (
    "job_id",
    "tenant",
    "event_id",
    "event_type",
    "attempt",
    "function",
    "child",
    "pid",
    "returncode",
    "uptime_s",
    "restart_in_s",
    "log",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            if hasattr(record, name):
                value = getattr(record, name)
                line[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "aiobotocore", "urllib3", "httpx", "httpcore", "nats"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
