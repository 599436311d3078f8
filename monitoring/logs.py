"""The service's log lines: JSON (SERVING_LOG_FORMAT=json) with the request id, or text that a client cannot forge.

Whatever a client sent can reach a log line (a path, a header): in text lines, control characters are
written escaped, so `%0a` in a path cannot start a forged line and ANSI escapes cannot repaint a terminal
(JSON lines escape them already). A request refused with a 4xx is the client's mistake, already in the
access log: BentoML's handler also logged each refused body as an ERROR with its traceback and the values
sent (one 758 KB body: 5.8 MB of log), which is dropped here.
"""

from __future__ import annotations

import logging
import re
import traceback

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
    drop_client_errors()


# C0 and C1 control characters and DEL: never written raw into a text line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The logger of BentoML's handler's `log_exception`, which logs every refused request with its traceback.
BENTOML_HANDLER_LOGGER = "bentoml._internal.server.http_app"


def printable(text: str) -> str:
    """`text` with control characters escaped (a newline becomes \\n, ESC \\x1b)."""
    return _CONTROL.sub(_escape, text) if _CONTROL.search(text) else text


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


class EscapeControlCharacters(logging.Filter):
    """Write a record's message with its control characters escaped (tracebacks, added later, keep their lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "escaped", False):  # escaped where it was written (its lines are the code's own)
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed call: the handler reports it as it always has
            return True
        escaped = printable(message)
        if escaped is not message:
            record.msg, record.args = escaped, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = escaped_traceback(record.exc_info[1])
        return True


def escaped_traceback(error: BaseException) -> str:
    """The traceback as logging writes it, each exception's own text escaped (its frames are the code's lines)."""
    report = traceback.TracebackException.from_exception(error)
    seen: set[int] = set()
    part: traceback.TracebackException | None = report
    while part is not None and id(part) not in seen:  # the exception, then what caused or preceded it
        seen.add(id(part))
        part._str = printable(part._str)  # type: ignore[attr-defined]  # Python 3.11's; tests pin it
        part = part.__cause__ or part.__context__
    return "".join(report.format()).rstrip("\n")


class DropClientErrors(logging.Filter):
    """Drop BentoML's ERROR records for requests refused with a 4xx (a validation error or a BadInput)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            return True
        from pydantic import ValidationError

        if isinstance(error, ValidationError):
            return False
        status = getattr(getattr(error, "error_code", None), "value", 500)
        return not (isinstance(status, int) and 400 <= status < 500)


def use_text_logs(logger_names: tuple[str, ...] = ("", "bentoml", "bentoml.access", "uvicorn.error")) -> None:
    """Escape control characters in every text line these loggers' handlers write; drop refused requests' errors."""
    escape = EscapeControlCharacters()
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, EscapeControlCharacters) for f in handler.filters):
                handler.addFilter(escape)
    drop_client_errors()


def drop_client_errors() -> None:
    """Keep BentoML's handler from logging a client's mistake as an ERROR with its traceback."""
    handler_logger = logging.getLogger(BENTOML_HANDLER_LOGGER)
    if not any(isinstance(f, DropClientErrors) for f in handler_logger.filters):
        handler_logger.addFilter(DropClientErrors())


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
