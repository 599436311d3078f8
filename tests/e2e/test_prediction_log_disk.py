"""The prediction log of a served bento on a real, small filesystem: retention, a full disk, and recovery.

The log folder is a 2 MiB tmpfs mounted for this module, so "the disk is full" is the kernel's ENOSPC, not
a simulation. Predictions must keep being answered while it is full; their records are dropped and counted,
one error line is logged (not one per request), and writing resumes by itself once space is back.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, serve
from tests.fakes import SETOSA

pytestmark = pytest.mark.slow

SUDO = [] if os.geteuid() == 0 else ["sudo", "-n"]
FULL_DISK_ERROR = "Prediction log cannot write to"


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real filesystem that really fills up."""
    mount_point = tmp_path_factory.mktemp("small-disk")
    mounted = subprocess.run(
        [*SUDO, "mount", "-t", "tmpfs", "-o", "size=2m,mode=1777", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, f"cannot mount a tmpfs (needs root or sudo): {mounted.stderr}"
    try:
        yield mount_point
    finally:
        subprocess.run([*SUDO, "umount", "-l", str(mount_point)], check=False)


@pytest.fixture(scope="module")
def log_dir(small_disk: Path) -> Path:
    """The log folder, holding files older versions and earlier days left behind."""
    folder = small_disk / "prediction-log"
    folder.mkdir()
    today = datetime.now(UTC)
    for days_ago, writer in ((90, "old-host-1-0000"), (45, "7"), (3, "recent-host-9-0000")):
        day = (today - timedelta(days=days_ago)).strftime("%Y-%m-%d")
        (folder / f"predictions-{day}-{writer}.jsonl").write_text('{"time": "x"}\n' * 100)
    (folder / "README.txt").write_text("not a log file: retention leaves it alone")
    return folder


@pytest.fixture(scope="module")
def logging_bento(
    bento_tag: str, log_dir: Path, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[Server]:
    env = {"SERVING_PREDICTION_LOG": str(log_dir), "SERVING_PREDICTION_LOG_MAX_AGE_DAYS": "30"}
    log = artifacts / "serve-small-disk.log"
    with serve(bento_tag, cwd=tmp_path_factory.mktemp("small-disk-cwd"), log=log, env=env) as server:
        yield server


def _predict(server: Server, count: int, tag: str) -> list[str]:
    ids = [f"{tag}-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    with httpx.Client(base_url=server.url) as client:
        for request_id in ids:
            answer = client.post("/prediction", json=SETOSA, headers={"x-request-id": request_id})
            assert answer.status_code == 200, answer.text
    return ids


def _logged_ids(folder: Path) -> set[str]:
    ids = set()
    for path in folder.glob("predictions-*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                ids.add(json.loads(line)["request_id"])
            except (ValueError, KeyError):
                pass
    return ids


def _dropped(server: Server) -> float:
    metrics = httpx.get(f"{server.url}/metrics").text
    match = re.search(r"^classifier_prediction_log_dropped_total (\S+)$", metrics, re.M)
    assert match, "no dropped-records metric"
    return float(match.group(1))


def _eventually(check, timeout: float = 10.0):  # noqa: ANN001, ANN202 - a small polling helper
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_retention_removes_old_days_while_the_service_runs(logging_bento: Server, log_dir: Path) -> None:
    names = _eventually(lambda: {p.name for p in log_dir.iterdir()} if len(list(log_dir.iterdir())) == 2 else None)
    assert names is not None, f"old files still there: {sorted(p.name for p in log_dir.iterdir())}"
    assert any("recent-host-9" in name for name in names) and "README.txt" in names
    assert "Prediction log retention deleted 2 files" in logging_bento.log.read_text()


def _per_worker(log: Path, pattern: str) -> dict[str, list[str]]:
    """The log lines matching `pattern` by the API worker that wrote them (each worker has its own writer)."""
    lines: dict[str, list[str]] = {}
    for match in re.finditer(r"\[(?:entry_)?service:([^\]]+)\] (" + pattern + ")", log.read_text()):
        lines.setdefault(match.group(1), []).append(match.group(2))
    return lines


def test_a_full_disk_keeps_answering_drops_counts_and_recovers(logging_bento: Server, log_dir: Path) -> None:
    before = _predict(logging_bento, 20, "before")
    assert _eventually(lambda: set(before) <= _logged_ids(log_dir)), "the first predictions were not logged"
    dropped_before = _dropped(logging_bento)

    filler = log_dir.parent / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False)  # to ENOSPC
    during = _predict(logging_bento, 30, "during")  # every one answered 200 while the disk is full
    time.sleep(1.0)  # the writer tries every 0.1 s
    lost = set(during) - _logged_ids(log_dir)
    # The file's last, partly filled page may still take a few lines; every other record is counted, exactly.
    assert len(lost) >= 20, f"only {len(lost)} of 30 records were refused: the disk was not full"
    assert _eventually(lambda: _dropped(logging_bento) - dropped_before == len(lost)), _dropped(logging_bento)
    failed = _per_worker(logging_bento.log, re.escape(FULL_DISK_ERROR))
    assert failed and all(len(lines) == 1 for lines in failed.values()), f"logged per request, not once: {failed}"

    filler.unlink()  # space is back
    after: list[str] = []
    again = r"Prediction log is writing to \S+ again, after dropping \d+ rows"

    def every_failed_worker_writes_again() -> bool:
        # A writer learns that space is back when it next has rows to write; a new connection per call
        # lets the kernel hand calls to every API worker, so each one that dropped rows gets some.
        after.extend(_predict(logging_bento, 4, "after"))
        return set(_per_worker(logging_bento.log, again)) >= set(failed)

    assert _eventually(every_failed_worker_writes_again, timeout=30), "writing did not resume by itself"
    assert _eventually(lambda: set(after) <= _logged_ids(log_dir)), "records after recovery are missing"
    assert set(during) - _logged_ids(log_dir) == lost
    assert _dropped(logging_bento) - dropped_before == len(lost)
    resumed = [line for lines in _per_worker(logging_bento.log, again).values() for line in lines]
    assert sum(int(re.search(r"dropping (\d+) rows", line).group(1)) for line in resumed) == len(lost), resumed
