"""Outcomes: what really happened to earlier predictions, kept beside the prediction log and matched with it.

A caller reports outcomes by the X-Request-ID a prediction's answer carried (and the row, for a batch). Each
report is one JSON line in `outcomes-<UTC date>-<host>-<pid>-<segment>.jsonl`, in the prediction log's folder
and under its limits: {"time", "feedback_id", "model", "rows", "request_id": [..], "row": [..], "label": [..]}.
Only what the caller said and when it arrived: the join with the predictions (`PredictionIndex`) decides the
match, so an outcome that arrived before its prediction was written still joins later. The log stays
append-only; a later outcome for the same row replaces the earlier one when read (`read_outcomes`).
"""

from __future__ import annotations

import json
import logging
import mmap
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pydantic_core import to_json

from monitoring.predlog import FILE_PATTERN, LINE_START, LineLog, file_may_hold

logger = logging.getLogger(__name__)

OUTCOME_PATTERN = "outcomes-*.jsonl"


class Outcome(NamedTuple):
    """What really happened to one row of an earlier prediction."""

    request_id: str
    row: int
    label: str


class Logged(NamedTuple):
    """One logged prediction row, as the index finds it."""

    time: datetime
    request_id: str
    row: int
    model: str
    source: str
    class_name: str
    probability: float
    probabilities: dict[str, float] | None  # None on lines written before every class's probability was logged


class ReportedOutcome(NamedTuple):
    """One outcome as read back from the outcome log, with when it arrived."""

    time: datetime
    request_id: str
    row: int
    label: str


@dataclass(frozen=True)
class _Feedback:
    """One report of outcomes, as the writer thread turns it into a line."""

    time: float
    feedback_id: str
    outcomes: list[Outcome]


class OutcomeLog(LineLog[_Feedback]):
    """Outcomes reported for earlier predictions, beside the prediction log: same files, limits and disk rules.

    It does not sweep: the prediction log's writer applies the retention limits to both kinds of files.
    """

    prefix = "outcomes"
    name = "Outcome log"
    sweeps = False  # the prediction log's writer sweeps the folder

    def record(self, feedback_id: str, outcomes: Sequence[Outcome]) -> None:
        """Queue one report's outcomes: one line, whatever their number."""
        if outcomes:
            self._put(_Feedback(self.clock(), feedback_id, list(outcomes)), rows=len(outcomes))

    def _rows(self, entry: _Feedback) -> int:
        return len(entry.outcomes)

    def _line(self, entry: _Feedback) -> bytes:
        ids, rows, labels = zip(*entry.outcomes, strict=True)
        record = {
            "time": datetime.fromtimestamp(entry.time, UTC).isoformat(),
            "feedback_id": entry.feedback_id,
            "model": self.model_tag,
            "rows": len(ids),
            "request_id": ids,
            "row": rows,
            "label": labels,
        }
        return to_json(record) + b"\n"


