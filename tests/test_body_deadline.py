"""The request-body deadline: a body that does not arrive in time is answered 408; everything else passes untouched."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from starlette.types import Message, Receive, Scope, Send

from serving import deadline
from serving.deadline import DISCONNECT, BodyDeadline
from tests.loops import run_async

SECONDS = 0.1
CHECK_EVERY_S = 0.05
SCOPE: Scope = {"type": "http", "method": "POST", "path": "/prediction", "headers": []}
WHOLE: Message = {"type": "http.request", "body": b"whole", "more_body": False}


@pytest.fixture(autouse=True)
def quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check the waiting reads every 50 ms instead of every second."""
    monkeypatch.setattr(deadline, "CHECK_EVERY_S", CHECK_EVERY_S)


class Client:
    """A hand-written ASGI client: each message after its delay, then silence; every message sent to it kept."""

    def __init__(self, *steps: tuple[float, Message]) -> None:
        self.steps = list(steps)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if not self.steps:
            await asyncio.Event().wait()  # a client that sends nothing more
        delay, message = self.steps.pop(0)
        await asyncio.sleep(delay)
        return message

    async def send(self, message: Message) -> None:
        self.sent.append(message)


class EchoApp:
    """Reads the whole body (noting each message), optionally once more, then answers 200 with the body."""

    def __init__(self, read_after: bool = False, respond_first: bool = False) -> None:
        self.read_after = read_after
        self.respond_first = respond_first
        self.received: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.respond_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        body = b""
        while True:
            message = await receive()
            self.received.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        if self.read_after:
            self.received.append(await receive())
        if not self.respond_first:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


def serve(app: EchoApp, client: Client, timeout_s: float = 2.0) -> tuple[BodyDeadline, float]:
    """One request through a fresh BodyDeadline on a loop of its own; the middleware and the seconds it took."""
    middleware = BodyDeadline(app, seconds=SECONDS)

    async def run() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.wait_for(middleware(SCOPE, client.receive, client.send), timeout_s)
        return loop.time() - start

    return middleware, run_async(run)


def assert_408(sent: list[Message]) -> None:
    """Exactly one answer, 408 closing the connection, with a JSON error naming the body."""
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    detail = json.loads(sent[1]["body"])["detail"]
    assert detail[0]["loc"] == ["body"]
    assert detail[0]["type"] == "timeout"


def test_a_whole_body_passes_untouched() -> None:
    app, client = EchoApp(), Client((0.0, WHOLE))
    serve(app, client)
    assert app.received == [WHOLE]
    assert client.sent == [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]},
        {"type": "http.response.body", "body": b"whole"},
    ]


def test_a_body_in_several_chunks_within_the_deadline_passes() -> None:
    # 60 ms in all: the check (every 50 ms) runs while the last chunk is awaited and must not cut it off.
    chunks: list[Message] = [
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.request", "body": b"b", "more_body": True},
        {"type": "http.request", "body": b"c", "more_body": False},
    ]
    app, client = EchoApp(), Client(*((0.02, chunk) for chunk in chunks))
    serve(app, client)
    assert app.received == chunks
    assert client.sent[0]["status"] == 200
    assert client.sent[1]["body"] == b"abc"


def test_a_silent_body_is_answered_408_and_the_app_told_the_client_left() -> None:
    app, client = EchoApp(read_after=True), Client()
    _, took = serve(app, client)
    assert SECONDS <= took < SECONDS + 4 * CHECK_EVERY_S
    assert_408(client.sent)  # the app's own 200 afterwards was swallowed
    # Told the client went away, and told so again at once (no second wait) when it reads again.
    assert app.received == [DISCONNECT, DISCONNECT]


def test_half_a_body_is_answered_408() -> None:
    first = {"type": "http.request", "body": b"half", "more_body": True}
    app, client = EchoApp(), Client((0.0, first))
    serve(app, client)
    assert app.received == [first, DISCONNECT]
    assert_408(client.sent)


def test_a_response_already_started_gets_no_408_and_nothing_more() -> None:
    app, client = EchoApp(respond_first=True), Client()
    serve(app, client)
    assert app.received == [DISCONNECT]
    assert client.sent == [{"type": "http.response.start", "status": 200, "headers": []}]


def test_reading_after_the_body_has_no_deadline() -> None:
    later: Message = {"type": "http.disconnect"}
    app, client = EchoApp(read_after=True), Client((0.0, WHOLE), (2.5 * SECONDS, later))
    _, took = serve(app, client)
    assert took >= 2.5 * SECONDS
    assert app.received[0] == WHOLE
    assert app.received[1] is later  # the client's own message, not the middleware's DISCONNECT
    assert client.sent[0]["status"] == 200


def test_the_servers_own_cancellation_still_cancels() -> None:
    middleware = BodyDeadline(EchoApp(), seconds=SECONDS)
    client = Client()

    async def run() -> None:
        task = asyncio.create_task(middleware(SCOPE, client.receive, client.send))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_async(run)
    assert client.sent == []
    assert middleware._waiting == {}
    assert middleware._expired == set()


def test_other_scopes_get_the_servers_own_receive_and_send() -> None:
    seen: list[tuple[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    client = Client()
    scope: Scope = {"type": "lifespan"}
    run_async(lambda: BodyDeadline(app, seconds=SECONDS)(scope, client.receive, client.send))
    assert seen == [(scope, client.receive, client.send)]


def test_no_timer_or_waiting_read_is_left_after_many_requests() -> None:
    middleware = BodyDeadline(EchoApp(), seconds=SECONDS)

    async def run() -> None:
        for _ in range(50):
            await middleware(SCOPE, Client((0.0, WHOLE)).receive, Client().send)
        clients = [Client((0.001, WHOLE)) for _ in range(200)]
        clients.append(Client())  # one silent client among them
        await asyncio.gather(*(middleware(SCOPE, c.receive, c.send) for c in clients))
        assert [c.sent[0]["status"] for c in clients] == [200] * 200 + [408]
        assert middleware._waiting == {}
        await asyncio.sleep(3 * CHECK_EVERY_S)  # the armed check runs once more and finds nothing to watch
        assert middleware._timer is None

    run_async(run)
    assert middleware._waiting == {}
    assert middleware._expired == set()


def test_the_deadline_still_holds_after_a_timeout() -> None:
    middleware = BodyDeadline(EchoApp(), seconds=SECONDS)

    async def run() -> list[list[Message]]:
        answered = []
        for _ in range(2):
            client = Client()
            await asyncio.wait_for(middleware(SCOPE, client.receive, client.send), 2.0)
            answered.append(client.sent)
        return answered

    for sent in run_async(run):
        assert_408(sent)
