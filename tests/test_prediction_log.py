"""The prediction log: lines written off the request path, and read back by time window."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitoring.predlog import PredictionLog, read_records
from monitoring.retention import Retention, closed, log_files, next_segment, to_delete
from runtime.predictor import Prediction
from runtime.table import FeatureTable
from tests.fakes import CHURN_ROW, CLASSES, FEATURES, make_card, make_churn_card, table_of

ROW = [5.1, 3.5, 1.4, 0.2]
SETOSA = Prediction("setosa", 0.9, dict(zip(CLASSES, [0.9, 0.05, 0.05], strict=True)))
SPECS = make_card().features


def rows(*values: list[float]) -> FeatureTable:
    """Iris-like rows as the table the service logs."""
    return table_of(SPECS, [dict(zip(FEATURES, row, strict=True)) for row in values])


def _wait_for_lines(directory: Path, count: int, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [json.loads(line) for path in directory.glob("*.jsonl") for line in path.read_text().splitlines()]
        if len(lines) >= count:
            return lines
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} lines in {directory}")


def test_each_request_becomes_one_line_with_request_id_model_and_latency(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "iris_clf:v1", SPECS, flush_every_s=0.05)
    log.record("req-1", "api", rows(ROW), [SETOSA], 0.0012)
    log.record("req-2", "batch", rows(ROW, [6.7, 3.0, 5.2, 2.3]), [SETOSA, SETOSA], 0.004)
    lines = _wait_for_lines(tmp_path, 2)
    log.close()
    assert lines[0] == {
        "time": lines[0]["time"],
        "request_id": "req-1",
        "source": "api",
        "model": "iris_clf:v1",
        "latency_ms": 1.2,
        "rows": 1,
        "features": {name: [value] for name, value in zip(FEATURES, ROW, strict=True)},
        "class": ["setosa"],
        "probability": [0.9],
        "probabilities": {"setosa": [0.9], "versicolor": [0.05], "virginica": [0.05]},
    }
    assert list(lines[0]["probabilities"]) == CLASSES  # the card's class order
    assert lines[1]["features"]["sepal_length"] == [5.1, 6.7]
    assert lines[1]["probabilities"]["setosa"] == [0.9, 0.9]
    assert datetime.fromisoformat(lines[0]["time"]).tzinfo is not None
    (path,) = tmp_path.glob("*.jsonl")
    assert path.name.startswith(f"predictions-{datetime.now(UTC):%Y-%m-%d}-")


def test_single_requests_predicted_together_get_a_line_each_with_their_own_row(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "iris_clf:v1", SPECS, flush_every_s=0.05)
    virginica = Prediction("virginica", 0.8, dict(zip(CLASSES, [0.1, 0.1, 0.8], strict=True)))
    other = [6.7, 3.0, 5.2, 2.3]
    log.record_rows(["req-a", "req-b"], "api", rows(ROW, other), [SETOSA, virginica], [0.001, 0.002])
    lines = {line["request_id"]: line for line in _wait_for_lines(tmp_path, 2)}
    log.close()
    assert lines["req-a"]["features"] == {name: [value] for name, value in zip(FEATURES, ROW, strict=True)}
    assert lines["req-b"]["features"] == {name: [value] for name, value in zip(FEATURES, other, strict=True)}
    assert [(lines[r]["rows"], lines[r]["class"], lines[r]["latency_ms"]) for r in ("req-a", "req-b")] == [
        (1, ["setosa"], 1.0),
        (1, ["virginica"], 2.0),
    ]
    assert lines["req-b"]["probabilities"] == {"setosa": [0.1], "versicolor": [0.1], "virginica": [0.8]}


def test_read_records_gives_one_record_per_row(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "iris_clf:v1", SPECS)
    log.record("req-2", "batch", rows(ROW, [6.7, 3.0, 5.2, 2.3]), [SETOSA, SETOSA], 0.004)
    log.close()
    first, second = read_records(tmp_path)
    assert (first["request_id"], first["row"], second["row"]) == ("req-2", 0, 1)
    assert second["features"] == dict(zip(FEATURES, [6.7, 3.0, 5.2, 2.3], strict=True))
    assert (second["class"], second["probability"], second["model"]) == ("setosa", 0.9, "iris_clf:v1")
    assert second["probabilities"] == {"setosa": 0.9, "versicolor": 0.05, "virginica": 0.05}


def test_close_writes_what_is_queued(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "iris_clf:v1", SPECS)
    for index in range(500):
        log.record(f"req-{index}", "api", rows(ROW), [SETOSA], 0.001)
    log.close()
    assert len(read_records(tmp_path)) == 500


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    dropped: list[int] = []
    log = PredictionLog(tmp_path, "iris_clf:v1", SPECS, max_pending=0, on_drop=dropped.append)
    log.record("req-1", "batch", rows(ROW, ROW), [SETOSA, SETOSA], 0.001)
    log.close()
    assert dropped == [2] and log.dropped == 2
    assert read_records(tmp_path) == []


def test_read_records_keeps_the_window_and_skips_a_torn_last_line(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    lines = [
        {
            "time": (now - timedelta(hours=h)).isoformat(),
            "request_id": str(h),
            "source": "api",
            "model": "m",
            "latency_ms": 1.0,
            "rows": 1,
            "features": {"x": [1.0]},
            "class": ["a"],
            "probability": [0.9],
        }
        for h in (30, 5, 1)
    ]
    path = tmp_path / f"predictions-{now:%Y-%m-%d}-1.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"time": "2026-')
    records = read_records(tmp_path, since=now - timedelta(hours=24), until=now)
    assert [r["request_id"] for r in records] == ["5", "1"]
    assert records[0]["probabilities"] is None  # lines from before every class's probability was logged


def _old_file(folder: Path, day: str, writer: str, segment: int | None, size: int, kind: str = "predictions") -> Path:
    name = f"{kind}-{day}-{writer}.jsonl" if segment is None else f"{kind}-{day}-{writer}-{segment:04d}.jsonl"
    path = folder / name
    path.write_bytes(b"x" * size)
    return path


def test_retention_deletes_files_past_the_age_limit_and_keeps_what_may_be_written(tmp_path: Path) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    old = _old_file(tmp_path, "2026-10-01", "host-a-7", 0, 10)
    old_legacy = _old_file(tmp_path, "2026-10-02", "99", None, 10)  # the name older versions wrote
    recent = _old_file(tmp_path, "2026-11-20", "host-a-7", 0, 10)
    today = _old_file(tmp_path, "2026-11-25", "host-a-7", 0, 10)
    foreign = tmp_path / "predictions-notes.jsonl"
    foreign.write_text("not ours")
    log = PredictionLog(
        tmp_path, "m", SPECS, retention=Retention(max_age_days=30), clock=lambda: now.timestamp(), flush_every_s=60
    )
    deleted = log.apply_retention()
    log.close()
    assert sorted(deleted) == sorted([old, old_legacy])
    assert recent.exists() and today.exists() and foreign.exists()


def test_retention_keeps_the_size_limit_oldest_first_but_never_a_file_being_written(tmp_path: Path) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    files = [
        _old_file(tmp_path, "2026-11-23", "a-1", 0, 400),
        _old_file(tmp_path, "2026-11-24", "a-1", 0, 400),
        _old_file(tmp_path, "2026-11-25", "a-1", 0, 400),  # closed: segment 1 follows it
        _old_file(tmp_path, "2026-11-25", "a-1", 1, 400),  # the writer's current file
        _old_file(tmp_path, "2026-11-25", "b-2", 0, 400),  # another worker's current file
    ]
    doomed, still_over = to_delete(log_files(tmp_path), Retention(max_bytes=700), now)
    assert [f.path for f in doomed] == files[:3]
    assert still_over == 100  # the two open files alone are over the limit: reported, not deleted


def test_yesterdays_file_counts_as_open_until_an_hour_after_midnight(tmp_path: Path) -> None:
    _old_file(tmp_path, "2026-11-24", "a-1", 0, 10)
    files = log_files(tmp_path)
    assert closed(files, datetime(2026, 11, 25, 0, 30, tzinfo=UTC)) == []
    assert len(closed(files, datetime(2026, 11, 25, 1, 30, tzinfo=UTC))) == 1


def test_outcome_files_are_listed_aged_and_size_limited_with_the_predictions(tmp_path: Path) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    old_outcomes = _old_file(tmp_path, "2026-10-01", "a-1", 0, 10, kind="outcomes")
    predictions = _old_file(tmp_path, "2026-11-23", "a-1", 0, 400)
    outcomes = _old_file(tmp_path, "2026-11-24", "a-1", 0, 400, kind="outcomes")
    _old_file(tmp_path, "2026-11-25", "a-1", 0, 100)
    _old_file(tmp_path, "2026-11-25", "a-1", 0, 100, kind="outcomes")
    (tmp_path / "outcomes-notes.jsonl").write_text("not ours")
    files = log_files(tmp_path)
    assert sorted((f.kind, f.day.day) for f in files) == [
        ("outcomes", 1),
        ("outcomes", 24),
        ("outcomes", 25),
        ("predictions", 23),
        ("predictions", 25),
    ]
    doomed, still_over = to_delete(files, Retention(max_age_days=30, max_bytes=700), now)
    assert [f.path for f in doomed] == [old_outcomes, predictions]  # the age limit, then the oldest over the size
    assert still_over == 0 and outcomes.exists()


def test_an_open_outcomes_segment_survives_beside_a_later_predictions_segment(tmp_path: Path) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    _old_file(tmp_path, "2026-11-25", "a-1", 0, 400)
    _old_file(tmp_path, "2026-11-25", "a-1", 1, 400)
    _old_file(tmp_path, "2026-11-25", "a-1", 2, 400)  # the writer's current predictions file
    open_outcomes = _old_file(tmp_path, "2026-11-25", "a-1", 0, 400, kind="outcomes")  # its current outcomes file
    closed_names = [f.path.name for f in closed(log_files(tmp_path), now)]
    assert closed_names == ["predictions-2026-11-25-a-1-0000.jsonl", "predictions-2026-11-25-a-1-0001.jsonl"]
    doomed, _ = to_delete(log_files(tmp_path), Retention(max_bytes=100), now)
    assert open_outcomes not in [f.path for f in doomed]


def test_next_segment_counts_each_kind_on_its_own(tmp_path: Path) -> None:
    _old_file(tmp_path, "2026-11-25", "a-1", 3, 10)
    _old_file(tmp_path, "2026-11-25", "a-1", 0, 10, kind="outcomes")
    assert next_segment(tmp_path, "2026-11-25", "a-1") == 4
    assert next_segment(tmp_path, "2026-11-25", "a-1", kind="outcomes") == 1
    assert next_segment(tmp_path, "2026-11-25", "b-2", kind="outcomes") == 0


def test_a_busy_writer_starts_new_segments_and_retention_runs_while_it_writes(tmp_path: Path) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    _old_file(tmp_path, "2026-01-01", "gone-1", 0, 10)
    retention = Retention(max_age_days=30, max_bytes=1000 * 2**10, every_s=0.05)
    log = PredictionLog(tmp_path, "m", SPECS, retention=retention, clock=lambda: now.timestamp(), flush_every_s=0.02)
    batch = rows(*[ROW] * 1000)
    for index in range(12):  # ~40 KB per line, the segment limit is 128 KiB
        log.record(f"req-{index}", "batch", batch, [SETOSA] * 1000, 0.01)
        time.sleep(0.03)
    log.close()
    names = sorted(p.name for p in tmp_path.glob("*.jsonl"))
    assert not any("2026-01-01" in name for name in names)
    assert len(names) >= 3 and all(name.startswith("predictions-2026-11-25-") for name in names)
    assert len(read_records(tmp_path)) == 12_000


def test_an_unwritable_folder_drops_counts_logs_once_and_recovers(tmp_path: Path, caplog) -> None:
    blocked = tmp_path / "log"
    blocked.write_text("a file where the folder should be")  # mkdir and open fail, as on a read-only disk
    dropped: list[int] = []
    log = PredictionLog(blocked, "m", SPECS, on_drop=dropped.append, flush_every_s=0.02)
    with caplog.at_level("ERROR", logger="monitoring.predlog"):
        for index in range(5):
            log.record(f"lost-{index}", "api", rows(ROW), [SETOSA], 0.001)
            time.sleep(0.05)
    assert sum(dropped) == 5 and log.dropped == 5
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1
    blocked.unlink()  # space is back
    log.record("kept", "api", rows(ROW), [SETOSA], 0.001)
    log.close()
    assert [r["request_id"] for r in read_records(blocked)] == ["kept"]
    assert sum(dropped) == 5


def test_a_write_cut_short_keeps_whole_lines_and_counts_the_rest(tmp_path: Path, monkeypatch) -> None:
    import errno
    import os

    real_write = os.write
    calls = {"n": 0}

    def full_disk_after_150_bytes(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, data[:150])
        raise OSError(errno.ENOSPC, "No space left on device")

    dropped: list[int] = []
    log = PredictionLog(tmp_path, "m", SPECS, on_drop=dropped.append, flush_every_s=3600)
    monkeypatch.setattr("monitoring.predlog.os.write", full_disk_after_150_bytes)
    for index in range(3):
        log.record(f"r{index}", "api", rows(ROW), [SETOSA], 0.001)
    log.close()  # one write of three ~260-byte lines: 150 bytes make it, then the disk is full
    (path,) = tmp_path.glob("*.jsonl")
    assert path.read_bytes() == b""  # the torn first line was cut off again
    assert sum(dropped) == 3


def test_every_kind_is_logged_as_json_values_with_nulls_for_blanks(tmp_path: Path) -> None:
    card = make_churn_card()
    log = PredictionLog(tmp_path, "churn_clf:v1", card.features, flush_every_s=0.02)
    table = table_of(card.features, [CHURN_ROW, {**CHURN_ROW, "seniorcitizen": True, "paymentmethod": None}])
    answer = Prediction("yes", 0.8, {"no": 0.2, "yes": 0.8})
    log.record("req-1", "batch", table, [answer, answer], 0.002)
    log.close()
    (line,) = [json.loads(text) for path in tmp_path.glob("*.jsonl") for text in path.read_text().splitlines()]
    assert line["features"] == {
        "tenure": [12, 12],
        "monthlycharges": [70.5, 70.5],
        "totalcharges": [None, None],
        "seniorcitizen": [False, True],
        "contract": ["month-to-month", "month-to-month"],
        "paymentmethod": ["electronic_check", None],
    }
    assert read_records(tmp_path)[1]["features"]["paymentmethod"] is None


def test_an_idle_writer_sleeps_until_something_is_queued(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "m", SPECS, flush_every_s=0.01)
    rounds: list[int] = []
    drain = log._drain

    def counted_drain() -> list:
        rounds.append(1)
        return drain()

    log._drain = counted_drain  # type: ignore[method-assign]
    time.sleep(0.5)  # a writer polling every flush interval would have drained ~50 times by now
    assert len(rounds) <= 1
    log.record("woken", "api", rows(ROW), [SETOSA], 0.001)
    assert [line["request_id"] for line in _wait_for_lines(tmp_path, 1)] == ["woken"]
    log.close()
