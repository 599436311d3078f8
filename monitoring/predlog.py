"""The prediction log: one JSON line per predicted row, written by a background thread.

Files are `predictions-<UTC date>-<pid>.jsonl` in one folder: one file per worker process and day,
so workers never interleave lines and old days can be archived or deleted as whole files.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic_core import to_json

from serving.predictor import Prediction

logger = logging.getLogger(__name__)

FILE_PATTERN = "predictions-*.jsonl"


@dataclass(frozen=True)
class _Entry:
    """One request's predictions, queued as they are: the writer thread turns them into lines."""

    time: float
    request_id: str
    source: str
    rows: Sequence[Sequence[float]]
    predictions: Sequence[Prediction]
    latency_s: float


class PredictionLog:
    """Append-only JSON-lines log of predictions; `record` only enqueues, so requests never wait on the disk."""

    def __init__(
        self,
        directory: Path,
        model_tag: str,
        feature_names: Sequence[str],
        max_pending: int = 200_000,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.directory = directory
        self.model_tag = model_tag
        self.feature_names = list(feature_names)
        self.max_pending = max_pending
        self.on_drop = on_drop
        self.dropped = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._queue: queue.SimpleQueue[_Entry | None] = queue.SimpleQueue()
        self._file: IO[bytes] | None = None
        self._file_day = ""
        self._thread = threading.Thread(target=self._write_forever, name="prediction-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def record(
        self,
        request_id: str,
        source: str,
        rows: Sequence[Sequence[float]],
        predictions: Sequence[Prediction],
        latency_s: float,
    ) -> None:
        """Queue one request's predictions for the log."""
        # Bounded by dropping, never by blocking: a slow disk must not become slow predictions.
        if self._queue.qsize() >= self.max_pending:
            self.dropped += len(predictions)
            if self.on_drop is not None:
                self.on_drop(len(predictions))
            return
        self._queue.put(_Entry(time.time(), request_id, source, rows, predictions, latency_s))

    def close(self) -> None:
        """Write what is queued and stop the writer (also run at interpreter exit)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)

    def _write_forever(self) -> None:
        """Drain the queue in batches: one write and one flush per batch, not per line."""
        while True:
            batch = [self._queue.get()]
            while len(batch) < 1000:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            entries = [e for e in batch if e is not None]
            try:
                self._write(entries)
            except OSError:
                logger.exception("Could not write %d prediction-log entries to %s", len(entries), self.directory)
            if len(entries) < len(batch):
                if self._file is not None:
                    self._file.close()
                return

    def _write(self, entries: list[_Entry]) -> None:
        """Append the entries' lines to today's file."""
        if not entries:
            return
        day = datetime.fromtimestamp(entries[0].time, UTC).strftime("%Y-%m-%d")
        if day != self._file_day or self._file is None:
            if self._file is not None:
                self._file.close()
            self._file = (self.directory / f"predictions-{day}-{os.getpid()}.jsonl").open("ab")
            self._file_day = day
        self._file.write(b"".join(line for entry in entries for line in self._lines(entry)))
        self._file.flush()

    def _lines(self, entry: _Entry) -> Iterator[bytes]:
        """One JSON line per predicted row."""
        stamp = datetime.fromtimestamp(entry.time, UTC).isoformat()
        latency_ms = round(entry.latency_s * 1000, 3)
        for index, (row, prediction) in enumerate(zip(entry.rows, entry.predictions, strict=True)):
            record = {
                "time": stamp,
                "request_id": entry.request_id,
                "source": entry.source,
                "model": self.model_tag,
                "row": index,
                "features": dict(zip(self.feature_names, row, strict=True)),
                "class": prediction.class_name,
                "probability": prediction.probability,
                "latency_ms": latency_ms,
            }
            yield to_json(record) + b"\n"


def read_records(directory: Path, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """Every logged row with since <= time < until, oldest first; unreadable lines are skipped with a warning."""
    import json

    records: list[dict[str, Any]] = []
    skipped = 0
    for path in sorted(directory.glob(FILE_PATTERN)):
        if not _file_may_hold(path, since, until):
            continue
        with path.open("rb") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                    stamp = datetime.fromisoformat(record["time"])
                except (ValueError, KeyError, TypeError):
                    # A process killed mid-write leaves a partial last line; the rest of the file is good.
                    skipped += 1
                    continue
                if (since is None or stamp >= since) and (until is None or stamp < until):
                    records.append(record)
    if skipped:
        logger.warning("Skipped %d unreadable lines in %s", skipped, directory)
    records.sort(key=lambda r: r["time"])
    return records


def _file_may_hold(path: Path, since: datetime | None, until: datetime | None) -> bool:
    """False when the file's day lies wholly outside the window."""
    try:
        day = datetime.strptime(path.name.split("-", 1)[1][:10], "%Y-%m-%d").date()
    except ValueError:
        return True
    return (since is None or day >= since.astimezone(UTC).date()) and (
        until is None or day <= until.astimezone(UTC).date()
    )
