"""The web UI's worker starts after the API's (serving/startup.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from serving import startup


@pytest.fixture
def run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    addresses = {"x_clf_service_ui": f"file://{tmp_path}/1.sock", "x_clf_service": "http://localhost:3000"}
    monkeypatch.setenv("BENTOML_RUNNER_MAP", json.dumps(addresses))
    return tmp_path


def test_the_ui_worker_waits_until_an_api_worker_announces_itself(run_folder: Path) -> None:
    threading.Timer(0.3, startup.announce_api_started).start()
    started = time.monotonic()
    startup.start_ui_worker_after_api(["worker", "--service-name", "x_clf_service_ui"])
    assert 0.25 < time.monotonic() - started < 5
    assert (run_folder / startup.MARKER).exists()


def test_api_workers_and_other_processes_never_wait(run_folder: Path) -> None:
    started = time.monotonic()
    startup.start_ui_worker_after_api(["worker", "--service-name", "x_clf_service"])
    startup.start_ui_worker_after_api(["bentoml", "serve", "."])
    assert time.monotonic() - started < 0.2


def test_outside_bentoml_serve_nothing_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENTOML_RUNNER_MAP", raising=False)
    started = time.monotonic()
    startup.start_ui_worker_after_api(["worker", "--service-name", "x_clf_service_ui"])
    startup.announce_api_started()
    assert time.monotonic() - started < 0.2


def test_the_wait_is_bounded(run_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(startup, "HOLD_AT_MOST_S", 0.3)
    started = time.monotonic()
    startup.start_ui_worker_after_api(["worker", "--service-name", "x_clf_service_ui"])
    assert 0.25 < time.monotonic() - started < 3


def test_a_dependencys_unix_socket_comes_from_bentomls_address_map(run_folder: Path) -> None:
    assert startup.dependency_socket("x_clf_service_ui") == f"{run_folder}/1.sock"
    assert startup.dependency_socket("x_clf_service") is None  # served over TCP, not a socket
    assert startup.dependency_socket("elsewhere") is None


def test_no_or_a_broken_address_map_means_no_dependencies(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in (None, "not json", "[1, 2]"):
        if value is None:
            monkeypatch.delenv("BENTOML_RUNNER_MAP", raising=False)
        else:
            monkeypatch.setenv("BENTOML_RUNNER_MAP", value)
        assert startup.dependency_addresses() == {}
        assert startup.dependency_socket("x_clf_service_ui") is None
