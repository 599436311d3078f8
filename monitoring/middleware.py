"""ASGI middleware around every request: a request id, errors counted by kind, and the access log.

The access log replaces BentoML's own (turned off in service.py), in the same line format and under the
same logger name (`bentoml.access`), with one difference that makes it cheap where it matters: an answered
prediction is not logged here, because the prediction log already records it, off the request path, with
the same request id, time and latency: a line per answered prediction (one logging call with its formatting,
filters and a write to stderr) cost a large share of the throughput (docs/performance.md). Refused and failed
predictions are logged here, as every request to the other routes is (health probes and /metrics aside).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitoring.context import REQUEST_ID_HEADER, request_id_from, set_request_id
from monitoring.monitor import Monitor

access_log = logging.getLogger("bentoml.access")
# Polled every few seconds by probes, Prometheus and SageMaker (/ping): a line each would drown the log.
QUIET_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/ping"})


class RequestTelemetry:
    """Give each request an id (the caller's X-Request-ID or a new one), echo it, count errors, log access."""

    def __init__(self, app: ASGIApp, monitor: Monitor, paths: Iterable[str]) -> None:
        self.app = app
        self.monitor = monitor
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/metrics":
            self.monitor.flush_metrics()  # this worker's single predictions, gathered off the request path
        request_id = request_id_from(scope["headers"])
        # Set in this task's context, so log lines written while handling the request carry it.
        set_request_id(request_id)
        prediction = path in self.paths
        started = time.perf_counter()
        response: list[tuple[int, bytes, bytes]] = []

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
                response.append((message["status"], *_type_and_length(message.get("headers", []))))
                if prediction:
                    self.monitor.count_error(message["status"], path)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if prediction:
                self.monitor.count_error(500, path)
            response.append((500, b"", b""))
            raise
        finally:
            status = response[0][0] if response else 0
            if path not in QUIET_PATHS and not (prediction and 200 <= status < 300):
                _log_access(scope, response[0] if response else (0, b"", b""), time.perf_counter() - started)


def _type_and_length(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    """A response's Content-Type and Content-Length header values (b"" when absent)."""
    content_type = length = b""
    for name, value in headers:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            length = value
    return content_type, length


def _log_access(scope: Scope, response: tuple[int, bytes, bytes], seconds: float) -> None:
    """One line in BentoML's access-log format."""
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else "_"
    request_type, request_length = _type_and_length(scope["headers"])
    status, response_type, response_length = response
    access_log.info(
        "%s (scheme=%s,method=%s,path=%s,type=%s,length=%s) (status=%s,type=%s,length=%s) %.3fms",
        address,
        scope.get("scheme", "http"),
        scope.get("method", ""),
        scope["path"],
        request_type.decode("latin-1"),
        request_length.decode("latin-1"),
        status,
        response_type.decode("latin-1"),
        response_length.decode("latin-1"),
        seconds * 1000,
    )
