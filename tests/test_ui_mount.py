"""Mounting the web UI: files checked, errors hidden, a bounded queue that keeps running, failed calls logged safely."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import gradio as gr
import gradio.queueing
import pytest
from fastapi import FastAPI
from gradio.queueing import Queue
from gradio.utils import LRUCache
from starlette.routing import Mount
from starlette.testclient import TestClient

from tests.loops import run_async
from ui.mount import (
    CONCURRENT_EVENTS,
    QUEUE_SIZE,
    IdleWait,
    PublicPathApp,
    _LoggedTracebacks,
    _sleep,
    _wake_queue,
    keep_queue_running,
    log_failed_calls,
    mount_blocks,
    on_queue_failure,
    queue_running,
    refuse_url_downloads,
)


def _shipped_send_message() -> Callable[..., None]:
    """Gradio's own Queue.send_message, also when this process has wrapped it already."""
    method = Queue.send_message
    if getattr(method, "keeps_queue_running", False):
        (cell,) = method.__closure__ or ()
        method = cell.cell_contents
    return method


@pytest.fixture
def gradio_as_shipped(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Gradio's queue unpatched for the test, and put back as it was afterwards; Gradio's send_message."""
    shipped = _shipped_send_message()
    monkeypatch.setattr(Queue, "send_message", shipped)
    monkeypatch.setattr(gradio.queueing, "traceback", traceback)
    return shipped


def _queue_with_sessions(*sessions: str) -> tuple[Queue, dict[str, asyncio.Queue[Any]]]:
    """A Queue holding only what send_message reads: a cache of one session, as Gradio's of 2,000 when full."""
    queue = Queue.__new__(Queue)
    queue.pending_messages_per_session = LRUCache(1)
    inboxes = {}
    for session in sessions:  # each one evicts the one before
        inboxes[session] = asyncio.Queue()
        queue.pending_messages_per_session[session] = inboxes[session]
    return queue, inboxes


def _event(session: str) -> SimpleNamespace:
    return SimpleNamespace(alive=True, _id=f"event-of-{session}", session_hash=session)


def test_gradio_alone_stops_on_a_message_for_a_dropped_session(gradio_as_shipped: Callable[..., None]) -> None:
    queue, _ = _queue_with_sessions("dropped", "current")
    with pytest.raises(KeyError):
        Queue.send_message(queue, _event("dropped"), SimpleNamespace(event_id=None))


def test_a_message_for_a_dropped_session_is_dropped(gradio_as_shipped: Callable[..., None]) -> None:
    keep_queue_running()
    queue, inboxes = _queue_with_sessions("dropped", "current")
    Queue.send_message(queue, _event("dropped"), SimpleNamespace(event_id=None))
    assert inboxes["current"].empty()
    assert list(queue.pending_messages_per_session) == ["current"]


def test_a_message_for_a_present_session_is_delivered(gradio_as_shipped: Callable[..., None]) -> None:
    keep_queue_running()
    queue, inboxes = _queue_with_sessions("dropped", "current")
    message = SimpleNamespace(event_id=None)
    Queue.send_message(queue, _event("current"), message)
    assert inboxes["current"].get_nowait() is message
    assert message.event_id == "event-of-current"


def test_keep_queue_running_wraps_once(gradio_as_shipped: Callable[..., None]) -> None:
    keep_queue_running()
    wrapped = Queue.send_message
    keep_queue_running()
    assert Queue.send_message is wrapped
    assert wrapped is not gradio_as_shipped
    assert _shipped_send_message() is gradio_as_shipped


@dataclass
class Mounted:
    """A tiny Blocks mounted at /ui, another behind a public prefix, and Gradio's queue patches right after."""

    app: FastAPI
    blocks: gr.Blocks
    prefixed_app: FastAPI
    send_message: Callable[..., None]
    traceback: object


def _tiny_blocks() -> gr.Blocks:
    with gr.Blocks() as blocks:
        gr.File(label="rows")
    return blocks


@pytest.fixture(scope="module")
def mounted() -> Iterator[Mounted]:
    """Mounted once for the module (Gradio takes a while), Gradio's queue put back as it was afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Queue, "send_message", _shipped_send_message())
        patch.setattr(gradio.queueing, "traceback", traceback)
        app, blocks, prefixed_app = FastAPI(), _tiny_blocks(), FastAPI()
        mount_blocks(app, blocks, "/ui")
        mount_blocks(prefixed_app, _tiny_blocks(), "/ui", public_prefix="/models/iris")
        yield Mounted(app, blocks, prefixed_app, Queue.send_message, gradio.queueing.traceback)


def _ui_mount(app: FastAPI) -> Mount:
    (mount,) = [route for route in app.routes if isinstance(route, Mount) and route.path == "/ui"]
    return mount


def test_mount_blocks_checks_files_hides_errors_and_bounds_the_queue(mounted: Mounted) -> None:
    assert mounted.blocks.has_launched is True
    assert mounted.blocks.show_error is False
    assert mounted.blocks._queue.max_size == QUEUE_SIZE
    assert mounted.blocks._queue.default_concurrency_limit == CONCURRENT_EVENTS
    assert not isinstance(_ui_mount(mounted.app).app, PublicPathApp)


def test_mount_blocks_keeps_the_queue_running_and_logs_failed_calls(mounted: Mounted) -> None:
    assert getattr(mounted.send_message, "keeps_queue_running", False)
    assert mounted.traceback is _LoggedTracebacks


def test_mount_blocks_behind_a_prefix_presents_the_public_path(mounted: Mounted) -> None:
    mount = _ui_mount(mounted.prefixed_app)
    assert isinstance(mount.app, PublicPathApp)
    assert mount.app.public_root == "/models/iris/ui"


def test_queue_running() -> None:
    assert not queue_running(SimpleNamespace())  # type: ignore[arg-type]
    assert not queue_running(SimpleNamespace(_queue=None))  # type: ignore[arg-type]
    assert queue_running(SimpleNamespace(_queue=SimpleNamespace(stopped=False)))  # type: ignore[arg-type]
    assert not queue_running(SimpleNamespace(_queue=SimpleNamespace(stopped=True)))  # type: ignore[arg-type]


def test_a_failed_queue_loop_is_reported_and_an_orderly_stop_is_not(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ui.mount")  # another test's worker set-up may have raised it
    original = Queue.start_processing
    calls: list[str] = []
    try:

        async def fails(self: Queue) -> None:
            raise KeyError("evicted session")

        async def stops(self: Queue) -> None:
            return None

        for loop, expected in ((stops, []), (fails, ["failed"])):
            Queue.start_processing = loop  # type: ignore[method-assign]
            calls.clear()
            on_queue_failure(lambda: calls.append("failed"))
            with contextlib.suppress(KeyError):
                run_async(lambda: Queue.start_processing(Queue.__new__(Queue)))
            assert calls == expected
        assert [r.levelno for r in caplog.records if r.name == "ui.mount"] == [logging.ERROR]
    finally:
        Queue.start_processing = original  # type: ignore[method-assign]


@pytest.fixture
def mount_records() -> Iterator[list[logging.LogRecord]]:
    """Every record the ui.mount logger handles, whatever the levels and handlers elsewhere."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("ui.mount")
    level = logger.level
    logger.setLevel(logging.DEBUG)  # another test's worker set-up may have raised the project's loggers' level
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_failed_call_is_one_logged_error_with_its_text_escaped(mount_records: list[logging.LogRecord]) -> None:
    try:
        raise FileNotFoundError("/tmp/x\nERROR forged line \x1b[2J")
    except FileNotFoundError:
        _LoggedTracebacks.print_exc()
    (record,) = mount_records
    assert record.levelno == logging.ERROR
    assert record.escaped is True  # type: ignore[attr-defined]
    message = record.getMessage()
    assert message.startswith("A web UI call failed:\n")
    assert "test_a_failed_call_is_one_logged_error_with_its_text_escaped" in message  # the frames are kept
    assert message.endswith("FileNotFoundError: /tmp/x\\nERROR forged line \\x1b[2J")
    assert "\nERROR forged" not in message


def test_print_exc_outside_an_except_logs_nothing(mount_records: list[logging.LogRecord]) -> None:
    _LoggedTracebacks.print_exc()
    assert mount_records == []


def test_log_failed_calls_replaces_gradios_traceback(gradio_as_shipped: Callable[..., None]) -> None:
    log_failed_calls()
    log_failed_calls()
    assert gradio.queueing.traceback is _LoggedTracebacks


def test_a_file_given_as_a_url_is_refused_not_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from gradio import processing_utils
    from gradio.exceptions import InvalidPathError

    for name in ("ssrf_protected_download", "save_url_to_cache", "async_ssrf_protected_download"):
        monkeypatch.setattr(processing_utils, name, getattr(processing_utils, name))  # put back afterwards
    refuse_url_downloads()
    with pytest.raises(InvalidPathError):
        processing_utils.ssrf_protected_download("https://example.com/a.csv", "/tmp")
    with pytest.raises(InvalidPathError):
        run_async(lambda: processing_utils.async_ssrf_protected_download("https://example.com/a.csv", "/tmp"))


def test_an_idle_queue_sleeps_and_a_call_wakes_it() -> None:
    """Gradio's loops poll 1,000 and 100 times a second; mounted, they sleep until a call arrives."""
    with gr.Blocks() as blocks:
        number, answer = gr.Number(), gr.Number()
        number.submit(lambda x: x + 1, number, answer, api_name="add_one")
    app = FastAPI()
    mount_blocks(app, blocks, "/ui")
    assert isinstance(blocks._queue.sleep_when_free, IdleWait)
    assert isinstance(blocks._queue.progress_update_sleep_when_free, IdleWait)
    # Idle waits far longer than the test: only being woken by the call can answer it in time.
    blocks._queue.sleep_when_free = IdleWait(120)
    blocks._queue.progress_update_sleep_when_free = IdleWait(120)
    sleeps: list[float] = []
    queue_sleep = gradio.queueing.asyncio.sleep

    async def counted_sleep(delay: float, result: Any = None) -> Any:
        sleeps.append(delay)
        return await queue_sleep(delay, result)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gradio.queueing.asyncio, "sleep", counted_sleep)
        with TestClient(app) as client:
            time.sleep(0.5)
            assert len(sleeps) <= 4, sleeps[:10]  # as shipped: ~550 in half a second
            started = time.monotonic()
            event = client.post("/ui/gradio_api/call/add_one", json={"data": [1]}).json()["event_id"]
            stream = client.get(f"/ui/gradio_api/call/add_one/{event}").text
            assert "event: complete" in stream and "2" in stream.split("event: complete", 1)[1], stream
            assert time.monotonic() - started < 60  # woken, not timed out


def test_an_idle_wait_ends_when_work_arrives_and_plain_sleeps_are_untouched() -> None:
    async def woken() -> list[str]:
        order: list[str] = []

        async def waiter() -> None:
            await _sleep(IdleWait(120))
            order.append("woken")

        task = asyncio.create_task(waiter())
        await asyncio.sleep(0)  # the waiter is waiting now
        await _sleep(0.01)  # not an IdleWait: an ordinary sleep, which nothing ends early
        order.append("slept")
        _wake_queue()
        await asyncio.wait_for(task, 30)
        return order

    assert run_async(woken) == ["slept", "woken"]
