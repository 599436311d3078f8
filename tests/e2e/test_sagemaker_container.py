"""The session's image started the way SageMaker starts it (`<image> serve`, port 8080): /ping and /invocations."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.servers import free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "podman" / "containers.conf")}
SAGEMAKER_PORT = 8080


def wait_for(url: str, timeout: float = 120) -> float:
    """Seconds until GET `url` answers 200; fails after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"{url} did not answer 200 within {timeout:.0f} s")


@pytest.fixture(scope="module")
def endpoint(iris_image: dict[str, str], artifacts: Path) -> Iterator[dict[str, Any]]:
    """`podman run -p <port>:8080 <image> serve`, as SageMaker runs the container; its URL and start-up time."""
    name = f"sagemaker-serve-{os.getpid()}"
    port = free_port()
    started = time.monotonic()
    subprocess.run(
        ["podman", "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:{SAGEMAKER_PORT}"]
        + [iris_image["tag"], "serve"],
        env=PODMAN_ENV,
        check=True,
        capture_output=True,
    )
    url = f"http://127.0.0.1:{port}"
    measured = {"build_sh_s": float(iris_image["seconds"])}
    try:
        ready_s = wait_for(f"{url}/ping")
        measured["podman_run_to_ping_s"] = round(time.monotonic() - started, 1)
        yield {"url": url, "ready_s": ready_s}
    finally:
        logs = subprocess.run(["podman", "logs", name], env=PODMAN_ENV, capture_output=True, text=True)
        (artifacts / "sagemaker-serve.log").write_text(logs.stdout + logs.stderr)
        (artifacts / "sagemaker-serve.json").write_text(json.dumps(measured))
        subprocess.run(["podman", "rm", "-f", name], env=PODMAN_ENV, capture_output=True)


@pytest.fixture(scope="module")
def card(endpoint: dict[str, Any]) -> dict[str, Any]:
    """The served model's card, as GET /model gives it (also on port 8080: the whole API is there)."""
    return httpx.get(f"{endpoint['url']}/model").json()["card"]


def example_rows(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's example rows, without their labels, in the card's feature order."""
    names = [feature["name"] for feature in card["features"]]
    return [{name: row.get(name) for name in names} for row in card["examples"][:3]]


def as_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV without a header: blanks empty, booleans as words."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow(["" if v is None else str(v).lower() if isinstance(v, bool) else v for v in row.values()])
    return buffer.getvalue()


def test_ping_answers_on_8080_once_the_model_is_loaded(endpoint: dict[str, Any], iris_image: dict[str, str]) -> None:
    response = httpx.get(f"{endpoint['url']}/ping")
    assert (response.status_code, response.content) == (200, b"")
    assert endpoint["ready_s"] < 60  # SageMaker gives a new container 4 minutes to pass /ping
    assert "smoke: ready after" in iris_image["stdout"]  # and without `serve` the same image served on 3000


def test_invocations_json_object_and_list(endpoint: dict[str, Any], card: dict[str, Any]) -> None:
    rows = example_rows(card)
    one = httpx.post(f"{endpoint['url']}/invocations", json=rows[0])
    assert one.status_code == 200 and one.headers["content-type"] == "application/json"
    assert one.json() == httpx.post(f"{endpoint['url']}/prediction", json=rows[0]).json()
    many = httpx.post(f"{endpoint['url']}/invocations", json=rows)
    assert [a["class"] for a in many.json()] == [
        r["class"] for r in httpx.post(f"{endpoint['url']}/predict_batch", json=rows).json()
    ]


def test_invocations_csv_answers_csv_lines(endpoint: dict[str, Any], card: dict[str, Any]) -> None:
    rows = example_rows(card)
    response = httpx.post(f"{endpoint['url']}/invocations", content=as_csv(rows), headers={"content-type": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.text)))
    expected = httpx.post(f"{endpoint['url']}/predict_batch", json=rows).json()
    assert [line[0] for line in lines] == [answer["class"] for answer in expected]
    assert [[float(p) for p in line[1:]] for line in lines] == [list(a["probabilities"].values()) for a in expected]


def test_invocations_accept_header_and_a_bad_row(endpoint: dict[str, Any], card: dict[str, Any]) -> None:
    rows = example_rows(card)
    headers = {"content-type": "text/csv", "accept": "application/json"}
    as_json = httpx.post(f"{endpoint['url']}/invocations", content=as_csv(rows), headers=headers)
    assert as_json.headers["content-type"] == "application/json" and len(as_json.json()) == len(rows)
    short = as_csv(rows).splitlines()[0].rsplit(",", 1)[0]
    refused = httpx.post(f"{endpoint['url']}/invocations", content=short, headers={"content-type": "text/csv"})
    assert refused.status_code == 400
    assert refused.json()["detail"][0]["loc"] == [0] and "columns" in refused.json()["detail"][0]["msg"]
    unsupported = httpx.post(
        f"{endpoint['url']}/invocations", content=json.dumps(rows[0]), headers={"content-type": "application/x-npy"}
    )
    assert unsupported.status_code == 415
