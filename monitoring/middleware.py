"""ASGI middleware for the prediction routes: a request id on every answer, and errors counted by kind."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitoring.context import REQUEST_ID_HEADER, request_id_from, set_request_id
from monitoring.monitor import Monitor


class RequestTelemetry:
    """Give each request an id (the caller's X-Request-ID or a new one), echo it, and count error answers."""

    def __init__(self, app: ASGIApp, monitor: Monitor, paths: Iterable[str]) -> None:
        self.app = app
        self.monitor = monitor
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/metrics":
            self.monitor.flush_metrics()  # this worker's single predictions, gathered off the request path
        request_id = request_id_from(scope["headers"])
        # Set in this task's context, so log lines written while handling the request (the access log too) carry it.
        set_request_id(request_id)
        path = scope["path"]
        counted = path in self.paths

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
                if counted:
                    self.monitor.count_error(message["status"], path)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if counted:
                self.monitor.count_error(500, path)
            raise
