"""Log lines: one JSON object per line (`LOG_FORMAT=json`, production's default) or the
plain text `make run` prints (`LOG_FORMAT=text`, the default elsewhere).

Every line says which request it belongs to (`request_id`, set by the HTTP middleware
for the request's task) and, when an OpenTelemetry span is current, its `trace_id` and
`span_id`. uvicorn's loggers go through the same handler (the server is started
without a log config of its own). Nothing here logs variables, headers or bodies: the
request line carries ids, names, numbers and codes only.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Literal

from opentelemetry import trace
from pythonjsonlogger.orjson import OrjsonFormatter

# The id of the request this task serves (None outside requests: start-up, the worker).
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class RequestFields(logging.Filter):
    """Adds `request_id`, `trace_id` and `span_id` to each record that has them."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


def json_formatter() -> logging.Formatter:
    # orjson (a dependency already) formats a record in about half the time of json.
    return OrjsonFormatter(
        JSON_FIELDS,
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def formatter_for(log_format: Literal["json", "text"]) -> logging.Formatter:
    return json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str, log_format: Literal["json", "text"]) -> None:
    """One handler on the root logger, in this format; uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(RequestFields())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
