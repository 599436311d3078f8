"""The prediction log: lines written off the request path, and read back by time window."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitoring.predlog import PredictionLog, read_records
from serving.predictor import Prediction
from tests.fakes import CLASSES, FEATURES

ROW = [5.1, 3.5, 1.4, 0.2]
SETOSA = Prediction("setosa", 0.9, dict(zip(CLASSES, [0.9, 0.05, 0.05], strict=True)))


def _wait_for_lines(directory: Path, count: int, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [json.loads(line) for path in directory.glob("*.jsonl") for line in path.read_text().splitlines()]
        if len(lines) >= count:
            return lines
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} lines in {directory}")


def test_each_request_becomes_one_line_with_request_id_model_and_latency(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "iris_clf:v1", FEATURES, flush_every_s=0.05)
    log.record("req-1", "api", [ROW], [SETOSA], 0.0012)
    log.record("req-2", "batch", [ROW, [6.7, 3.0, 5.2, 2.3]], [SETOSA, SETOSA], 0.004)
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
    }
    assert lines[1]["features"]["sepal_length"] == [5.1, 6.7]
    assert datetime.fromisoformat(lines[0]["time"]).tzinfo is not None
    (path,) = tmp_path.glob("*.jsonl")
    assert path.name.startswith(f"predictions-{datetime.now(UTC):%Y-%m-%d}-")


def test_read_records_gives_one_record_per_row(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "iris_clf:v1", FEATURES)
    log.record("req-2", "batch", [ROW, [6.7, 3.0, 5.2, 2.3]], [SETOSA, SETOSA], 0.004)
    log.close()
    first, second = read_records(tmp_path)
    assert (first["request_id"], first["row"], second["row"]) == ("req-2", 0, 1)
    assert second["features"] == dict(zip(FEATURES, [6.7, 3.0, 5.2, 2.3], strict=True))
    assert (second["class"], second["probability"], second["model"]) == ("setosa", 0.9, "iris_clf:v1")


def test_close_writes_what_is_queued(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "iris_clf:v1", FEATURES)
    for index in range(500):
        log.record(f"req-{index}", "api", [ROW], [SETOSA], 0.001)
    log.close()
    assert len(read_records(tmp_path)) == 500


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    dropped: list[int] = []
    log = PredictionLog(tmp_path, "iris_clf:v1", FEATURES, max_pending=0, on_drop=dropped.append)
    log.record("req-1", "batch", [ROW, ROW], [SETOSA, SETOSA], 0.001)
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
