"""Text log lines a client cannot forge, and no ERROR with a traceback for a request refused with a 4xx."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from bentoml.exceptions import BadInput, InternalServerError, NotFound
from pydantic import TypeAdapter, ValidationError

from monitoring.logs import BENTOML_HANDLER_LOGGER, DropClientErrors, EscapeControlCharacters, printable, use_text_logs


@dataclass
class Captured:
    """A logger of the test's own, its one handler, and what the handler wrote."""

    logger: logging.Logger
    handler: logging.Handler
    stream: io.StringIO
    level: int
    propagate: bool

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()


def _capture(name: str) -> Captured:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(name)
    captured = Captured(logger, handler, stream, logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return captured


def _release(captured: Captured) -> None:
    captured.logger.removeHandler(captured.handler)
    captured.handler.close()
    captured.logger.setLevel(captured.level)
    captured.logger.propagate = captured.propagate


@pytest.fixture
def captured() -> Iterator[Captured]:
    """A logger whose handler escapes control characters."""
    captured = _capture("tests.log_escaping.escaped")
    captured.handler.addFilter(EscapeControlCharacters())
    yield captured
    _release(captured)


@pytest.fixture
def handler_logger_filters() -> Iterator[logging.Logger]:
    """BentoML's handler logger, its filters put back as they were afterwards."""
    logger = logging.getLogger(BENTOML_HANDLER_LOGGER)
    saved = list(logger.filters)
    yield logger
    logger.filters[:] = saved


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("tab\there", "tab\\there"),
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("next line\x85", "next line\\x85"),
        ("c1 end\x9f", "c1 end\\x9f"),
        ("é\n日本", "é\\n日本"),
    ],
)
def test_printable_escapes_control_characters(text: str, escaped: str) -> None:
    assert printable(text) == escaped


@pytest.mark.parametrize("text", ["plain", "", "é", "日本", "no\\nnewline", "nbsp\xa0after C1", "ünïcödé ✓"])
def test_printable_returns_the_same_text_when_nothing_is_escaped(text: str) -> None:
    assert printable(text) is text


def test_a_message_with_a_newline_in_its_args_stays_one_line(captured: Captured) -> None:
    captured.logger.warning("Exception on %s [%s]", "/x\nINFO forged line", "POST")
    assert captured.lines() == ["WARNING Exception on /x\\nINFO forged line [POST]"]


def test_an_ansi_escape_is_written_escaped(captured: Captured) -> None:
    captured.logger.info("path %s", "/\x1b[2Jcleared")
    assert captured.stream.getvalue() == "INFO path /\\x1b[2Jcleared\n"


def test_a_message_without_control_characters_keeps_its_args(captured: Captured) -> None:
    records: list[logging.LogRecord] = []
    captured.handler.addFilter(lambda record: records.append(record) or True)
    captured.logger.info("predicted %s for %d rows", "setosa", 3)
    assert captured.lines() == ["INFO predicted setosa for 3 rows"]
    assert records[0].msg == "predicted %s for %d rows"
    assert records[0].args == ("setosa", 3)


def test_a_record_escaped_where_it_was_written_is_left_alone(captured: Captured) -> None:
    captured.logger.error("A web UI call failed:\n  frame\nValueError: x", extra={"escaped": True})
    assert captured.lines() == ["ERROR A web UI call failed:", "  frame", "ValueError: x"]


def test_a_traceback_keeps_its_lines(captured: Captured) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        captured.logger.exception("failed on %s", "/x\ny")
    lines = captured.lines()
    assert lines[0] == "ERROR failed on /x\\ny"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"
    assert len(lines) > 3


def test_a_log_call_with_wrong_args_does_not_raise() -> None:
    """The filter lets a malformed record through for the handler to report (logging's handleError), never raises."""
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "%d rows", ("many",), None)
    assert EscapeControlCharacters().filter(record) is True
    assert (record.msg, record.args) == ("%d rows", ("many",))


