"""Mount Gradio Blocks on a FastAPI app, safely, also when a reverse proxy publishes the service under a prefix.

`gr.mount_gradio_app` leaves out what `launch()` would set up, and Gradio's queue has one way to stop for
good; both are put right here (docs/security.md has the attacks they answer):

- the Blocks are marked launched: Gradio checks that a function is only handed files a user uploaded, but
  skips the check for Blocks that never launched, so any path on the server could be sent as a "file";
  and a "file" given as a URL is refused instead of downloaded;
- errors are not shown: a function's exception text (a path, a missing file) stays in the log;
- the queue is bounded (QUEUE_SIZE events waiting; more are told the queue is full) and runs a few events
  at once; and a message for a session Gradio's cache already dropped is dropped too: it raised KeyError
  inside the queue's loop, which then answered "Queue is stopped." to everyone until a restart;
- a failed call is logged with its message escaped, not printed raw to stderr;
- the queue's loops wait for work instead of polling: Gradio's loop looked for events 1,000 times a second
  and its progress loop 100 times, most of an idle server's CPU (docs/performance.md). They now sleep until
  an event is pushed or a job ends (at most IDLE_WAIT_S). The UI shows no progress bars, which that second
  loop would otherwise update every 10 ms.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import traceback
import weakref
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import gradio as gr
from fastapi import FastAPI
from gradio import processing_utils, queueing
from gradio.exceptions import InvalidPathError
from gradio.queueing import Queue
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

# Events waiting in the UI's queue at most, and events run at once (each a prediction of milliseconds).
QUEUE_SIZE = 100
CONCURRENT_EVENTS = 4
# The longest an idle queue loop sleeps before it looks again by itself (it is woken sooner by work).
IDLE_WAIT_S = 1.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class PublicPathApp:
    """Present requests to Gradio at their public path (prefix included), as Gradio expects behind a proxy.

    The proxy strips the prefix, so Gradio would see /ui/... and build asset and API URLs without it.
    Gradio's own `root_path` makes its router expect the prefix in the path, so it is put back here.
    """

    def __init__(self, app: ASGIApp, public_root: str) -> None:
        self.app = app
        self.public_root = public_root

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            rest = scope["path"][len(scope.get("root_path", "")) :]
            scope = {**scope, "path": self.public_root + rest, "root_path": self.public_root}
        await self.app(scope, receive, send)


def mount_blocks(
    app: FastAPI, blocks: gr.Blocks, path: str, public_prefix: str = "", max_file_bytes: int | None = None
) -> None:
    """Mount `blocks` at `path`; with `public_prefix` (e.g. "/models/churn") URLs are built for prefix + path."""
    keep_queue_running()
    log_failed_calls()
    refuse_url_downloads()
    wake_queue_on_work()
    blocks.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENT_EVENTS)
    public_root = f"{public_prefix}{path}" if public_prefix else None
    gr.mount_gradio_app(app, blocks, path=path, root_path=public_root, max_file_size=max_file_bytes, show_error=False)
    blocks._queue.sleep_when_free = IdleWait(IDLE_WAIT_S)
    blocks._queue.progress_update_sleep_when_free = IdleWait(IDLE_WAIT_S)
    # What launch() sets and mount_gradio_app does not: without it, uploaded-files-only is never checked.
    blocks.has_launched = True
    if public_root is None:
        return
    for route in app.routes:
        if isinstance(route, Mount) and route.path == path:
            route.app = PublicPathApp(route.app, public_root)


class _LoggedTracebacks:
    """Stands in for the `traceback` module in Gradio's queue: a failed call goes to the log, its message escaped.

    Gradio prints each failed call's traceback to stderr, raw: a "file" path sent with a newline in it wrote a
    line of the attacker's own into the server's output. Here it is one logged record, the frames (code) as
    they are and the exception's own text with its control characters escaped.
    """

    @staticmethod
    def print_exc() -> None:
        kind, error, frames = sys.exc_info()
        if kind is None:
            return
        stack = "".join(traceback.format_tb(frames))
        text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(error))
        logger.error("A web UI call failed:\n%s%s: %s", stack, kind.__name__, text, extra={"escaped": True})


def log_failed_calls() -> None:
    """Make Gradio's queue log failed calls (_LoggedTracebacks) instead of printing them (once a process)."""
    import gradio.queueing

    gradio.queueing.traceback = _LoggedTracebacks  # type: ignore[assignment]


