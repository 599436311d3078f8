"""Start `bentoml serve` as a real subprocess and wait until it is ready."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.servers import free_port, stop_group

BENTOML = str(Path(sys.executable).parent / "bentoml")


@dataclass(frozen=True)
class Server:
    """A running server: where to reach it and how long it took to become ready."""

    url: str
    seconds_to_ready: float
    log: Path
    home: Path  # its BENTOML_HOME: the prediction log is under prediction_logs/<model name>


def private_home(shared: Path) -> Path:
    """A BENTOML_HOME of one server's own that sees the shared store's bentos and models.

    `bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir when it starts, so two servers on one
    home freeze each other's /metrics (the first keeps writing to deleted files). One home per server
    keeps every server's metrics its own; docs/monitoring.md tells users the same.
    """
    home = Path(tempfile.mkdtemp(prefix="bentoml-home-server-"))
    for store in ("bentos", "models"):
        (shared / store).mkdir(parents=True, exist_ok=True)
        (home / store).symlink_to(shared / store, target_is_directory=True)
    return home


@contextmanager
def serve(
    target: str, cwd: Path, log: Path, env: dict[str, str] | None = None, timeout: float = 90, python: str | None = None
) -> Iterator[Server]:
    """Run `bentoml serve target` on a free port until the block ends; fail with the log if it never gets ready.

    `python`: serve with that interpreter's BentoML (`python -m bentoml serve`), e.g. a notebook's environment.
    """
    env = dict(env or {})
    own_home = None
    if "BENTOML_HOME" not in env:
        own_home = private_home(Path(os.environ["BENTOML_HOME"]))
        env["BENTOML_HOME"] = str(own_home)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [
                *([python, "-m", "bentoml"] if python else [BENTOML]),
                "serve",
                target,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=cwd,
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so the whole process group (workers included) can be stopped
        )
        try:
            ready_after = _wait_ready(url, process, started, timeout, log)
            yield Server(url, ready_after, log, Path(env["BENTOML_HOME"]))
        finally:
            stop_group(process)
            if own_home is not None:
                shutil.rmtree(own_home, ignore_errors=True)


def _wait_ready(url: str, process: subprocess.Popen[bytes], started: float, timeout: float, log: Path) -> float:
    """Poll /readyz until it answers 200; return the seconds it took."""
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def wait_for_ui(url: str, timeout: float = 60, headers: dict[str, str] | None = None) -> float:
    """Wait until the web UI's own worker answers GET /ui/ with 200 (it starts after the API's); the seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"{url}/ui/", timeout=30, headers=headers).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url}/ui/ not answering after {timeout} s")
