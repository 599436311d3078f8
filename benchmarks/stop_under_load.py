"""SIGTERM to `bentoml serve` under load, as Kubernetes sends it on every rolling update: what got dropped?

Each client sends one request at a time with its own X-Request-ID and sorts every outcome:
- answered: a status came back;
- refused: the connection could not be made (the server had stopped accepting: the client may retry);
- dropped: the request was sent on an open connection and no answer came (reset, or closed early).
Afterwards the prediction log is read back, so every answered prediction can be looked up by its id.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.servers import Started

# Marks this run's requests in the prediction log (a readiness probe before the load is in the log too).
LOAD_ID_PREFIX = "stop-under-load-"


@dataclass
class StopResult:
    """What the clients saw around the SIGTERM, and what the prediction log holds."""

    exit_code: int | None
    stop_seconds: float | None
    answered_before_stop: int
    answered_after_stop: int
    refused: int
    dropped: int
    statuses: dict[str, int]
    answered_not_logged: int
    logged_not_answered: int
    log_rows: int
    dropped_examples: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        """Exit 0, no request dropped, every 200 in the log and nothing logged that was not answered."""
        return (
            self.exit_code == 0
            and self.dropped == 0
            and self.answered_not_logged == 0
            and self.logged_not_answered == 0
            and set(self.statuses) == {"200"}
        )


def stop_under_load(
    server: Started, body: dict[str, Any], log_dir: Path, clients: int = 16, stop_after_s: float = 4.0
) -> StopResult:
    """Load `server` from `clients` threads, SIGTERM its main process after `stop_after_s`, wait for it to exit."""
    outcomes: Counter[str] = Counter()
    answered: set[str] = set()
    examples: list[str] = []
    lock = threading.Lock()
    stopping = threading.Event()
    finished = threading.Event()
    before = after = 0

    def client() -> None:
        nonlocal before, after
        with httpx.Client(timeout=60) as http:
            while not finished.is_set():
                request_id = f"{LOAD_ID_PREFIX}{uuid.uuid4().hex}"
                try:
                    response = http.post(f"{server.url}/prediction", json=body, headers={"x-request-id": request_id})
                except httpx.ConnectError:
                    with lock:
                        outcomes["refused"] += 1
                    time.sleep(0.01)
                    continue
                except httpx.HTTPError as error:
                    with lock:
                        outcomes["dropped"] += 1
                        examples.append(f"{type(error).__name__}: {error}")
                    continue
                with lock:
                    outcomes[str(response.status_code)] += 1
                    if response.status_code == 200:
                        answered.add(request_id)
                        if stopping.is_set():
                            after += 1
                        else:
                            before += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(stop_after_s)
    stopping.set()
    sent = time.monotonic()
    # Only the main process, as `docker stop` and the kubelet do: it hands the signal on to its workers.
    server.process.send_signal(signal.SIGTERM)
    try:
        exit_code: int | None = server.process.wait(timeout=60)
        stop_seconds: float | None = time.monotonic() - sent
    except subprocess.TimeoutExpired:
        exit_code, stop_seconds = None, None
    time.sleep(0.5)  # clients keep trying: after the exit every attempt must be refused, never dropped
    finished.set()
    for thread in threads:
        thread.join()
    logged = _logged_request_ids(log_dir)
    statuses = {k: v for k, v in outcomes.items() if k not in ("refused", "dropped")}
    return StopResult(
        exit_code=exit_code,
        stop_seconds=stop_seconds,
        answered_before_stop=before,
        answered_after_stop=after,
        refused=outcomes["refused"],
        dropped=outcomes["dropped"],
        statuses=statuses,
        answered_not_logged=len(answered - set(logged)),
        logged_not_answered=sum(1 for rid in logged if rid.startswith(LOAD_ID_PREFIX) and rid not in answered),
        log_rows=sum(logged.values()),
        dropped_examples=examples[:5],
    )


def _logged_request_ids(log_dir: Path) -> Counter[str]:
    """Rows per request id in the prediction log."""
    rows: Counter[str] = Counter()
    for path in sorted(log_dir.glob("predictions-*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            rows[record["request_id"]] += record["rows"]
    return rows
