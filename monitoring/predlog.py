"""The prediction log: one JSON line per request, written by a background thread.

A line holds the request's rows column by column (a batch of 1,000 rows is one line, not 1,000):
{"time", "request_id", "source", "model", "latency_ms", "rows", "features": {name: [values]},
"class": [names], "probability": [values]}. `read_records` gives them back one row at a time.

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
    """One request's predictions as flat columns: the writer thread turns them into a line.

    Columns (tuples of floats, lists of strings), not the request's row lists and Prediction objects: a
    1,000-row batch then keeps a handful of objects alive until it is written instead of thousands, which
    the garbage collector would otherwise carry into its older, costlier generations.
    """

    time: float
    request_id: str
    source: str
    columns: list[tuple[float, ...]]
    classes: list[str]
    probabilities: list[float]
    latency_s: float


class PredictionLog:
    """Append-only JSON-lines log of predictions; `record` only enqueues, so requests never wait on the disk."""

    def __init__(
        self,
        directory: Path,
        model_tag: str,
        feature_names: Sequence[str],
        max_pending: int = 100_000,
        on_drop: Callable[[int], None] | None = None,
        flush_every_s: float = 0.1,
    ) -> None:
        self.directory = directory
        self.model_tag = model_tag
        self.feature_names = list(feature_names)
        self.max_pending = max_pending
        self.on_drop = on_drop
        self.dropped = 0
        self.flush_every_s = flush_every_s
        directory.mkdir(parents=True, exist_ok=True)
        self._queue: queue.SimpleQueue[_Entry] = queue.SimpleQueue()
        self._closing = threading.Event()
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
        if self._queue.qsize() >= self.max_pending or self._closing.is_set():
            self.dropped += len(predictions)
            if self.on_drop is not None:
                self.on_drop(len(predictions))
            return
        self._queue.put(
            _Entry(
                time.time(),
                request_id,
                source,
                list(zip(*rows, strict=True)),
                [p.class_name for p in predictions],
                [p.probability for p in predictions],
                latency_s,
            )
        )

    def close(self) -> None:
        """Write what is queued and stop the writer (also run at interpreter exit)."""
        if self._thread.is_alive():
            self._closing.set()
            self._thread.join(timeout=10)

    def _write_forever(self) -> None:
        """Every flush interval, write all that is queued: one write and one flush per interval.

        Waking on a timer instead of on each record keeps the request thread from handing the GIL to
        this one after every prediction, which cost about a third of the throughput.
        """
        while True:
            closing = self._closing.wait(self.flush_every_s)
            entries = self._drain()
            try:
                self._write(entries)
            except OSError:
                logger.exception("Could not write %d prediction-log entries to %s", len(entries), self.directory)
            if closing:
                if self._file is not None:
                    self._file.close()
                return

    def _drain(self) -> list[_Entry]:
        """Everything queued right now."""
        entries: list[_Entry] = []
        while True:
            try:
                entries.append(self._queue.get_nowait())
            except queue.Empty:
                return entries

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
        self._file.write(b"".join(self._line(entry) for entry in entries))
        self._file.flush()

    def _line(self, entry: _Entry) -> bytes:
        """One JSON line for one request, its rows column by column."""
        record = {
            "time": datetime.fromtimestamp(entry.time, UTC).isoformat(),
            "request_id": entry.request_id,
            "source": entry.source,
            "model": self.model_tag,
            "latency_ms": round(entry.latency_s * 1000, 3),
            "rows": len(entry.classes),
            "features": dict(zip(self.feature_names, entry.columns, strict=True)),
            "class": entry.classes,
            "probability": entry.probabilities,
        }
        return to_json(record) + b"\n"


def rows_of(line: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A logged request as one record per row: {time, request_id, source, model, row, features, class, ...}."""
    shared = {key: line[key] for key in ("time", "request_id", "source", "model", "latency_ms")}
    names = list(line["features"])
    columns = [line["features"][name] for name in names]
    for index in range(line["rows"]):
        yield {
            **shared,
            "row": index,
            "features": {name: column[index] for name, column in zip(names, columns, strict=True)},
            "class": line["class"][index],
            "probability": line["probability"][index],
        }


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
                    logged = json.loads(line)
                    stamp = datetime.fromisoformat(logged["time"])
                    if (since is None or stamp >= since) and (until is None or stamp < until):
                        records.extend(rows_of(logged))
                except (ValueError, KeyError, TypeError, IndexError):
                    # A process killed mid-write leaves a partial last line; the rest of the file is good.
                    skipped += 1
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
