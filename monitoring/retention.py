"""Which log files to delete: older than the age limit, or the oldest while over the size limit.

The folder holds two kinds of files, predictions and the outcomes reported for them, under one budget; a
prediction segment counts the same whether it is still JSON lines or compacted into Parquet.
A file is only ever deleted when no worker can still be writing it. Writers append to the newest segment
of their own (kind, day, writer) series only, so a file is closed when a later segment of its series exists,
or when its UTC day ended more than an hour ago (a writer moves to a new file on its first write of a day).
Files that do not match the log's own naming are never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

# <kind>-<UTC day>-<writer>-<segment>.jsonl, or .parquet once a finished segment is compacted (monitoring/logstore.py);
# older versions wrote predictions-<UTC day>-<pid>.jsonl.
FILE_NAME = re.compile(
    r"^(?P<kind>predictions|outcomes)-(?P<day>\d{4}-\d{2}-\d{2})-(?P<writer>.+?)(?:-(?P<segment>\d{4}))?"
    r"\.(?:jsonl|parquet)$"
)
KINDS = ("predictions", "outcomes")
# A writer that has not written since midnight still holds yesterday's file open until its next write.
CLOSED_AFTER_DAY_ENDS = timedelta(hours=1)


@dataclass(frozen=True)
class Retention:
    """How much log to keep, predictions and outcomes together (docs/monitoring.md)."""

    max_age_days: float = 30.0
    max_bytes: int = 1024 * 2**20
    # A writer starts a new file past this size, so old parts of a busy day can go while the day goes on.
    segment_bytes: int = 64 * 2**20
    # How often each worker applies the limits while it runs.
    every_s: float = 60.0

    @property
    def segment_limit(self) -> int:
        """Bytes after which a writer starts a new file: small enough that the size limit can be kept."""
        return min(self.segment_bytes, max(64 * 2**10, self.max_bytes // 8))


@dataclass(frozen=True)
class LogFile:
    """One file of the log, as its name describes it."""

    path: Path
    day: datetime
    writer: str
    segment: int
    size: int
    kind: str = "predictions"


def log_files(directory: Path) -> list[LogFile]:
    """The folder's log files of both kinds, JSON or Parquet, oldest first; other files are left out."""
    files = []
    for path in directory.iterdir() if directory.is_dir() else []:
        match = FILE_NAME.match(path.name)
        if match is None:
            continue
        try:
            day = datetime.strptime(match["day"], "%Y-%m-%d").replace(tzinfo=UTC)
            size = path.stat().st_size
        except (ValueError, OSError):
            continue
        files.append(LogFile(path, day, match["writer"], int(match["segment"] or 0), size, match["kind"]))
    return sorted(files, key=lambda f: (f.day, f.segment, f.path.name))


def closed(files: list[LogFile], now: datetime) -> list[LogFile]:
    """The files no writer can be appending to any more."""
    # By kind too: a writer's open outcomes segment 0 is not closed by its predictions segment 2.
    newest: dict[tuple[str, datetime, str], int] = {}
    for f in files:
        newest[f.kind, f.day, f.writer] = max(newest.get((f.kind, f.day, f.writer), -1), f.segment)
    return [
        f
        for f in files
        if f.segment < newest[f.kind, f.day, f.writer] or now >= f.day + timedelta(days=1) + CLOSED_AFTER_DAY_ENDS
    ]


def to_delete(files: list[LogFile], retention: Retention, now: datetime) -> tuple[list[LogFile], int]:
    """The files to delete, and how many bytes would remain over the size limit after deleting them."""
    finished = closed(files, now)
    oldest_kept = now - timedelta(days=retention.max_age_days)
    doomed = [f for f in finished if f.day + timedelta(days=1) <= oldest_kept]
    total = sum(f.size for f in files) - sum(f.size for f in doomed)
    for f in finished:  # oldest first
        if total <= retention.max_bytes:
            break
        if f not in doomed:
            doomed.append(f)
            total -= f.size
    return doomed, max(0, total - retention.max_bytes)


def next_segment(directory: Path, day: str, writer: str, kind: str = "predictions") -> int:
    """The segment number a writer starts a day's file of `kind` with: one past any it left before (a restart)."""
    segments = [
        f.segment
        for f in log_files(directory)
        if f.kind == kind and f.day.strftime("%Y-%m-%d") == day and f.writer == writer
    ]
    return max(segments, default=-1) + 1
