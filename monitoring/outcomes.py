"""Outcomes: what really happened to earlier predictions, kept beside the prediction log and matched with it.

A caller reports an outcome by the X-Request-ID a prediction's answer carried (and the row, for a batch), or by
the logged values of key columns (a customer id the model does not read) and a window of prediction times: the
newest prediction in the window with those values is the one it belongs to. Each report is one JSON line in
`outcomes-<UTC date>-<host>-<pid>-<segment>.jsonl`, in the prediction log's folder and under its limits:
{"time", "feedback_id", "model", "rows", "request_id": [..], "row": [..], "label": [..]}, and for a report with
keyed outcomes also "key": [{column: value} or null], "since": [..], "until": [..]. A keyed outcome's
request_id and row are those of the prediction it matched when it arrived, null when none did (yet).

The join with the predictions (`PredictionIndex`) decides the match, so an outcome that arrived before its
prediction was written still joins later. The log stays append-only; a later outcome for the same prediction
replaces the earlier one when read (`read_outcomes`, then `latest_per_prediction` once keys are matched).
"""

from __future__ import annotations

import json
import logging
import mmap
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pydantic_core import from_json, to_json

from monitoring import logread
from monitoring.predlog import LINE_START, LineLog, file_may_hold

logger = logging.getLogger(__name__)

OUTCOME_PATTERN = "outcomes-*.jsonl"


class Outcome(NamedTuple):
    """What really happened to one row of an earlier prediction: named by request id and row, or by key."""

    request_id: str | None
    row: int
    label: str
    key: Mapping[str, Any] | None = None  # the logged values of key columns, instead of the request id
    since: datetime | None = None  # with a key: the window of prediction times it may match
    until: datetime | None = None

    def matched_as(self, logged: Logged | None) -> Outcome:
        """This outcome with the request id and row of the prediction its key matched (unchanged by id)."""
        if self.key is None or logged is None:
            return self
        return self._replace(request_id=logged.request_id, row=logged.row)


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
    request_id: str | None  # None: reported by a key that matched no prediction when it arrived
    row: int
    label: str
    key: Mapping[str, Any] | None = None
    since: datetime | None = None
    until: datetime | None = None


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
        outcomes = entry.outcomes
        record: dict[str, Any] = {
            "time": datetime.fromtimestamp(entry.time, UTC).isoformat(),
            "feedback_id": entry.feedback_id,
            "model": self.model_tag,
            "rows": len(outcomes),
            "request_id": [o.request_id for o in outcomes],
            "row": [o.row for o in outcomes],
            "label": [o.label for o in outcomes],
        }
        if any(o.key is not None for o in outcomes):
            record["key"] = [o.key for o in outcomes]
            record["since"] = [_iso(o.since) for o in outcomes]
            record["until"] = [_iso(o.until) for o in outcomes]
        return to_json(record) + b"\n"


def read_outcomes(log_dir: Path, since: datetime | None = None, until: datetime | None = None) -> list[ReportedOutcome]:
    """The outcomes that arrived with since <= time < until, the last per prediction, oldest first.

    The last is the latest by arrival time, then by file (name) and line order. A keyed outcome that matched no
    prediction is kept once per key and window. Files are dated by arrival, so those whose day lies outside the
    window are not read; unreadable lines are skipped with a warning.
    """
    latest: dict[tuple[Any, ...], ReportedOutcome] = {}
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
                    key = _prediction_of(outcome)
                    kept = latest.get(key)
                    if kept is None or outcome.time >= kept.time:
                        latest[key] = outcome
    if skipped:
        logger.warning("Skipped %d unreadable outcome lines in %s", skipped, log_dir)
    return sorted(latest.values(), key=lambda o: o.time)


def latest_per_prediction(pairs: Sequence[tuple[ReportedOutcome, Logged]]) -> list[tuple[ReportedOutcome, Logged]]:
    """One outcome per logged prediction row, its latest: keyed outcomes matched later may name one already named."""
    latest: dict[tuple[str, int], tuple[ReportedOutcome, Logged]] = {}
    for outcome, logged in pairs:
        kept = latest.get((logged.request_id, logged.row))
        if kept is None or outcome.time >= kept[0].time:
            latest[(logged.request_id, logged.row)] = (outcome, logged)
    return sorted(latest.values(), key=lambda pair: pair[0].time)


def _prediction_of(outcome: ReportedOutcome) -> tuple[Any, ...]:
    """What an outcome is about: its prediction's id and row, or (not matched yet) its key and window."""
    if outcome.request_id is not None:
        return (outcome.request_id, outcome.row)
    return ("key", to_json(outcome.key), outcome.since, outcome.until)


