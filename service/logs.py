"""Logging without patient data: UIDs are hashed, names and IDs never logged."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

_SALT = b"radtranslate-log-v1"


def hash_uid(uid: str | None) -> str:
    """A short stable pseudonym of a DICOM UID for logs (first 12 hex chars of SHA-256)."""
    if not uid:
        return "none"
    return hashlib.sha256(_SALT + str(uid).encode()).hexdigest()[:12]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra={'fields': {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info and record.levelno >= logging.ERROR:
            payload["error_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(payload, default=str)


def configure(level: str = "INFO", *, json_format: bool = False) -> None:
    """Configure the root logger once for the CLI or server."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if json_format else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
