"""Single-row predictions that arrive together are predicted together: one model call for all of them.

Under concurrent load a worker's event loop takes several requests off its sockets in one turn. Each
single-row request queues its validated row and waits; at the end of that turn (no timer, no added wait)
one call predicts every queued row as one table, and each request gets its own row's answer. A model call
has a fixed cost per call (onnxruntime's per-node dispatch: churn's 22-node graph costs ~45 µs for one row
and ~12 µs a row for four), so under load a worker answers more requests with the same CPU; a lone
request is predicted alone, one loop turn later. This is the adaptive batching of BentoML, MLServer and
Triton with a wait of zero: only what has already arrived is batched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from serving.predictor import Prediction


@dataclass(frozen=True)
class Waiting:
    """One request's row, waiting for the next batch."""

    row: Sequence[Any]
    request_id: str
    started: float  # time.perf_counter() when the request began
    answer: asyncio.Future[Prediction]


# Predicts the waiting rows in order: one Prediction per row (and reports them to monitoring).
PredictRows = Callable[[list[Waiting]], list[Prediction]]


class MicroBatcher:
    """Gathers the single rows of one event-loop turn and predicts them with one call of `predict_rows`."""

    def __init__(self, predict_rows: PredictRows, in_thread: bool, max_rows: int = 256) -> None:
        self.predict_rows = predict_rows
        # For a slow runtime (scikit-learn, ~ms a call): its batches run in a thread, off the event loop.
        self.in_thread = in_thread
        self.max_rows = max_rows
        self._waiting: list[Waiting] = []

    async def predict(self, row: Sequence[Any], request_id: str, started: float) -> Prediction:
        """This row's prediction, made in the batch of the current loop turn."""
        loop = asyncio.get_running_loop()
        waiting = Waiting(row, request_id, started, loop.create_future())
        self._waiting.append(waiting)
        if len(self._waiting) == 1:
            # Runs after every task already ready in this turn has queued its row.
            loop.call_soon(self._flush)
        elif len(self._waiting) >= self.max_rows:
            self._flush()
        return await waiting.answer

    def _flush(self) -> None:
        """Predict everything waiting (a batch already taken by a full flush leaves nothing)."""
        batch, self._waiting = self._waiting, []
        if not batch:
            return
        if self.in_thread:
            asyncio.get_running_loop().create_task(self._predict_in_thread(batch))
        else:
            self._answer(batch)

    async def _predict_in_thread(self, batch: list[Waiting]) -> None:
        await anyio.to_thread.run_sync(self._answer, batch)

    def _answer(self, batch: list[Waiting]) -> None:
        """Predict the batch and hand each request its answer (or, to every one, the batch's error)."""
        try:
            predictions = self.predict_rows(batch)
            if len(predictions) != len(batch):
                raise RuntimeError(f"{len(predictions)} predictions for {len(batch)} rows")
        except Exception as error:
            # The error travels as each request's outcome: `error` itself is unbound once this block ends.
            _settle(batch, lambda waiting, failure: waiting.answer.set_exception(failure), [error] * len(batch))
            return
        _settle(batch, lambda waiting, prediction: waiting.answer.set_result(prediction), predictions)


def _settle(batch: list[Waiting], settle: Callable[[Waiting, Any], None], outcomes: Sequence[Any]) -> None:
    """Settle each still-waiting request with its outcome, on the loop's thread (the batch may run in another)."""
    loop = batch[0].answer.get_loop()

    def settle_all() -> None:
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if not waiting.answer.done():  # a client that went away cancelled its wait
                settle(waiting, outcome)

    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        settle_all()
    else:
        loop.call_soon_threadsafe(settle_all)
