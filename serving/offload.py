"""Where a request's work runs: on the event loop when it is quick, in a worker thread when it could hold the loop.

A scikit-learn model takes milliseconds a call, so its predictions always run in a thread. Any body over
LARGE_BODY_BYTES is read in a thread too, whatever the runtime: checking 1 MiB of rows takes 30-50 ms, and
on the loop that would stall every other request of the worker (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

LARGE_BODY_BYTES = 64 * 1024

T = TypeVar("T")


class Offload:
    """Run `fn(body, ...)` on the loop or in a thread, by the runtime's speed and the body's size."""

    def __init__(self, model_in_thread: bool) -> None:
        self.model_in_thread = model_in_thread

    def in_thread(self, body: bytes, predicts: bool = True) -> bool:
        """True when work on `body` belongs in a thread (`predicts`: the work includes the model's call)."""
        return (predicts and self.model_in_thread) or len(body) > LARGE_BODY_BYTES

    async def __call__(self, fn: Callable[..., T], body: bytes, *args: object, predicts: bool = True) -> T:
        """`fn(body, *args)`, in a thread when `in_thread` says so (the request's context goes along)."""
        if self.in_thread(body, predicts):
            return await anyio.to_thread.run_sync(fn, body, *args)
        return fn(body, *args)