def _outcomes_of(line: dict[str, Any]) -> list[ReportedOutcome]:
    """A logged report as one outcome per row; ValueError/KeyError/TypeError when it is not one."""
    stamp = as_utc(datetime.fromisoformat(line["time"]))
    count = len(line["label"])
    keys = line.get("key") or [None] * count
    starts = line.get("since") or [None] * count
    ends = line.get("until") or [None] * count
    reported = []
    columns = zip(line["request_id"], line["row"], line["label"], keys, starts, ends, strict=True)
    for request_id, row, label, key, start, end in columns:
        named = isinstance(request_id, str) or (request_id is None and isinstance(key, dict) and key)
        if not (named and type(row) is int and isinstance(label, str)):
            raise TypeError("not an outcome")
        reported.append(ReportedOutcome(stamp, request_id, row, label, key, _time(start), _time(end)))
    return reported


def _iso(stamp: datetime | None) -> str | None:
    return None if stamp is None else as_utc(stamp).isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else as_utc(datetime.fromisoformat(text))


def as_utc(stamp: datetime) -> datetime:
    """The time in UTC; a naive time is taken as UTC already."""
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


@dataclass
class _IndexedFile:
    """One prediction file's lines by request id: hashes sorted, each line's offset beside its hash."""

    inode: int
    end: int = 0  # bytes indexed: up to the end of the last whole line
    hashes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    offsets: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    columns: dict[str, _KeyColumn] = field(default_factory=dict)  # built when outcomes are first reported by them

    def add(self, path: Path, size: int) -> None:
        """Index the whole lines between the indexed end and `size`; a torn tail waits until it is whole.

        A Parquet file is finished: its requests are indexed once, by the file row each starts at.
        """
        if path.suffix == ".parquet":
            self._add_parquet(path, size)
            return
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

    def _add_parquet(self, path: Path, size: int) -> None:
        """Index a Parquet file's requests by the row each starts at (hashed as the JSON line holds the id)."""
        request_ids, first_rows = logread.request_starts(path)
        hashed = np.array([id_hash(request_id) for request_id in request_ids], np.int64)
        order = np.argsort(hashed, kind="stable")
        self.hashes, self.offsets, self.end = hashed[order], first_rows.astype(np.int64)[order], size

    def offsets_of(self, wanted: np.ndarray) -> np.ndarray:
        """Offsets of the lines whose id hashes to one of `wanted` (sorted, unique)."""
        lo = np.searchsorted(self.hashes, wanted, "left")
        hi = np.searchsorted(self.hashes, wanted, "right")
        hits = [self.offsets[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if b > a]
        return np.sort(np.concatenate(hits)) if hits else np.empty(0, np.int64)

    def column(self, path: Path, name: str) -> _KeyColumn:
        """The index of one input column's values, brought up to the lines the id index holds."""
        indexed = self.columns.get(name)
        if indexed is None:
            indexed = self.columns[name] = _KeyColumn()
        if indexed.end < self.end:
            indexed.add(path, name, self.end)
        return indexed


@dataclass
class _KeyColumn:
    """One prediction file's rows by the value of one input column: hashes sorted, each row's line and row beside."""

    end: int = 0
    hashes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    offsets: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))

    def add(self, path: Path, name: str, end: int) -> None:
        """Index the column's values on the lines between the indexed end and `end` (a whole line's end)."""
        if path.suffix == ".parquet":
            self._add_parquet(path, name, end)
            return
        hashes, offsets, rows = [], [], []
        with path.open("rb") as file:
            file.seek(self.end)
            offset = self.end
            for line in file:
                if offset >= end:
                    break
                try:
                    values = from_json(line)["features"][name]
                except (ValueError, KeyError, TypeError):
                    values = None  # not a prediction line, or one without the column
                if isinstance(values, list):
                    for row, value in enumerate(values):
                        if value is not None:
                            hashes.append(hash(key_text(value)))
                            offsets.append(offset)
                            rows.append(row)
                offset += len(line)
        self._merge(hashes, offsets, rows, end)

    def _add_parquet(self, path: Path, name: str, end: int) -> None:
        """Index a Parquet file's values of the column; a row's offset is the file row its request starts at."""
        key_values, within = logread.key_values(path, name)
        hashed, starts, numbers = [], [], []
        for at, (value, row) in enumerate(zip(key_values, within.tolist(), strict=True)):
            if value is not None:
                hashed.append(hash(key_text(value)))
                starts.append(at - row)
                numbers.append(row)
        self._merge(hashed, starts, numbers, end)

    def _merge(self, hashes: list[int], offsets: list[int], rows: list[int], end: int) -> None:
        """Add these rows to the sorted index, which now reaches `end`."""
        new = np.array(hashes, np.int64)
        order = np.argsort(np.concatenate([self.hashes, new]), kind="stable")
        self.hashes = np.concatenate([self.hashes, new])[order]
        self.offsets = np.concatenate([self.offsets, np.array(offsets, np.int64)])[order]
        self.rows = np.concatenate([self.rows, np.array(rows, np.int32)])[order]
        self.end = end

    def rows_of(self, value: Any) -> list[tuple[int, int]]:
        """(offset, row) of every row whose value's text hashes like `value`'s."""
        wanted = hash(key_text(value))
        lo, hi = np.searchsorted(self.hashes, wanted, "left"), np.searchsorted(self.hashes, wanted, "right")
        return list(zip(self.offsets[lo:hi].tolist(), self.rows[lo:hi].tolist(), strict=True))


