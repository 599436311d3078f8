"""The graceful stop's parts: connections told to close while draining, requests counted, the listener shut."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.shutdown import DrainingConnections, GracefulStop, stop_listening
from tests.loops import run_async


def _app(stop: GracefulStop, seen: list[int]) -> DrainingConnections:
    async def ok(_request: object) -> PlainTextResponse:
        seen.append(stop.in_flight)
        return PlainTextResponse("ok")

    async def stream(_request: object) -> StreamingResponse:
        async def events() -> Any:
            seen.append(stop.in_flight)
            yield b"data: 1\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return DrainingConnections(Starlette(routes=[Route("/p", ok), Route("/events", stream)]), stop)


def test_requests_are_counted_in_flight_and_closed_only_while_draining() -> None:
    stop, seen = GracefulStop(grace_s=5), []
    client = TestClient(_app(stop, seen))
    assert "connection" not in client.get("/p").headers
    assert seen == [1] and stop.in_flight == 0
    stop.draining = True
    assert client.get("/p").headers["connection"] == "close"
    assert stop.in_flight == 0


def test_an_event_stream_does_not_hold_the_drain_up() -> None:
    stop, seen = GracefulStop(grace_s=5), []
    client = TestClient(_app(stop, seen))
    assert client.get("/events").text == "data: 1\n\n"
    assert seen == [0]  # uncounted as soon as its answer started
    assert stop.in_flight == 0


def test_the_drain_waits_for_requests_in_flight_then_hands_the_signal_on() -> None:
    handed: list[float] = []
    stop = GracefulStop(grace_s=5, quiet_s=0.1)

    def previous(_signum: int, _frame: FrameType | None) -> None:
        handed.append(time.monotonic())

    async def scenario() -> float:
        stop._previous = previous
        stop.in_flight = 1
        stop.last_request = time.monotonic()
        drain = asyncio.create_task(stop._drain(signal.SIGTERM, None))
        await asyncio.sleep(0.3)
        assert not handed, "handed on while a request was still in flight"
        finished = time.monotonic()
        stop.in_flight = 0
        stop.last_request = finished
        await drain
        return finished

    finished = run_async(scenario)
    assert len(handed) == 1 and handed[0] - finished >= 0.1


def test_the_drain_gives_up_after_its_grace_period() -> None:
    handed: list[bool] = []
    stop = GracefulStop(grace_s=0.2, quiet_s=0.05)
    stop._previous = lambda _signum, _frame: handed.append(True)
    stop.in_flight = 1  # a request that never ends
    started = time.monotonic()
    run_async(lambda: stop._drain(signal.SIGTERM, None))
    assert handed and 0.2 <= time.monotonic() - started < 1.0


def test_install_is_refused_outside_the_main_thread() -> None:
    installed: list[bool] = []
    thread = threading.Thread(target=lambda: installed.append(GracefulStop(grace_s=1).install()))
    thread.start()
    thread.join()
    assert installed == [False]  # signal handlers belong to the main thread; the service still serves


def test_stop_listening_makes_the_kernel_refuse_new_connections() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert stop_listening() >= 1
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1)
