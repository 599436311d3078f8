"""A real Prometheus server (Debian's package) scraping a service on loopback, and its HTTP query API."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.servers import free_port, stop_group
from tests.conftest import ROOT

RULES = ROOT / "deploy" / "prometheus" / "rules" / "classifier.rules.yml"
SCRAPE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus: query it by PromQL."""

    url: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector; fails on a PromQL or server error."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        assert body["status"] == "success", f"{promql}: {body}"
        return body["data"]["result"]

    def value(self, promql: str) -> float:
        """The single number a query answers (0 when it answers nothing)."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else 0.0

    def wait_for(self, promql: str, expected: float, timeout: float = 30) -> float:
        """Poll until the query answers `expected`; return the last answer (the caller asserts on it)."""
        deadline = time.monotonic() + timeout
        value = self.value(promql)
        while value != expected and time.monotonic() < deadline:
            time.sleep(0.25)
            value = self.value(promql)
        return value


def scrape_config_for(target: str, rules: Path = RULES) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml pointed at `target`, scraping every second instead of every 15."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules)]
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [target]
    return config


@contextmanager
def run_prometheus(
    target: str, workdir: Path, log: Path, timeout: float = 60, rules: Path = RULES
) -> Iterator[Prometheus]:
    """Start Prometheus scraping `target` (host:port) with these rules; stop it when the block ends."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `make test` installs Debian's prometheus package"
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config_for(target, rules)))
    port = free_port()
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, process, timeout, log)
            yield Prometheus(url)
        finally:
            stop_group(process)


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    """Poll /-/ready until Prometheus answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"prometheus not ready after {timeout} s:\n{log.read_text()[-3000:]}")
