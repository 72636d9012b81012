"""Log lines for people (text, the default) or for machines (`--log-format json`).

`brickyard --log-format json ...` sets `BRICKYARD_LOG_FORMAT=json` in the environment, so
the processes it starts (a triggered run, serving workers) log the same way. A JSON line
holds `time` (UTC, ISO 8601), `level`, `logger`, `message`, and when known `run_id`,
`task`, `attempt` (a task's log records), `trace_id` and `span_id` (the current
OpenTelemetry span, when tracing is on), and `exception` (the traceback text).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

LOG_FORMAT_ENV = "BRICKYARD_LOG_FORMAT"
LOG_FORMATS = ("text", "json")
FIELDS = ("run_id", "task", "attempt", "pipeline", "endpoint")


def json_logs() -> bool:
    """Whether this process logs JSON lines (`--log-format json`)."""
    return os.environ.get(LOG_FORMAT_ENV, "text") == "json"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        line.update(_trace_ids())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def _trace_ids() -> dict[str, str]:
    """The current span's trace and span id (hex), if OpenTelemetry is loaded and a span is on."""
    if "opentelemetry.trace" not in sys.modules:
        return {}
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


class FieldsFilter(logging.Filter):
    """Adds fixed fields (run id, task, ...) to every record of a logger."""

    def __init__(self, **fields: Any) -> None:
        super().__init__()
        self.fields = fields

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in self.fields.items():
            setattr(record, name, value)
        return True


def console_formatter(text_format: str) -> logging.Formatter:
    """The formatter for a stream handler: JSON lines with `--log-format json`, else `text_format`."""
    return JsonFormatter() if json_logs() else logging.Formatter(text_format)


def use_log_format(name: str) -> None:
    """Set this process's (and its children's) log format. With `json`, brickyard's loggers
    write JSON lines to stderr at INFO, and every other library's records (WARNING and up,
    by the root logger's level) and Python warnings do too, so stderr holds JSON only."""
    os.environ[LOG_FORMAT_ENV] = name
    if name != "json":
        return
    brickyard = logging.getLogger("brickyard")
    for logger in (brickyard, logging.getLogger()):
        for handler in list(logger.handlers):
            if getattr(handler, "brickyard_json", False):
                logger.removeHandler(handler)
        logger.addHandler(_json_handler())
    brickyard.setLevel(logging.INFO)
    brickyard.propagate = False  # its records are written once, by its own handler
    logging.captureWarnings(True)


def _json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.brickyard_json = True  # type: ignore[attr-defined]
    return handler


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging config: its own, or with `--log-format json` the same with JSON lines."""
    from uvicorn.config import LOGGING_CONFIG

    if not json_logs():
        return LOGGING_CONFIG
    config: dict[str, Any] = json.loads(json.dumps(LOGGING_CONFIG))
    for formatter in config["formatters"].values():
        formatter.clear()
        formatter["()"] = f"{__name__}.JsonFormatter"
    return config
