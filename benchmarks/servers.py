"""Start a server process on a free port, wait until it answers, and measure its workers' memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
PROBE = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@dataclass(frozen=True)
class Started:
    """A running server."""

    url: str
    process: subprocess.Popen[bytes]
    seconds_to_ready: float
    # From the same start until GET /ui/ answered 200 (servers with a web UI only).
    seconds_to_ui: float | None = None


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def start_server(
    command: list[str],
    env: dict[str, str],
    log: Path,
    timeout: float = 120,
    probe: dict | None = None,
    ui: bool = False,
    cwd: Path = ROOT,
) -> Iterator[Started]:
    """Run `command` ({port} filled in) until the block ends; ready means POST /prediction of `probe` answers 200.

    With `ui`, also wait for GET /ui/ to answer 200 and time that too.
    """
    probe = PROBE if probe is None else probe
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [part.replace("{port}", str(port)) for part in command],
            cwd=cwd,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while True:
                if process.poll() is not None or time.monotonic() - started > timeout:
                    raise RuntimeError(f"{command[0]} did not get ready:\n{log.read_text()[-2000:]}")
                try:
                    if httpx.post(f"{url}/prediction", json=probe, timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            ready = time.monotonic() - started
            ui_ready = None
            while ui and ui_ready is None and time.monotonic() - started < timeout:
                try:
                    if httpx.get(f"{url}/ui/", timeout=5).status_code == 200:
                        ui_ready = time.monotonic() - started
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            yield Started(url, process, ready, ui_ready)
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started with start_new_session=True and everything it spawned (workers included)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return  # already gone, workers too (a test stopped it on purpose)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def worker_rss_mb(process: subprocess.Popen[bytes], ui: bool = False) -> list[float]:
    """Resident memory of each process that serves requests (the children, or the process if it has none).

    BentoML's workers name their service on their command line: with `ui`, only the web UI's worker, else
    every other one.
    """
    parent = psutil.Process(process.pid)
    workers = parent.children(recursive=True) or [parent]
    chosen = [w for w in workers if is_ui_worker(w) == ui]
    return sorted(w.memory_info().rss / 2**20 for w in chosen)


def is_ui_worker(process: psutil.Process) -> bool:
    """Whether a BentoML worker serves the web UI's service (named <model>_service_ui)."""
    try:
        command = process.cmdline()
    except psutil.Error:
        return False
    return "--service-name" in command[:-1] and command[command.index("--service-name") + 1].endswith("_ui")
