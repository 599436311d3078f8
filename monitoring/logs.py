"""JSON log lines for the service (SERVING_LOG_FORMAT=json), each with the request id the prediction log carries."""

from __future__ import annotations

import logging

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from monitoring.context import current_request_id

FIELDS = ("asctime", "levelname", "name", "message", "process")
# What BentoML's log filter adds for its text format; the JSON lines carry the same as fields of their own.
BENTOML_TEXT_ATTRS = ("levelname_bracketed", "trace_msg", "service_name")


class RequestIdFilter(logging.Filter):
    """Put the current request's id and OpenTelemetry trace id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # BentoML's own filter stores its numeric span id here; ours is the id clients and the prediction log see.
        record.request_id = current_request_id()
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else None
        return True


def use_json_logs(logger_names: tuple[str, ...] = ("", "bentoml", "bentoml.access", "uvicorn.error")) -> None:
    """Switch every handler of these loggers (BentoML's included) to one JSON object per line."""
    formatter = JsonFormatter(
        [*FIELDS, "request_id", "trace_id"],
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        reserved_attrs=[*RESERVED_ATTRS, *BENTOML_TEXT_ATTRS],
    )
    request_ids = RequestIdFilter()
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter)
            if request_ids not in handler.filters:
                handler.addFilter(request_ids)


# The project's own packages; their records reach the handlers BentoML puts on the root logger.
PROJECT_LOGGERS = ("service", "serving", "monitoring", "ui")


def follow_bentoml_log_level(names: tuple[str, ...] = PROJECT_LOGGERS) -> None:
    """Log the project's INFO lines (model loaded, drain started) wherever BentoML logs its own.

    BentoML's server logging sets its "bentoml" logger to INFO (DEBUG with --debug, ERROR when quiet) but
    leaves the root logger at WARNING, which would silence every other package's INFO lines.
    """
    level = logging.getLogger("bentoml").getEffectiveLevel()
    for name in names:
        logging.getLogger(name).setLevel(level)