def refuse_url_downloads() -> None:
    """Gradio downloads a file argument given as an http(s) URL; this UI takes uploads only, so it never fetches one.

    Left alone, any caller could make the server fetch any public URL and run the batch tab on what came back.
    """

    def refuse(url: str, cache_dir: str) -> str:
        raise InvalidPathError("Files are taken as uploads only.")

    async def refuse_async(url: str, cache_dir: str) -> str:
        return refuse(url, cache_dir)

    processing_utils.ssrf_protected_download = refuse  # type: ignore[assignment]
    processing_utils.save_url_to_cache = refuse  # type: ignore[assignment]
    processing_utils.async_ssrf_protected_download = refuse_async  # type: ignore[assignment]


def keep_queue_running() -> None:
    """Make Gradio's queue drop a message for a session it no longer holds, instead of stopping (once a process)."""
    if getattr(Queue.send_message, "keeps_queue_running", False):
        return
    send_message = Queue.send_message

    def send_or_drop(self: Queue, event: object, event_message: object) -> None:
        if getattr(event, "session_hash", None) not in self.pending_messages_per_session:
            return  # nobody can read it: the session was dropped from Gradio's cache of 2,000
        send_message(self, event, event_message)  # type: ignore[arg-type]

    send_or_drop.keeps_queue_running = True  # type: ignore[attr-defined]
    Queue.send_message = send_or_drop  # type: ignore[method-assign]


class IdleWait(float):
    """A queue loop's pause with nothing to do: until the queue is woken by work, or this many seconds at most."""


# Per event loop (an asyncio.Event belongs to one), what its waiting queue loops wait on.
_work_arrived: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = weakref.WeakKeyDictionary()


def _wake_queue() -> None:
    """Wake every queue loop waiting for work (an event was pushed, or a job ended and freed its slot)."""
    waiting = _work_arrived.pop(asyncio.get_running_loop(), None)
    if waiting is not None:
        waiting.set()  # the next wait gets a fresh event


async def _sleep(delay: float, result: Any = None) -> Any:
    """asyncio.sleep for Gradio's queue: an IdleWait ends early when work arrives."""
    if not isinstance(delay, IdleWait):
        return await asyncio.sleep(delay, result)
    waiting = _work_arrived.setdefault(asyncio.get_running_loop(), asyncio.Event())
    try:
        await asyncio.wait_for(waiting.wait(), float(delay))
    except TimeoutError:
        pass
    return result


def wake_queue_on_work() -> None:
    """Make Gradio's queue loops sleep until there is work, instead of polling (once a process)."""
    if getattr(Queue.push, "wakes_queue", False):
        return
    push, process_events = Queue.push, Queue.process_events

    async def push_and_wake(self: Queue, *args: Any, **kwargs: Any) -> Any:
        try:
            return await push(self, *args, **kwargs)
        finally:
            _wake_queue()

    async def process_and_wake(self: Queue, *args: Any, **kwargs: Any) -> Any:
        try:
            return await process_events(self, *args, **kwargs)
        finally:
            _wake_queue()

    push_and_wake.wakes_queue = True  # type: ignore[attr-defined]
    Queue.push = push_and_wake  # type: ignore[method-assign]
    Queue.process_events = process_and_wake  # type: ignore[method-assign]
    # The queue's loops call `asyncio.sleep` through their module's name for asyncio: only theirs is changed.
    namespace = {name: getattr(asyncio, name) for name in dir(asyncio) if not name.startswith("__")}
    queueing.asyncio = SimpleNamespace(**{**namespace, "sleep": _sleep})  # type: ignore[assignment]


def shown_files(blocks: gr.Blocks) -> set[str]:
    """Files every visitor of the Blocks is shown (Gradio keeps them in its cache for good): never swept."""
    return {path for block in blocks.blocks.values() for path in getattr(block, "keep_in_cache", ())}


def queue_running(blocks: gr.Blocks) -> bool:
    """True while the Blocks' queue takes events: from `blocks.queue()` until it stops; False with no queue."""
    queue = getattr(blocks, "_queue", None)
    return queue is not None and not queue.stopped


def on_queue_failure(callback: Callable[[], None]) -> None:
    """Call `callback` once Gradio's queue loop fails (not when it stops at shutdown): it answers no UI call again.

    Gradio's loop ends with its exception and leaves `stopped` set, so every later call is told "Queue is
    stopped." With keep_queue_running the cause seen so far cannot recur; this is for any other.
    """
    _failure_callbacks[:] = [callback]
    if getattr(Queue.start_processing, "reports_failure", False):
        return
    start_processing = Queue.start_processing

    async def start_processing_or_report(self: Queue) -> None:
        try:
            await start_processing(self)
        except Exception:
            logger.exception("The web UI's queue failed: it answers no UI call; the UI worker restarts")
            for report in _failure_callbacks:
                report()
            raise

    start_processing_or_report.reports_failure = True  # type: ignore[attr-defined]
    Queue.start_processing = start_processing_or_report  # type: ignore[method-assign]


_failure_callbacks: list[Callable[[], None]] = []