def id_hash(request_id: str) -> int:
    """A request id's hash as the index holds it: of its bytes as a JSON line writes them (LINE_START's group)."""
    return hash(to_json(request_id)[1:-1])


def key_text(value: Any) -> str:
    """A key value as text, so a warehouse's 42, "42" and 42.0 name the same customer (and true, "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class PredictionIndex:
    """Where each logged request's line is: built from the log files, read on from where it last stopped.

    It sees every worker's and pod's predictions in the folder and costs the prediction path nothing: ~16 bytes
    per logged request, built on first use (~5 s per GiB of log), then only the bytes appended since. A JSON
    segment compacted into Parquet is indexed anew from the Parquet file's request_id column.
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
        by_hash = {id_hash(request_id): request_id for request_id in ids}
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

    def find_keys(self, outcomes: Sequence[Outcome | ReportedOutcome]) -> list[Logged | None]:
        """The newest logged row with each keyed outcome's values in its window; None where there is none.

        The first key column narrows the rows by its index (built on first use from the lines' JSON), the line
        itself confirms every column and the time. Outcomes reported by request id get None here.
        """
        found: list[Logged | None] = []
        with self._lock:
            self._refresh()
            files = sorted(self._files.items())
            for outcome in outcomes:
                found.append(None if outcome.key is None else self._newest_with(files, outcome))
        return found

    def _newest_with(self, files: list[tuple[Path, _IndexedFile]], outcome: Outcome | ReportedOutcome) -> Logged | None:
        """The newest row of these files whose line has the outcome's key values, in its window."""
        assert outcome.key is not None
        first, value = next(iter(outcome.key.items()))
        wanted = {name: key_text(v) for name, v in outcome.key.items()}
        since = None if outcome.since is None else as_utc(outcome.since)
        until = None if outcome.until is None else as_utc(outcome.until)
        best: tuple[datetime, int, Logged] | None = None
        for order, (path, indexed) in enumerate(files):
            if not file_may_hold(path, since, until):
                continue
            candidates = indexed.column(path, first).rows_of(value)
            lines = dict(zip(*_offsets_and_lines(path, sorted({offset for offset, _ in candidates})), strict=True))
            for offset, row in candidates:
                line = lines.get(offset)
                if line is None or not _has_values(line, row, wanted):
                    continue
                logged = _logged_row(line, row)
                if logged is None or (since is not None and logged.time < since):
                    continue
                if until is not None and logged.time >= until:
                    continue
                if best is None or (logged.time, order) >= best[:2]:
                    best = (logged.time, order, logged)
        return None if best is None else best[2]

    def _refresh(self) -> None:
        """Index new files and appended bytes; forget deleted files; index a shrunk or replaced file anew."""
        seen = set()
        for path in logread.prediction_files(self.log_dir) if self.log_dir.is_dir() else []:
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
    return _offsets_and_lines(path, offsets)[1]


def _offsets_and_lines(path: Path, offsets: list[int]) -> tuple[list[int], list[dict[str, Any]]]:
    """The parsed lines starting at these offsets, and their offsets; a line that does not parse is left out.

    In a Parquet file an offset is the row its request starts at, and the line is rebuilt from its rows.
    """
    kept, lines = [], []
    if path.suffix == ".parquet":
        try:
            found = logread.requests_at(path, offsets)
        except OSError:
            return [], []  # deleted since the refresh
        return [offset for offset, _ in found], [line for _, line in found]
    try:
        with path.open("rb") as file:
            for offset in offsets:
                file.seek(offset)
                try:
                    line = json.loads(file.readline())
                except ValueError:
                    continue
                if isinstance(line, dict):
                    kept.append(offset)
                    lines.append(line)
    except OSError:
        pass  # deleted since the refresh
    return kept, lines


def _has_values(line: dict[str, Any], row: int, wanted: Mapping[str, str]) -> bool:
    """Whether the line's row has these key values (not a hash collision)."""
    try:
        features = line["features"]
        return all(key_text(features[name][row]) == text for name, text in wanted.items())
    except (KeyError, TypeError, IndexError):
        return False


def _keep_newest(
    newest: dict[str, tuple[datetime, int, dict[str, Any]]], line: dict[str, Any], ids: set[str], order: int
) -> None:
    """Keep `line` if it is one of the asked ids' (not a hash collision) and newer than the one kept."""
    request_id = line.get("request_id")
    if not isinstance(request_id, str) or request_id not in ids:
        return
    try:
        stamp = as_utc(datetime.fromisoformat(line["time"]))
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
            time=as_utc(datetime.fromisoformat(line["time"])),
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