def read_outcomes(log_dir: Path, since: datetime | None = None, until: datetime | None = None) -> list[ReportedOutcome]:
    """The outcomes that arrived with since <= time < until, the last per (request_id, row), oldest first.

    The last is the latest by arrival time, then by file (name) and line order. Files are dated by arrival, so
    those whose day lies outside the window are not read; unreadable lines are skipped with a warning.
    """
    latest: dict[tuple[str, int], ReportedOutcome] = {}
    skipped = 0
    for path in sorted(log_dir.glob(OUTCOME_PATTERN)):
        if not file_may_hold(path, since, until):
            continue
        with path.open("rb") as lines:
            for line in lines:
                try:
                    reported = _outcomes_of(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    skipped += 1  # a torn last line, or a line not written by this log
                    continue
                for outcome in reported:
                    if (since is not None and outcome.time < since) or (until is not None and outcome.time >= until):
                        continue
                    key = (outcome.request_id, outcome.row)
                    kept = latest.get(key)
                    if kept is None or outcome.time >= kept.time:
                        latest[key] = outcome
    if skipped:
        logger.warning("Skipped %d unreadable outcome lines in %s", skipped, log_dir)
    return sorted(latest.values(), key=lambda o: o.time)


def _outcomes_of(line: dict[str, Any]) -> list[ReportedOutcome]:
    """A logged report as one outcome per row; ValueError/KeyError/TypeError when it is not one."""
    stamp = _aware(datetime.fromisoformat(line["time"]))
    reported = []
    for request_id, row, label in zip(line["request_id"], line["row"], line["label"], strict=True):
        if not (isinstance(request_id, str) and type(row) is int and isinstance(label, str)):
            raise TypeError("not an outcome")
        reported.append(ReportedOutcome(stamp, request_id, row, label))
    return reported


def _aware(stamp: datetime) -> datetime:
    """The time in UTC; a naive time is taken as UTC already."""
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


@dataclass
class _IndexedFile:
    """One prediction file's lines by request id: hashes sorted, each line's offset beside its hash."""

    inode: int
    end: int = 0  # bytes indexed: up to the end of the last whole line
    hashes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    offsets: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def add(self, path: Path, size: int) -> None:
        """Index the whole lines between the indexed end and `size`; a torn tail waits until it is whole."""
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            cut = data.rfind(b"\n", self.end, min(size, len(data))) + 1
            if cut <= self.end:
                return
            ids, starts = [], []
            for match in LINE_START.finditer(data, self.end, cut):  # groups are read while the map is open
                ids.append(hash(match.group(1)))
                starts.append(match.start())
        hashes, offsets = np.array(ids, np.int64), np.array(starts, np.int64)
        new = np.argsort(hashes, kind="stable")
        hashes = np.concatenate([self.hashes, hashes[new]])
        offsets = np.concatenate([self.offsets, offsets[new]])
        # Two sorted runs: the stable sort (timsort) merges them in linear time.
        order = np.argsort(hashes, kind="stable")
        self.hashes, self.offsets, self.end = hashes[order], offsets[order], cut

    def offsets_of(self, wanted: np.ndarray) -> np.ndarray:
        """Offsets of the lines whose id hashes to one of `wanted` (sorted, unique)."""
        lo = np.searchsorted(self.hashes, wanted, "left")
        hi = np.searchsorted(self.hashes, wanted, "right")
        hits = [self.offsets[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if b > a]
        return np.sort(np.concatenate(hits)) if hits else np.empty(0, np.int64)


class PredictionIndex:
    """Where each logged request's line is: built from the log files, read on from where it last stopped.

    It sees every worker's and pod's predictions in the folder and costs the prediction path nothing: ~16 bytes
    per logged request, built on first use (~5 s per GiB of log), then only the bytes appended since.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._files: dict[Path, _IndexedFile] = {}
        # BentoML runs sync @api methods in a thread pool; the index is shared by them.
        self._lock = threading.Lock()

    def find(self, keys: Sequence[tuple[str, int]]) -> list[Logged | None]:
        """The logged row for each (request_id, row): None for an unknown id or a row past that request's rows.

        A request id logged more than once (a caller reusing its X-Request-ID) takes its newest line.
        """
        ids = {request_id for request_id, _ in keys}
        if not ids:
            return []
        by_hash = {hash(to_json(request_id)[1:-1]): request_id for request_id in ids}  # the bytes as logged
        wanted = np.unique(np.fromiter(by_hash, np.int64, count=len(by_hash)))
        newest: dict[str, tuple[datetime, int, dict[str, Any]]] = {}
        with self._lock:
            self._refresh()
            for order, (path, indexed) in enumerate(sorted(self._files.items())):
                offsets = indexed.offsets_of(wanted)
                if len(offsets):
                    for line in _lines_at(path, offsets.tolist()):
                        _keep_newest(newest, line, ids, order)
        return [_logged_row(newest[rid][2], row) if rid in newest else None for rid, row in keys]

    def _refresh(self) -> None:
        """Index new files and appended bytes; forget deleted files; index a shrunk or replaced file anew."""
        seen = set()
        for path in self.log_dir.glob(FILE_PATTERN):
            try:
                status = path.stat()
            except OSError:
                continue  # deleted meanwhile
            indexed = self._files.get(path)
            if indexed is None or indexed.inode != status.st_ino or status.st_size < indexed.end:
                indexed = self._files[path] = _IndexedFile(status.st_ino)
            seen.add(path)
            if status.st_size > indexed.end:
                try:
                    indexed.add(path, status.st_size)
                except (OSError, ValueError):
                    continue  # deleted or emptied meanwhile: the next refresh sees it
        for path in set(self._files) - seen:
            del self._files[path]


def _lines_at(path: Path, offsets: list[int]) -> list[dict[str, Any]]:
    """The parsed lines starting at these offsets; a line that does not parse is left out."""
    lines = []
    try:
        with path.open("rb") as file:
            for offset in offsets:
                file.seek(offset)
                try:
                    line = json.loads(file.readline())
                except ValueError:
                    continue
                if isinstance(line, dict):
                    lines.append(line)
    except OSError:
        pass  # deleted since the refresh
    return lines


def _keep_newest(
    newest: dict[str, tuple[datetime, int, dict[str, Any]]], line: dict[str, Any], ids: set[str], order: int
) -> None:
    """Keep `line` if it is one of the asked ids' (not a hash collision) and newer than the one kept."""
    request_id = line.get("request_id")
    if not isinstance(request_id, str) or request_id not in ids:
        return
    try:
        stamp = _aware(datetime.fromisoformat(line["time"]))
    except (KeyError, TypeError, ValueError):
        return
    kept = newest.get(request_id)
    if kept is None or (stamp, order) >= kept[:2]:
        newest[request_id] = (stamp, order, line)


def _logged_row(line: dict[str, Any], row: int) -> Logged | None:
    """One row of a logged request's line; None when the request has no such row or the line is not a prediction."""
    try:
        if not 0 <= row < line["rows"]:
            return None
        every = line.get("probabilities")
        return Logged(
            time=_aware(datetime.fromisoformat(line["time"])),
            request_id=line["request_id"],
            row=row,
            model=line["model"],
            source=line["source"],
            class_name=line["class"][row],
            probability=line["probability"][row],
            probabilities=None if every is None else {c: values[row] for c, values in every.items()},
        )
    except (KeyError, TypeError, IndexError, ValueError):
        return None
