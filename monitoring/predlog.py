"""The prediction log: one JSON line per request, written by a background thread.

A line holds the request's rows column by column (a batch of 1,000 rows is one line, not 1,000):
{"time", "request_id", "source", "model", "latency_ms", "rows", "features": {name: [values]},
"class": [names], "probability": [values], "probabilities": {class: [values]}}. `read_records` gives them
back one row at a time. The writer itself is `LineLog`, which the outcome log (monitoring/outcomes.py) shares.

Files are `predictions-<UTC date>-<host>-<pid>-<segment>.jsonl` in one folder: each worker process writes
its own files (several pods may share the folder), starts a new one each UTC day and every
`segment_bytes`, and applies the retention limits (monitoring/retention.py) while it runs.

The disk never fails a prediction: when the folder is full, missing or read-only, records are dropped
and counted (and an error logged at most once a minute), and writing resumes by itself when it can.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic_core import to_json

from modelcard.card import FeatureSpec
from monitoring.retention import Retention, log_files, next_segment, to_delete
from runtime import DEFAULT_MODEL_TAG
from runtime.table import FeatureTable, json_values

if TYPE_CHECKING:  # the checks import this module to read the log: not onnxruntime and BentoML with it
    from runtime.predictor import Prediction

logger = logging.getLogger(__name__)


def default_prediction_log(env: Mapping[str, str], model_tag: str | None = None) -> Path:
    """$BENTOML_HOME/prediction_logs/<model name>: beside the model store, writable in the container too."""
    home = Path(env.get("BENTOML_HOME") or Path.home() / "bentoml")
    tag = model_tag or env.get("MODEL_TAG") or DEFAULT_MODEL_TAG
    return home / "prediction_logs" / tag.split(":", 1)[0]


FILE_PATTERN = "predictions-*.jsonl"
# Every line a log writes starts so (to_json keeps the key order): the id of a line, found without parsing it.
# A quote inside a JSON string is written \" , so only the start of a line can match.
LINE_START = re.compile(rb'\{"time":"[^"]*","request_id":"([^"\\]*(?:\\.[^"\\]*)*)"')
# An unwritable folder fills no log with the same error per request: once a minute says it.
ERROR_LOG_EVERY_S = 60.0


class _Timed(Protocol):
    """What a log writes: something that happened at a time (seconds since the epoch)."""

    @property
    def time(self) -> float: ...


E = TypeVar("E", bound=_Timed)


@dataclass(frozen=True)
class _Entry:
    """One request's predictions as flat columns: the writer thread turns them into a line.

    Columns (the request's FeatureTable, lists of classes and probabilities), not Prediction objects: a
    1,000-row batch then keeps a handful of objects alive until it is written instead of thousands, which
    the garbage collector would otherwise carry into its older, costlier generations. The per-row dicts of
    every class's probability are the predictions' own and not tracked by the collector (they hold floats).
    """

    time: float
    request_id: str
    source: str
    table: FeatureTable
    classes: list[str]
    probabilities: list[float]
    latency_s: float
    # This request's row of `table` when the table holds several requests' rows; None: all of it is this request's.
    row: int | None = None
    class_probabilities: list[dict[str, float]] = field(default_factory=list)


class LineLog(Generic[E]):
    """An append-only JSON-lines log written by a background thread; `_put` only enqueues, so callers never wait.

    Subclasses say how an entry becomes a line (`_line`) and how many rows it holds (`_rows`); the files, their
    segments, the full-disk rules and the flush at close are this class's. The writer that `sweeps` applies the
    retention limits to the whole folder, every kind of file in it.
    """

    prefix = "predictions"
    name = "Prediction log"
    sweeps = True  # this writer applies the retention to the folder, for every kind of file in it

    def __init__(
        self,
        directory: Path,
        model_tag: str,
        max_pending: int = 100_000,
        on_drop: Callable[[int], None] | None = None,
        flush_every_s: float = 0.1,
        retention: Retention | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.model_tag = model_tag
        self.max_pending = max_pending
        self.on_drop = on_drop
        self.dropped = 0
        self.flush_every_s = flush_every_s
        self.retention = retention or Retention()
        self.clock = clock
        # Unique across the pods that may share the folder, and across this host's processes.
        self.writer = f"{_safe(socket.gethostname())}-{os.getpid()}"
        self._queue: queue.SimpleQueue[E] = queue.SimpleQueue()
        self._closing = threading.Event()
        # Set by the first entry queued after a write: the writer sleeps until then (or until retention is due).
        self._queued = threading.Event()
        self._fd: int | None = None
        self._path: Path | None = None  # the file being written, handed to `_finished` when the writer leaves it
        self._file_day = ""
        self._file_bytes = 0
        self._segment = 0
        self._failing_since_drop = 0  # rows dropped since writing last failed; 0 while writing works
        self._last_error_log = float("-inf")
        self._next_sweep = 0.0
        self._thread = threading.Thread(target=self._write_forever, name=f"{self.prefix}-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @property
    def failing(self) -> bool:
        """True while the last write failed (rows are being dropped) and none has succeeded since."""
        return self._failing_since_drop > 0

    def _line(self, entry: E) -> bytes:
        """One JSON line (ending in a newline) for one entry."""
        raise NotImplementedError

    def _rows(self, entry: E) -> int:
        """How many rows an entry holds: what is counted when it is dropped."""
        raise NotImplementedError

    def _put(self, entry: E, rows: int) -> None:
        """Queue one entry; when the queue is full or the log is closing, drop and count it instead."""
        # Bounded by dropping, never by blocking: a slow disk must not become slow predictions.
        if self._queue.qsize() >= self.max_pending or self._closing.is_set():
            self._drop(rows)
            return
        self._queue.put(entry)
        self._wake_writer()

    def close(self) -> None:
        """Write what is queued and stop the writer (also run at interpreter exit)."""
        if self._thread.is_alive():
            self._closing.set()
            self._queued.set()
            self._thread.join(timeout=10)

    def _wake_writer(self) -> None:
        """Wake the writer for what was just queued (an attribute read; the Event's own lock once a write)."""
        if not self._queued.is_set():
            self._queued.set()

    def _drop(self, rows: int) -> None:
        """Count rows that will never reach the log."""
        self.dropped += rows
        if self.on_drop is not None:
            self.on_drop(rows)

    def _write_forever(self) -> None:
        """One flush interval after something is queued, write all that is queued; now and then, apply retention.

        Waking once per interval instead of on each record keeps the request thread from handing the GIL to
        this one after every prediction, which cost about a third of the throughput; asleep while nothing is
        queued, an idle worker does not wake but for retention (docs/performance.md).
        """
        while True:
            # A writer that does not sweep sleeps until something is queued (Event.wait(inf) would overflow).
            self._queued.wait(max(0.0, self._next_sweep - time.monotonic()) if self.sweeps else None)
            closing = self._closing.wait(self.flush_every_s)
            self._queued.clear()  # before draining: whatever is queued after this wakes the next round
            entries = self._drain()
            if entries:
                self._write(entries)
            if self.sweeps and time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + self.retention.every_s
                self.apply_retention()
            if closing:
                self._close_file()
                self._leave_file()
                return

    def _drain(self) -> list[E]:
        """Everything queued right now."""
        entries: list[E] = []
        while True:
            try:
                entries.append(self._queue.get_nowait())
            except queue.Empty:
                return entries

    def _write(self, entries: list[E]) -> None:
        """Append the entries' lines to the current file; whatever cannot be written is dropped and counted."""
        lines = [self._line(entry) for entry in entries]
        written = 0
        try:
            day = datetime.fromtimestamp(entries[0].time, UTC).strftime("%Y-%m-%d")
            fd = self._current_file(day)
            written = _append_whole_lines(fd, lines)
        except OSError as error:
            written = error.lines if isinstance(error, PartialWrite) else 0
            self._close_file()  # the next write starts a fresh file: no torn line is ever glued onto
            self._failed(error, sum(self._rows(e) for e in entries[written:]))
            return
        self._file_bytes += sum(len(line) for line in lines)
        if self._failing_since_drop:
            logger.warning(
                "%s is writing to %s again, after dropping %d rows",
                self.name,
                self.directory,
                self._failing_since_drop,
            )
            self._failing_since_drop = 0

    def _failed(self, error: OSError, rows: int) -> None:
        """Drop and count the rows that were not written; say so at most once a minute."""
        self._drop(rows)
        self._failing_since_drop += rows
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_EVERY_S:
            self._last_error_log = now
            logger.error(
                "%s cannot write to %s (%s); requests are still answered, their log records "
                "are dropped and counted in the dropped-records metric (%d rows so far) until it can write again",
                self.name,
                self.directory,
                error,
                self._failing_since_drop,
            )

    def _current_file(self, day: str) -> int:
        """The open file for `day`, starting a new one on a new day, past the segment size, or after an error."""
        if self._fd is not None and day == self._file_day and self._file_bytes < self.retention.segment_limit:
            return self._fd
        self._close_file()
        self._leave_file()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._segment = (
            self._segment + 1
            if day == self._file_day
            else next_segment(self.directory, day, self.writer, kind=self.prefix)
        )
        path = self.directory / f"{self.prefix}-{day}-{self.writer}-{self._segment:04d}.jsonl"
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._path = path
        self._file_day = day
        self._file_bytes = os.fstat(self._fd).st_size
        return self._fd

    def _leave_file(self) -> None:
        """The writer will not append to its last file again: hand it to `_finished`."""
        if self._path is not None:
            path, self._path = self._path, None
            self._finished(path)

    def _finished(self, path: Path) -> None:
        """A segment this writer will never append to again (a new day or segment, or the log closed)."""

    def _close_file(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def apply_retention(self) -> list[Path]:
        """Delete the files (of every kind) past the age or size limit that no writer is using; return them."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        try:
            doomed, still_over = to_delete(log_files(self.directory), self.retention, now)
        except OSError:
            return []
        deleted = []
        for f in doomed:
            try:
                f.path.unlink(missing_ok=True)
                deleted.append(f.path)
            except OSError as error:
                logger.warning("Prediction log retention could not delete %s: %s", f.path, error)
        if deleted:
            logger.info(
                "Prediction log retention deleted %d files: %s", len(deleted), ", ".join(p.name for p in deleted)
            )
        if still_over:
            logger.warning(
                "Prediction log in %s is %d bytes over its size limit in files still being written",
                self.directory,
                still_over,
            )
        return deleted


class PredictionLog(LineLog[_Entry]):
    """Append-only JSON-lines log of predictions; `record` only enqueues, so requests never wait on the disk."""

    def __init__(
        self,
        directory: Path,
        model_tag: str,
        features: Sequence[FeatureSpec],
        max_pending: int = 100_000,
        on_drop: Callable[[int], None] | None = None,
        flush_every_s: float = 0.1,
        retention: Retention | None = None,
        clock: Callable[[], float] = time.time,
        compact: bool = False,
    ) -> None:
        self.features = list(features)
        # Finished segments become Parquet (monitoring/logstore.py); SERVING_PREDICTION_LOG_FORMAT=parquet.
        self.compact = compact
        # Each feature's JSON conversion, chosen once: the writer thread runs it for every request.
        self._columns = [(spec.name, json_values(spec)) for spec in features]
        super().__init__(directory, model_tag, max_pending, on_drop, flush_every_s, retention, clock)

    def record(
        self,
        request_id: str,
        source: str,
        table: FeatureTable,
        predictions: Sequence[Prediction],
        latency_s: float,
    ) -> None:
        """Queue one request's predictions for the log."""
        # Bounded by dropping, never by blocking: a slow disk must not become slow predictions.
        if self._queue.qsize() >= self.max_pending or self._closing.is_set():
            self._drop(len(predictions))
            return
        self._queue.put(
            _Entry(
                self.clock(),
                request_id,
                source,
                table,
                [p.class_name for p in predictions],
                [p.probability for p in predictions],
                latency_s,
                None,
                [p.probabilities for p in predictions],
            )
        )
        self._wake_writer()

    def record_rows(
        self,
        request_ids: Sequence[str],
        source: str,
        table: FeatureTable,
        predictions: Sequence[Prediction],
        latencies_s: Sequence[float],
    ) -> None:
        """Queue single-row requests predicted together as one table: row i is request i's, a line each."""
        if len(request_ids) == 1:
            self.record(request_ids[0], source, table, predictions, latencies_s[0])
            return
        if self._queue.qsize() + len(request_ids) > self.max_pending or self._closing.is_set():
            self._drop(len(predictions))
            return
        now = self.clock()
        for row, (request_id, prediction, latency_s) in enumerate(
            zip(request_ids, predictions, latencies_s, strict=True)
        ):
            self._queue.put(
                _Entry(
                    now,
                    request_id,
                    source,
                    table,
                    [prediction.class_name],
                    [prediction.probability],
                    latency_s,
                    row,
                    [prediction.probabilities],
                )
            )
        self._wake_writer()

    def _rows(self, entry: _Entry) -> int:
        return len(entry.classes)

    def _finished(self, path: Path) -> None:
        """Compact the segment just left into Parquet, in this thread; on failure it stays JSON (still read)."""
        if not self.compact:
            return
        # Imported here: a worker that does not compact never loads pyarrow (~40 MB of its memory).
        from pyarrow import ArrowException

        from monitoring.logstore import compact

        try:
            compact(path, self.features, self.writer)
        except FileNotFoundError:
            pass  # already compacted by a sweep, or deleted by retention
        except (OSError, ArrowException) as error:
            logger.warning("%s could not compact %s (it is read as JSON meanwhile): %s", self.name, path.name, error)

    def apply_retention(self) -> list[Path]:
        """Compact finished JSON segments left behind (a crashed writer's), then apply the limits."""
        if self.compact:
            from monitoring.logstore import compact_finished

            now = datetime.fromtimestamp(self.clock(), UTC)
            try:
                compact_finished(self.directory, self.model_tag, self.features, now, self.writer)
            except OSError as error:
                logger.warning("%s could not look for segments to compact: %s", self.name, error)
        return super().apply_retention()

    def _line(self, entry: _Entry) -> bytes:
        """One JSON line for one request, its rows column by column."""
        ps = entry.class_probabilities
        record = {
            "time": datetime.fromtimestamp(entry.time, UTC).isoformat(),
            "request_id": entry.request_id,
            "source": entry.source,
            "model": self.model_tag,
            "latency_ms": round(entry.latency_s * 1000, 3),
            "rows": len(entry.classes),
            "features": {name: convert(_rows_of(entry, entry.table.columns[name])) for name, convert in self._columns},
            "class": entry.classes,
            "probability": entry.probabilities,
            # Every class's probability, keyed in the card's class order (the predictor's dicts keep it).
            "probabilities": {c: [d[c] for d in ps] for c in ps[0]} if ps else {},
        }
        return to_json(record) + b"\n"


def _rows_of(entry: _Entry, column: Any) -> Any:
    """The part of a table's column that is this entry's request's."""
    return column if entry.row is None else column[entry.row : entry.row + 1]


class PartialWrite(OSError):
    """Only the first `lines` lines reached the file; the error says why the rest did not."""

    def __init__(self, lines: int, error: OSError) -> None:
        super().__init__(error.errno, error.strerror)
        self.lines = lines


def _append_whole_lines(fd: int, lines: list[bytes]) -> int:
    """Append the lines; on a failure cut any torn last line off again, so the file holds whole lines only.

    Returns the number of lines written (all of them). Raises PartialWrite with how many made it.
    """
    data = b"".join(lines)
    start = os.lseek(fd, 0, os.SEEK_END)
    done = 0
    try:
        while done < len(data):
            done += os.write(fd, data[done:])
    except OSError as error:
        whole, end = 0, 0
        for line in lines:
            if end + len(line) > done:
                break
            end += len(line)
            whole += 1
        if end < done:
            try:
                os.ftruncate(fd, start + end)  # shrinking needs no free space
            except OSError:
                pass  # readers skip a torn line anyway
        raise PartialWrite(whole, error) from error
    return len(lines)


def _safe(name: str) -> str:
    """A host name usable in a file name."""
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in name)[:63] or "host"


def rows_of(line: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A logged request as one record per row: {time, request_id, source, model, row, features, class, ...}."""
    shared = {key: line[key] for key in ("time", "request_id", "source", "model", "latency_ms")}
    names = list(line["features"])
    columns = [line["features"][name] for name in names]
    every = line.get("probabilities")  # None on lines written before every class's probability was logged
    for index in range(line["rows"]):
        yield {
            **shared,
            "row": index,
            "features": {name: column[index] for name, column in zip(names, columns, strict=True)},
            "class": line["class"][index],
            "probability": line["probability"][index],
            "probabilities": None if every is None else {c: values[index] for c, values in every.items()},
        }


def read_records(directory: Path, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """Every logged row with since <= time < until, oldest first; unreadable lines are skipped with a warning.

    Compacted segments are read from their Parquet files (monitoring/logread.py), the others as JSON lines.
    """
    import json

    from monitoring.logread import parquet_records, prediction_files

    records: list[dict[str, Any]] = []
    skipped = 0
    for path in prediction_files(directory) if directory.is_dir() else []:
        if not file_may_hold(path, since, until):
            continue
        if path.suffix == ".parquet":
            records.extend(parquet_records(path, since, until))
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


def file_may_hold(path: Path, since: datetime | None, until: datetime | None) -> bool:
    """False when the file's day lies wholly outside the window."""
    try:
        day = datetime.strptime(path.name.split("-", 1)[1][:10], "%Y-%m-%d").date()
    except ValueError:
        return True
    return (since is None or day >= since.astimezone(UTC).date()) and (
        until is None or day <= until.astimezone(UTC).date()
    )
