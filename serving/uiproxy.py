"""Pass /ui requests from the API's workers to the web UI's own single-worker service, streams included.

Gradio keeps each session's queue in its process, so the UI runs in one worker of its own (the WebUI
service in service.py, a BentoML dependency on a Unix socket) while every core serves the API. The API's
workers still see every /ui request first (API key, request id, access log, draining) and hand it on here,
with limits Gradio does not set itself (docs/security.md):

- a request body is streamed with a cap on its size and, for uploads, on its number of files: nothing is
  buffered, and a body over the cap is cut off and answered 413;
- Gradio's routes that fetch another address for the caller (/file=<URL>, /proxy=<URL>) are refused 403;
- a state-changing request from another site's page (an Origin that is neither this host nor an allowed
  origin) is refused 403, and Gradio's own CORS headers never reach the browser: /ui follows the API's policy;
- event streams and ordinary requests use separate connection pools, the streams capped: a page that opens
  hundreds of streams gets 503 for the next one, and every other request still goes through;
- answers lose the request headers Gradio echoes back (its ranged file answers copy every one, the
  Authorization header included) and the Date and Server headers this server sets itself.

Written here, on httpx, rather than with a proxy library: the ASGI proxy packages on PyPI either buffer
answers or add a server, and none streams Gradio's event streams until the browser goes away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
from starlette.types import Receive, Scope, Send

from serving.asgi import send_error, send_json

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)
# Per connection, not end to end (RFC 9110 7.6.1): never forwarded either way.
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
# Never in an answer: request headers Gradio echoes, headers this server writes itself, and Gradio's own CORS.
NOT_ANSWERED = HOP_BY_HOP | {
    b"authorization",
    b"cookie",
    b"proxy-authorization",
    b"host",
    b"origin",
    b"referer",
    b"user-agent",
    b"accept",
    b"accept-encoding",
    b"accept-language",
    b"range",
    b"x-request-id",
    b"date",
    b"server",
}
UNAVAILABLE = b'{"error": "the web UI is starting or unavailable; the API is not affected"}'
# A page's event streams: Gradio's heartbeat, its queue's messages, and a /call's results.
STREAM_PARTS = ("/gradio_api/heartbeat/", "/gradio_api/queue/data", "/gradio_api/call/")
UPLOAD_SUFFIX = "/gradio_api/upload"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Multipart framing around an upload's file: its headers and boundaries, never near this.
UPLOAD_OVERHEAD_BYTES = 64 * 1024
# The UI's health is asked again after this long at most (readiness probes come every few seconds).
HEALTH_EVERY_S = 1.0


class BodyRefused(Exception):
    """A request body over a limit: `message` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UiProxy:
    """ASGI app: forwards each HTTP request, as the client sent it, to the UI service at `socket_path()`."""

    def __init__(
        self,
        socket_path: Callable[[], str | None],
        max_body_bytes: int,
        max_files: int = 1,
        max_streams: int = 500,
        connections: int = 50,
        allowed_origins: Iterable[str] = (),
        ui_started: Callable[[], bool] = lambda: True,
        ui_answered: Callable[[], None] = lambda: None,
    ) -> None:
        self.socket_path = socket_path
        self.max_body_bytes = max_body_bytes + UPLOAD_OVERHEAD_BYTES
        self.max_files = max_files
        self.max_streams = max_streams
        self.connections = connections
        self.allowed_origins = frozenset(allowed_origins)
        self.open_streams = 0
        self._clients: tuple[httpx.AsyncClient, httpx.AsyncClient] | None = None
        self.ui_started = ui_started
        self.ui_answered = ui_answered
        self._answered = False
        self._ui_ready = True
        self._checked_at = -HEALTH_EVERY_S

    async def healthy(self) -> bool:
        """False while the UI service, having been ready once, does not answer ready (its queue stopped, or gone).

        Before it was first ready it is starting, which does not keep the API from taking traffic. Asked at
        most every HEALTH_EVERY_S; each ask is one GET /readyz on the UI's socket.
        """
        if not self.ui_started():
            return True
        now = time.monotonic()
        if now - self._checked_at >= HEALTH_EVERY_S:
            self._checked_at = now
            self._ui_ready = await self._ui_answers_ready()
        return self._ui_ready

    async def _ui_answers_ready(self) -> bool:
        import httpx

        clients = self.clients()
        if clients is None:
            return False
        try:
            response = await clients[0].get("/readyz", timeout=2.0)
        except httpx.TransportError:
            return False
        return response.status_code == 200

    def clients(self) -> tuple[httpx.AsyncClient, httpx.AsyncClient] | None:
        """(ordinary, streams): two pools for this worker, made on first use (the UI's socket is known by then)."""
        if self._clients is None:
            import httpx  # here, not at import: the `bentoml serve` parent never needs it (~0.2 s)

            path = self.socket_path()
            if path is None:
                return None

            def client(connections: int, read: float | None) -> httpx.AsyncClient:
                limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
                return httpx.AsyncClient(
                    transport=httpx.AsyncHTTPTransport(uds=path, limits=limits),
                    timeout=httpx.Timeout(10.0, read=read, pool=5.0),
                    base_url="http://ui",
                )

            # An event stream stays open as long as its page has work queued: no read timeout there.
            self._clients = (client(self.connections, 60.0), client(self.max_streams, None))
        return self._clients

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # Gradio's UI needs none: refused at once
            return
        if scope["type"] != "http":
            return
        if _fetches_a_url(scope["path"]):
            message = "the web UI serves its own files only, never another address"
            await send_error(send, 403, message, ["path"], "not_allowed")
            return
        if scope["method"] not in SAFE_METHODS and not self._same_site(scope):
            message = "a request to the web UI from another site's page; see SERVING_CORS_ORIGINS"
            await send_error(send, 403, message, ["header", "origin"], "cross_origin")
            return
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await send_error(send, 413, self._too_large(), ["body"], "too_large")
            return
        clients = self.clients()
        if clients is None:
            await send_json(send, 503, UNAVAILABLE)
            return
        if not _is_stream(scope):
            await self._forward(clients[0], scope, receive, send)
        elif self.open_streams >= self.max_streams:
            await send_error(send, 503, "too many open web UI streams; try again shortly", [], "busy")
        else:
            self.open_streams += 1
            try:
                await self._forward(clients[1], scope, receive, send)
            finally:
                self.open_streams -= 1

    async def _forward(self, client: httpx.AsyncClient, scope: Scope, receive: Receive, send: Send) -> None:
        import httpx

        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        headers = [(name, value) for name, value in scope["headers"] if name.lower() not in HOP_BY_HOP]
        has_body = scope["method"] not in SAFE_METHODS
        body = self._body(scope, receive) if has_body else None
        # A plain Request, not client.build_request: the client's own default headers (an Accept-Encoding the
        # browser did not send, whose br answer it would not expect) are not added; only what the browser sent.
        url = f"http://ui{target.decode('latin-1')}"
        request = httpx.Request(scope["method"], url, headers=headers, content=body, extensions=_timeouts(client))
        try:
            response = await client.send(request, stream=True)
        except BodyRefused as refused:
            await send_error(send, 413, refused.message, ["body"], "too_large")
            return
        except httpx.TransportError as error:
            logger.warning("The web UI service did not answer %s: %s", scope["path"], error)
            await send_json(send, 503, UNAVAILABLE)
            return
        if not self._answered and response.status_code < 500:
            self._answered = True
            self.ui_answered()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [(n, v) for n, v in response.headers.raw if n.lower() not in _not_answered(n)],
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

    async def _body(self, scope: Scope, receive: Receive) -> AsyncIterator[bytes]:
        """The request body as it arrives, cut off (BodyRefused) past the size cap or, for uploads, the file cap."""
        parts = _PartCounter(scope) if scope["path"].endswith(UPLOAD_SUFFIX) else None
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BodyRefused("the client went away before sending its whole request")
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyRefused(self._too_large())
            if parts is not None and parts.files(chunk) > self.max_files:
                raise BodyRefused(f"at most {self.max_files} file(s) per upload")
            yield chunk

    def _too_large(self) -> str:
        return f"request body is over {self.max_body_bytes:,} bytes; upload a smaller file"

    def _same_site(self, scope: Scope) -> bool:
        """No Origin (not a browser's cross-site call), this host's own, or one of the allowed origins."""
        origin = host = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
        if origin is None or origin.rstrip("/") in self.allowed_origins:
            return True
        return host is not None and urlsplit(origin).netloc.lower() == host.lower()


