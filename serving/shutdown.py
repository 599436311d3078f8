"""Stop without dropping requests: on SIGTERM, refuse new connections, answer what was accepted, then exit.

What `bentoml serve` does on its own drops requests under load (seen: 21 of ~3,700 reset by peer):
- its process manager (circus) keeps the listening socket open until every worker has exited, so
  connections made meanwhile wait in the kernel's queue and are reset when it finally closes;
- uvicorn closes idle keep-alive connections at once, racing a request the client is sending on one.

So each worker, on SIGTERM: (1) shuts the shared listening socket down, so new connections are refused
at once (a client can retry elsewhere) instead of queueing; (2) answers every request still arriving on
open connections with `Connection: close`, so the client knows not to send another on it; (3) once no
request is in flight and none has arrived for a short quiet time (or the grace period is over), hands
the signal to uvicorn, whose shutdown closes the now idle connections and runs the service's shutdown
hooks (which flush the prediction log).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

CONNECTION_CLOSE = (b"connection", b"close")
# Event streams still open when everything else is answered get this long to finish (a UI answer on its way).
STREAM_GRACE_S = 2


class GracefulStop:
    """The drain's state, shared by the SIGTERM handler and the ASGI middleware that counts requests."""

    def __init__(self, grace_s: float, quiet_s: float = 0.5) -> None:
        self.grace_s = grace_s
        self.quiet_s = quiet_s
        self.draining = False
        self.in_flight = 0
        self.last_request = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None

    def install(self) -> bool:
        """Take SIGTERM over from uvicorn in this worker; False where signals cannot be set (not the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return True

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """Runs in the main thread between two bytecodes: start the drain on the event loop."""
        if self.draining or self._loop is None:
            return
        self.draining = True
        self.last_request = time.monotonic()
        refused = stop_listening()
        logger.info(
            "SIGTERM: refusing new connections (%d listening sockets shut), finishing accepted requests within %.0f s",
            refused,
            self.grace_s,
        )
        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(self._drain(signum, frame)))  # type: ignore[union-attr]

    async def _drain(self, signum: int, frame: FrameType | None) -> None:
        """Wait until nothing is in flight and the connections have gone quiet, then let uvicorn shut down."""
        started = time.monotonic()
        deadline = started + self.grace_s
        while time.monotonic() < deadline:
            if self.in_flight == 0 and time.monotonic() - self.last_request >= self.quiet_s:
                break
            await asyncio.sleep(0.02)
        else:
            logger.warning("Grace period of %.0f s over with %d requests in flight", self.grace_s, self.in_flight)
        logger.info("Drained in %.2f s; shutting down", time.monotonic() - started)
        if not callable(self._previous):
            signal.raise_signal(signum)
            return
        # The previous handler is uvicorn's Server.handle_exit. Its shutdown waits for every open connection,
        # with no limit by default: a browser's open event stream (the web UI's heartbeat) would hold the
        # process up for good. Every other request has been answered by now, so its own
        # timeout_graceful_shutdown option gives the streams a moment to deliver what they hold, then ends them.
        server = getattr(self._previous, "__self__", None)
        config = getattr(server, "config", None)
        if config is not None and getattr(config, "timeout_graceful_shutdown", 0) is None:
            config.timeout_graceful_shutdown = max(1, min(STREAM_GRACE_S, round(deadline - time.monotonic())))
        self._previous(signum, frame)  # closes idle connections, then runs the service's shutdown hooks


def stop_listening() -> int:
    """Shut down this process's listening TCP sockets, so the kernel refuses new connections; return how many.

    The socket is shared with the process manager and the other workers, so one shutdown stops it for all.
    """
    import psutil

    count = 0
    for connection in psutil.Process().net_connections(kind="tcp"):
        if connection.status != psutil.CONN_LISTEN or connection.fd < 0:
            continue
        listener = socket.socket(fileno=os.dup(connection.fd))
        try:
            listener.shutdown(socket.SHUT_RD)
            count += 1
        except OSError:
            pass  # another worker shut it down first
        finally:
            listener.close()
    return count


class DrainingConnections:
    """ASGI middleware: counts requests in flight, and while draining tells each client to close its connection."""

    def __init__(self, app: ASGIApp, stop: GracefulStop) -> None:
        self.app = app
        self.stop = stop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stop = self.stop
        stop.in_flight += 1
        stop.last_request = time.monotonic()
        counted = True

        async def send_closing(message: Message) -> None:
            nonlocal counted
            if message["type"] == "http.response.start":
                if stop.draining:
                    message["headers"] = [*message.get("headers", []), CONNECTION_CLOSE]
                # An event stream (the web UI's) stays open as long as the page: it must not hold the drain up.
                if counted and _is_event_stream(message):
                    stop.in_flight -= 1
                    counted = False
            await send(message)

        try:
            await self.app(scope, receive, send_closing)
        finally:
            if counted:
                stop.in_flight -= 1
            stop.last_request = time.monotonic()


def _is_event_stream(message: Message) -> bool:
    """Whether a response start message announces an event stream (text/event-stream)."""
    for name, value in message.get("headers", []):
        if name.lower() == b"content-type":
            return bool(bytes(value).lstrip().lower().startswith(b"text/event-stream"))
    return False