def test_an_exceptions_own_text_is_escaped_in_its_traceback() -> None:
    try:
        try:
            raise KeyError("inner\n2026-12-01 [INFO] forged")
        except KeyError as cause:
            raise ValueError("outer\x1b[31m") from cause
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    EscapeControlCharacters().filter(record)
    text = record.exc_text or ""
    assert "outer\\x1b[31m" in text and "inner\\n2026-12-01" in text and "\x1b" not in text
    assert not any(line.startswith("2026-12-01") for line in text.splitlines())
    assert "The above exception was the direct cause" in text and 'File "' in text  # frames and chain kept


def _record_of(error: BaseException | None) -> logging.LogRecord:
    """The ERROR record BentoML's handler writes for a failed request, with `error` as its exc_info."""
    exc_info = None
    if error is not None:
        try:
            raise error
        except BaseException:
            exc_info = sys.exc_info()
    return logging.LogRecord(
        BENTOML_HANDLER_LOGGER, logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/prediction", "POST"), exc_info
    )


def _validation_error() -> ValidationError:
    try:
        TypeAdapter(int).validate_python("not a number")
    except ValidationError as error:
        return error
    raise AssertionError("validated")


class _TeapotError(Exception):
    """An exception of some library that carries a 4xx status like BentoML's."""

    class error_code:  # noqa: N801 - the attribute name BentoML's exceptions use
        value = 418


class _OddCodeError(Exception):
    """An exception whose error_code is no HTTP status."""

    class error_code:  # noqa: N801
        value = "400"


@pytest.mark.parametrize("error", [_validation_error(), BadInput("bad"), NotFound("nope"), _TeapotError()])
def test_client_errors_are_dropped(error: BaseException) -> None:
    assert DropClientErrors().filter(_record_of(error)) is False


@pytest.mark.parametrize("error", [None, InternalServerError("broken"), ValueError("broken"), _OddCodeError()])
def test_server_errors_and_plain_records_are_kept(error: BaseException | None) -> None:
    assert DropClientErrors().filter(_record_of(error)) is True


def test_a_record_logged_outside_an_except_is_kept() -> None:
    record = _record_of(None)
    record.exc_info = (None, None, None)  # what logger.exception() outside an `except` gives
    assert DropClientErrors().filter(record) is True


def test_bad_input_is_a_4xx() -> None:
    assert 400 <= BadInput.error_code.value < 500


def test_use_text_logs_escapes_the_named_loggers_handlers_once(handler_logger_filters: logging.Logger) -> None:
    first, second = _capture("tests.log_escaping.first"), _capture("tests.log_escaping.second")
    try:
        names = (first.logger.name, second.logger.name)
        use_text_logs(names)
        use_text_logs(names)
        for captured in (first, second):
            assert sum(isinstance(f, EscapeControlCharacters) for f in captured.handler.filters) == 1
            captured.logger.warning("path %s", "/a\nb")
            assert captured.lines() == ["WARNING path /a\\nb"]
        assert sum(isinstance(f, DropClientErrors) for f in handler_logger_filters.filters) == 1
    finally:
        _release(first)
        _release(second)


def test_use_text_logs_drops_refused_requests_on_bentomls_handler_logger(
    handler_logger_filters: logging.Logger,
) -> None:
    captured = _capture(BENTOML_HANDLER_LOGGER)
    try:
        use_text_logs(())
        for error in (BadInput("bad value"), _validation_error(), InternalServerError("broken")):
            try:
                raise error
            except Exception:
                handler_logger_filters.exception("Exception on %s [%s]", "/prediction", "POST")
        errors = [line for line in captured.lines() if line.startswith("ERROR")]
        assert errors == ["ERROR Exception on /prediction [POST]"]
        assert captured.lines()[-1] == "bentoml.exceptions.InternalServerError: broken"
    finally:
        _release(captured)
