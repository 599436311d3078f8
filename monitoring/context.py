"""The request id that ties a response, its log lines and its prediction-log records together."""

from __future__ import annotations

import itertools
import os
import re
from contextvars import ContextVar

REQUEST_ID_HEADER = b"x-request-id"
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# A caller's own id (from a proxy or client) is kept when it is a plain token; anything else gets a fresh one.
# Public: /feedback accepts exactly the ids an answer can carry.
REQUEST_ID_PATTERN = r"[A-Za-z0-9._:-]{1,64}"
_ACCEPTABLE_ID = re.compile(REQUEST_ID_PATTERN.encode())


class _RequestIds:
    """32 hex digits: 64 random bits drawn once per process, then a counter.

    Unique across workers and restarts like a uuid4, without its getrandom() system call per request
    (nor a getpid() one: a forked process draws its own prefix when it is forked).
    """

    def __init__(self) -> None:
        self.draw_prefix()

    def draw_prefix(self) -> None:
        """Start this process's ids afresh."""
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        """The next id."""
        return f"{self._prefix}{next(self._counter):016x}"


_ids = _RequestIds()
os.register_at_fork(after_in_child=_ids.draw_prefix)


def new_request_id() -> str:
    """A fresh id, unique across processes."""
    return _ids.next()


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-ID when it is a sane token, else a new id."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER and _ACCEPTABLE_ID.fullmatch(value):
            return value.decode()
    return new_request_id()


def set_request_id(request_id: str) -> None:
    """Make `request_id` the current request's id."""
    _request_id.set(request_id)


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request."""
    return _request_id.get()
