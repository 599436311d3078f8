"""The request id that ties a response, its log lines and its prediction-log records together."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = b"x-request-id"
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# A caller's own id (from a proxy or client) is kept when it is a plain token; anything else gets a fresh one.
_ACCEPTABLE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def new_request_id() -> str:
    """A fresh random id."""
    return uuid.uuid4().hex


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
