"""Start order under `bentoml serve`: the API's workers first, then the web UI's worker.

On a small machine the UI's worker (Gradio alone is ~5 s of CPU) and the API's workers start at once and
share the cores; the API then took 1-2 s longer to become ready. So the UI's worker, before it imports
anything, waits until an API worker has started (or HOLD_AT_MOST_S passes). The signal is a file in the
folder BentoML makes for this run's Unix sockets (it removes it when the server stops). Importing Gradio in
a low-priority thread meanwhile was tried: the thread held the GIL while descheduled and the UI took 18 s.

Only the standard library here: this runs before service.py imports anything else.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

UI_SERVICE_SUFFIX = "_service_ui"
HOLD_AT_MOST_S = 10.0
MARKER = "api-started"
# Written once the web UI has answered a request: from then on the API's readiness includes the UI's.
UI_READY_MARKER = "ui-ready"


def dependency_addresses() -> dict[str, str]:
    """The addresses `bentoml serve` gave this worker's dependencies, by service name ({} outside it).

    BentoML hands each worker this map in BENTOML_RUNNER_MAP (its worker reads the same variable);
    tests/e2e/test_served_bento.py fails if that changes.
    """
    try:
        addresses = json.loads(os.environ.get("BENTOML_RUNNER_MAP", "{}"))
    except ValueError:
        return {}
    if not isinstance(addresses, dict):
        return {}
    return {name: address for name, address in addresses.items() if isinstance(address, str)}


def dependency_socket(service_name: str) -> str | None:
    """The Unix socket of the dependency `service_name` (None when it runs elsewhere or not at all)."""
    address = dependency_addresses().get(service_name, "")
    for scheme in ("unix://", "file://"):
        if address.startswith(scheme):
            return address.removeprefix(scheme)
    return None


def run_folder() -> Path | None:
    """The folder of this run's dependency sockets."""
    for address in dependency_addresses().values():
        if address.startswith("file://"):
            return Path(address.removeprefix("file://")).parent
    return None


def _service_name(argv: list[str]) -> str | None:
    """The --service-name a BentoML worker was started with."""
    if "--service-name" in argv[:-1]:
        return argv[argv.index("--service-name") + 1]
    return None


def start_ui_worker_after_api(argv: list[str] | None = None) -> None:
    """In the UI's worker: wait (at most HOLD_AT_MOST_S) for an API worker to start."""
    name = _service_name(sys.argv if argv is None else argv)
    folder = run_folder()
    if name is None or not name.endswith(UI_SERVICE_SUFFIX) or folder is None:
        return
    deadline = time.monotonic() + HOLD_AT_MOST_S
    while not (folder / MARKER).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def announce_api_started() -> None:
    """In an API worker, let the UI's worker go on."""
    _mark(MARKER)


def announce_ui_ready() -> None:
    """Once the UI answered a request: from then on every API worker's readiness includes the UI's."""
    _mark(UI_READY_MARKER)


def ui_was_ready() -> bool:
    """True once the UI of this run has answered a request (outside `bentoml serve`: never)."""
    folder = run_folder()
    return folder is not None and (folder / UI_READY_MARKER).exists()


def _mark(name: str) -> None:
    folder = run_folder()
    if folder is not None and folder.is_dir():
        (folder / name).touch()
