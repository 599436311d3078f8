"""A deadline for the request body: a client that sends its headers and then nothing (or half a body) is cut off.

uvicorn closes idle keep-alive connections but waits for a request's body as long as the client likes: a
silent /prediction stayed open past 100 s, holding a connection and the request's memory. Once the headers
are in, the whole body must arrive within `seconds`; after that the request is answered 408 and the
application is told the client went away. Reading after the body (an event stream waiting for the page
to close) has no deadline.

A timeout per read (anyio's move_on_after, asyncio.timeout) cost 10-15 µs a request, a tenth of a small
model's whole request; here a read only enters a dict while it waits, and one timer a worker, armed only
while reads wait, cancels those past their deadline once a second.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.asgi import send_error

DISCONNECT: Message = {"type": "http.disconnect"}
CHECK_EVERY_S = 1.0


class BodyDeadline:
    """ASGI middleware: 408 when a request's body is not complete `seconds` after its headers."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self._waiting: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = timed_out = started = False
        deadline = 0.0

        async def receive_by_deadline() -> Message:
            nonlocal body_done, timed_out, deadline
            if body_done:
                return await receive()
            if timed_out:
                return DISCONNECT
            task = asyncio.current_task()
            assert task is not None
            if not deadline:  # the first read: the headers are in
                deadline = task.get_loop().time() + self.seconds
            self._wait(task, deadline)
            try:
                message = await receive()
            except asyncio.CancelledError:
                if task not in self._expired:
                    raise
                self._expired.discard(task)
                task.uncancel()  # our cancellation, not the server's: the request goes on to its 408
                timed_out = True
                if not started:
                    await _answer_timeout(send)
                return DISCONNECT
            finally:
                self._waiting.pop(task, None)
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def send_unless_timed_out(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # the client was answered 408 already
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, receive_by_deadline, send_unless_timed_out)

    def _wait(self, task: asyncio.Task[object], deadline: float) -> None:
        """Note a read that may wait until `deadline`, arming the check if none is armed."""
        self._waiting[task] = deadline
        if self._timer is None:
            self._timer = task.get_loop().call_later(CHECK_EVERY_S, self._check, task.get_loop())

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel the reads past their deadline; check again while any read waits."""
        self._timer = None
        now = loop.time()
        for task, deadline in list(self._waiting.items()):
            if deadline <= now:
                self._waiting.pop(task, None)
                self._expired.add(task)
                task.cancel()
        if self._waiting:
            self._timer = loop.call_later(CHECK_EVERY_S, self._check, loop)


async def _answer_timeout(send: Send) -> None:
    """408 Request Timeout, closing the connection."""
    message = "the request body did not arrive in time; send it whole and promptly"
    await send_error(send, 408, message, ["body"], "timeout", [(b"connection", b"close")])
