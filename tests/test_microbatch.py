"""Single-row requests of one event-loop turn are predicted in one call, each getting its own row's answer."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from runtime.predictor import Prediction
from serving.microbatch import MicroBatcher, Waiting
from tests.loops import run_async


class RecordingModel:
    """Answers each row with its own first value as the class, and remembers every call's rows and thread."""

    def __init__(self, fail: bool = False, short: bool = False) -> None:
        self.calls: list[list[tuple[object, ...]]] = []
        self.threads: list[int] = []
        self.fail = fail
        self.short = short

    def __call__(self, batch: list[Waiting]) -> list[Prediction]:
        self.calls.append([tuple(w.row) for w in batch])
        self.threads.append(threading.get_ident())
        if self.fail:
            raise ValueError("the model broke")
        answers = [Prediction(str(w.row[0]), 1.0, {str(w.row[0]): 1.0}) for w in batch]
        return answers[:-1] if self.short else answers


async def _predict_all(batcher: MicroBatcher, rows: list[tuple[object, ...]]) -> list[Prediction]:
    return list(await asyncio.gather(*(batcher.predict(row, f"id-{i}", 0.0) for i, row in enumerate(rows))))


def test_rows_of_one_loop_turn_are_one_call_and_each_request_gets_its_own_answer() -> None:
    model = RecordingModel()
    rows = [(f"row{i}", i) for i in range(10)]
    answers = run_async(lambda: _predict_all(MicroBatcher(model, in_thread=False), rows))
    assert [a.class_name for a in answers] == [f"row{i}" for i in range(10)]
    assert model.calls == [rows]


def test_a_lone_request_is_predicted_alone_and_requests_of_later_turns_in_later_calls() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model, in_thread=False)

    async def one_after_another() -> list[str]:
        return [(await batcher.predict((f"row{i}",), "id", 0.0)).class_name for i in range(3)]

    assert run_async(one_after_another) == ["row0", "row1", "row2"]
    assert model.calls == [[("row0",)], [("row1",)], [("row2",)]]


def test_a_full_batch_is_predicted_at_once() -> None:
    model = RecordingModel()
    rows = [(f"row{i}",) for i in range(7)]
    answers = run_async(lambda: _predict_all(MicroBatcher(model, in_thread=False, max_rows=3), rows))
    assert [a.class_name for a in answers] == [f"row{i}" for i in range(7)]
    assert [len(call) for call in model.calls] == [3, 3, 1]


def test_a_batch_the_model_fails_on_is_retried_row_by_row_so_only_the_bad_rows_request_fails() -> None:
    calls: list[int] = []

    def model(batch: list[Waiting]) -> list[Prediction]:
        calls.append(len(batch))
        if any(w.row[0] == "bad" for w in batch):
            raise ValueError("the model broke on a row")
        return [Prediction(str(w.row[0]), 1.0, {str(w.row[0]): 1.0}) for w in batch]

    rows = [("row0",), ("bad",), ("row2",)]
    outcomes = run_async(lambda: _gather_outcomes(MicroBatcher(model, in_thread=False), rows))
    assert outcomes[0].class_name == "row0" and outcomes[2].class_name == "row2"  # type: ignore[attr-defined]
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "the model broke on a row"
    assert calls == [3, 1, 1, 1]


def test_a_model_that_always_fails_fails_every_request_and_the_next_batch_works() -> None:
    model = RecordingModel(fail=True)
    batcher = MicroBatcher(model, in_thread=False)

    async def failing_then_working() -> list[object]:
        failed = await _gather_outcomes(batcher, [(f"row{i}",) for i in range(4)])
        model.fail = False
        return [*failed, (await batcher.predict(("after",), "id", 0.0)).class_name]

    *failed, after = run_async(failing_then_working)
    assert all(isinstance(error, ValueError) and str(error) == "the model broke" for error in failed)
    assert after == "after"


def test_a_model_answering_too_few_rows_fails_instead_of_misaligning_answers() -> None:
    rows = [(f"row{i}",) for i in range(3)]
    outcomes = run_async(lambda: _gather_outcomes(MicroBatcher(RecordingModel(short=True), in_thread=False), rows))
    assert all(isinstance(o, RuntimeError) and "predictions for" in str(o) for o in outcomes)


async def _gather_outcomes(batcher: MicroBatcher, rows: list[tuple[object, ...]]) -> list[object]:
    return list(await asyncio.gather(*(batcher.predict(row, "id", 0.0) for row in rows), return_exceptions=True))


def test_no_thread_for_a_slow_models_batch_fails_its_requests_instead_of_leaving_them_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_thread(*args: object, **kwargs: object) -> object:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr("serving.microbatch.anyio.to_thread.run_sync", no_thread)
    rows = [(f"row{i}",) for i in range(3)]

    async def bounded() -> list[object]:
        return await asyncio.wait_for(_gather_outcomes(MicroBatcher(RecordingModel(), in_thread=True), rows), 5)

    outcomes = run_async(bounded)
    assert all(isinstance(o, RuntimeError) and "new thread" in str(o) for o in outcomes)


def test_a_batch_runs_outside_any_requests_context() -> None:
    request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
    seen: list[str | None] = []

    def model(batch: list[Waiting]) -> list[Prediction]:
        seen.append(request_id.get())
        return [Prediction("x", 1.0, {"x": 1.0}) for _ in batch]

    async def run() -> None:
        batcher = MicroBatcher(model, in_thread=False, max_rows=2)

        async def one(i: int) -> None:
            request_id.set(f"id-{i}")
            await batcher.predict(("row",), f"id-{i}", 0.0)

        await asyncio.gather(*(one(i) for i in range(3)))

    run_async(run)
    assert seen == [None, None]  # a full batch, then the rest: neither in a request's context


def test_a_slow_model_runs_its_batches_in_a_thread_off_the_event_loop() -> None:
    model = RecordingModel()
    rows = [(f"row{i}",) for i in range(5)]

    async def run() -> tuple[list[Prediction], int]:
        return await _predict_all(MicroBatcher(model, in_thread=True), rows), threading.get_ident()

    answers, loop_thread = run_async(run)
    assert [a.class_name for a in answers] == [f"row{i}" for i in range(5)]
    assert model.calls == [rows]
    assert model.threads[0] != loop_thread


def test_a_request_whose_client_went_away_leaves_the_others_answered() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model, in_thread=False)

    async def one_cancelled() -> list[object]:
        tasks = [asyncio.create_task(batcher.predict((f"row{i}",), "id", 0.0)) for i in range(3)]
        await asyncio.sleep(0)  # each task has queued its row; the batch runs in the next turn
        tasks[1].cancel()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    first, cancelled, last = run_async(one_cancelled)
    assert isinstance(cancelled, asyncio.CancelledError)
    assert (first.class_name, last.class_name) == ("row0", "row2")  # type: ignore[union-attr]
    assert model.calls == [[("row0",), ("row1",), ("row2",)]]


@pytest.mark.parametrize("in_thread", [False, True])
def test_each_waiting_request_keeps_its_id_and_start_for_monitoring(in_thread: bool) -> None:
    seen: list[tuple[str, float]] = []

    def model(batch: list[Waiting]) -> list[Prediction]:
        seen.extend((w.request_id, w.started) for w in batch)
        return [Prediction("x", 1.0, {"x": 1.0}) for _ in batch]

    async def run() -> None:
        batcher = MicroBatcher(model, in_thread=in_thread)
        await asyncio.gather(*(batcher.predict(("row",), f"id-{i}", float(i)) for i in range(4)))

    run_async(run)
    assert seen == [(f"id-{i}", float(i)) for i in range(4)]
