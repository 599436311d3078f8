"""Single-row predictions that arrive together are predicted together: one model call for all of them.

Under concurrent load a worker's event loop takes several requests off its sockets in one turn. Each
single-row request queues its validated row and waits; at the end of that turn (no timer, no added wait)
one call predicts every queued row as one table, and each request gets its own row's answer. A model call
has a fixed cost per call (onnxruntime's per-node dispatch: churn's 22-node graph costs ~45 µs for one row
and ~12 µs a row for four), so under load a worker answers more requests with the same CPU; a lone
request is predicted alone, one loop turn later. This is the adaptive batching of BentoML, MLServer and
Triton with a wait of zero: only what has already arrived is batched.

A batch the model fails on is predicted again one row at a time, so one request's row never costs the
others their answers; every waiting request is settled, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from runtime.predictor import Prediction

logger = logging.getLogger(__name__)


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
        self._running: set[asyncio.Task[None]] = set()  # in-thread batches, kept until done (asyncio's advice)

    async def predict(self, row: Sequence[Any], request_id: str, started: float) -> Prediction:
        """This row's prediction, made in the batch of the current loop turn."""
        loop = asyncio.get_running_loop()
        waiting = Waiting(row, request_id, started, loop.create_future())
        self._waiting.append(waiting)
        # A batch belongs to no single request: it runs in an empty context, so nothing it logs carries one
        # request's id (each request's own id travels in its Waiting).
        if len(self._waiting) == 1:
            # Runs after every task already ready in this turn has queued its row.
            loop.call_soon(self._flush, context=contextvars.Context())
        elif len(self._waiting) >= self.max_rows:
            contextvars.Context().run(self._flush)
        return await waiting.answer

    def _flush(self) -> None:
        """Predict everything waiting (a batch already taken by a full flush leaves nothing)."""
        batch, self._waiting = self._waiting, []
        if not batch:
            return
        if self.in_thread:
            task = asyncio.get_running_loop().create_task(self._predict_in_thread(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        else:
            _settle(batch, self._outcomes(batch))

    async def _predict_in_thread(self, batch: list[Waiting]) -> None:
        try:
            outcomes = await anyio.to_thread.run_sync(self._outcomes, batch)
        except BaseException as error:  # no thread to be had, or the loop is going away: nobody may hang
            _settle(batch, [error] * len(batch))
            if not isinstance(error, Exception):
                raise
            logger.exception("A batch of %d rows could not run in a thread", len(batch))
            return
        _settle(batch, outcomes)

    def _outcomes(self, batch: list[Waiting]) -> list[Prediction | BaseException]:
        """Each waiting row's prediction, or the error that kept it from one."""
        try:
            return list(self._predicted(batch))
        except Exception as error:
            if len(batch) == 1:
                return [error]
        logger.warning("A batch of %d rows failed; predicting its rows one at a time", len(batch))
        return [outcome for waiting in batch for outcome in self._outcomes([waiting])]

    def _predicted(self, batch: list[Waiting]) -> list[Prediction]:
        predictions = self.predict_rows(batch)
        if len(predictions) != len(batch):
            raise RuntimeError(f"{len(predictions)} predictions for {len(batch)} rows")
        return predictions


def _settle(batch: list[Waiting], outcomes: Sequence[Prediction | BaseException]) -> None:
    """Settle each still-waiting request with its outcome, on the loop's thread."""
    for waiting, outcome in zip(batch, outcomes, strict=True):
        if waiting.answer.done():  # a client that went away cancelled its wait
            continue
        if isinstance(outcome, asyncio.CancelledError):
            waiting.answer.cancel()
        elif isinstance(outcome, StopIteration):  # a future refuses to hold one (it would end a generator)
            waiting.answer.set_exception(RuntimeError(repr(outcome)))
        elif isinstance(outcome, BaseException):
            waiting.answer.set_exception(outcome)
        else:
            waiting.answer.set_result(outcome)
