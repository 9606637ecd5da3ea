"""Log lines of ``touchpoint serve``: readable text, or one JSON object per line (``--log-format json``).

A JSON line has ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and ``fields`` (what the code
passed as ``extra={"fields": {...}}``, e.g. a job's name and duration), plus ``exception`` when there
is a traceback. uvicorn's own loggers go through the same handler.

>>> import logging
>>> record = logging.LogRecord("touchpoint.jobs", logging.INFO, __file__, 1, "job %s ok", ("profiles",), None)
>>> record.fields = {"job": "profiles"}
>>> line = JsonFormatter().format(record)
>>> import json; sorted(json.loads(line)), json.loads(line)["message"]
(['fields', 'level', 'logger', 'message', 'ts'], 'job profiles ok')
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

FORMATS = ("text", "json")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "fields": getattr(record, "fields", None) or {},
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(fmt: str = "text", level: str = "info") -> None:
    """Send every log record (touchpoint's and uvicorn's) to stderr in ``fmt``, from ``level`` up."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not known; use one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
