"""Pass /ui requests from the API's workers to the web UI's own single-worker service, streams included.

Gradio keeps each session's queue in its process, so the UI runs in one worker of its own (the WebUI
service in service.py, a BentoML dependency on a Unix socket) while every core serves the API. The API's
workers still see every /ui request first (API key, request id, access log, draining) and hand it on here.

Written here, on httpx, rather than with a proxy library: ~60 lines that stream Gradio's event streams and
stop when the browser goes away; the ASGI proxy packages on PyPI either buffer answers or add a server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
from starlette.types import Receive, Scope, Send

from serving.asgi import read_body, send_json

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)
# Per connection, not end to end (RFC 9110 7.6.1): never forwarded either way.
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
UNAVAILABLE = b'{"error": "the web UI is starting or unavailable; the API is not affected"}'


class UiProxy:
    """ASGI app: forwards each HTTP request, as the client sent it, to the UI service at `socket_path()`."""

    def __init__(self, socket_path: Callable[[], str | None]) -> None:
        self.socket_path = socket_path
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient | None:
        """One pooled client for this worker, made on first use (the UI service's socket is known by then)."""
        if self._client is None:
            import httpx  # here, not at import: the `bentoml serve` parent never needs it (~0.2 s)

            path = self.socket_path()
            if path is None:
                return None
            transport = httpx.AsyncHTTPTransport(uds=path)
            # No timeout on reads: an event stream stays open as long as the page has work queued.
            self._client = httpx.AsyncClient(
                transport=transport, timeout=httpx.Timeout(10.0, read=None), base_url="http://ui"
            )
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.client() if scope["type"] == "http" else None
        if client is None:
            if scope["type"] == "http":
                await send_json(send, 503, UNAVAILABLE)
            return
        body = await read_body(receive) or b""
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        headers = [(name, value) for name, value in scope["headers"] if name.lower() not in HOP_BY_HOP]
        request = client.build_request(scope["method"], target.decode("latin-1"), headers=headers, content=body)
        import httpx  # here, not at import: the `bentoml serve` parent never needs it (~0.2 s)

        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as error:
            logger.warning("The web UI service did not answer %s: %s", scope["path"], error)
            await send_json(send, 503, UNAVAILABLE)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [(n, v) for n, v in response.headers.raw if n.lower() not in HOP_BY_HOP],
                }
            )
            async with anyio.create_task_group() as tasks:
                # An event stream ends when the page goes away, not when Gradio next writes to it.
                tasks.start_soon(_cancel_on_disconnect, receive, tasks.cancel_scope)
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                tasks.cancel_scope.cancel()
        finally:
            await response.aclose()


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel `scope` once the client disconnects."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()