def _timeouts(client: httpx.AsyncClient) -> dict[str, object]:
    """The client's timeouts for a request not built by the client."""
    return {"timeout": client.timeout.as_dict()}


def _not_answered(name: bytes) -> frozenset[bytes]:
    """The header names never answered; Gradio's access-control-* too (CORS is the API's CORS middleware's)."""
    return NOT_ANSWERED | {name.lower()} if name.lower().startswith(b"access-control-") else NOT_ANSWERED


def _fetches_a_url(path: str) -> bool:
    """Gradio's routes that fetch another address on the caller's behalf: /file=<URL> and /proxy=<URL>."""
    for route in ("/gradio_api/file=", "/gradio_api/proxy="):
        if route in path:
            target = path.split(route, 1)[1].lower()
            return route.endswith("proxy=") or "://" in target or target.startswith("//")
    return False


def _is_stream(scope: Scope) -> bool:
    """A GET that opens an event stream (by the browser's Accept, or Gradio's paths for them)."""
    if scope["method"] != "GET":
        return False
    if any(name == b"accept" and b"text/event-stream" in value for name, value in scope["headers"]):
        return True
    path = scope["path"]
    return any(part in path for part in STREAM_PARTS)


class _PartCounter:
    """Counts the files of a multipart body chunk by chunk (its boundaries, even split across chunks)."""

    def __init__(self, scope: Scope) -> None:
        content_type = next((v for n, v in scope["headers"] if n == b"content-type"), b"")
        boundary = next(
            (p.split(b"=", 1)[1].strip(b'"') for p in content_type.split(b";") if p.strip().startswith(b"boundary=")),
            b"",
        )
        self.delimiter = b"--" + boundary if boundary else b""
        self.seen = 0
        self.tail = b""

    def files(self, chunk: bytes) -> int:
        """The files begun so far, `chunk` included (the closing boundary is not one)."""
        if not self.delimiter:
            return 0
        window = self.tail + chunk
        self.seen += window.count(self.delimiter)
        self.tail = window[-(len(self.delimiter) - 1) :]
        return max(self.seen - 1, 0)


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel `scope` once the client disconnects (a GET's empty request message may come first)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()
