"""What an attacker on the network tried against a served churn model, each refused (docs/security.md).

The served bento runs with small limits so each one is reached quickly (20 UI streams a worker, a 2 s body
deadline, UI files kept 4 s); the locked iris bento (tests/e2e/conftest.py) covers the same with an API key.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file

from tests.e2e.conftest import API_KEY
from tests.e2e.server import Server, serve, wait_for_ui
from tests.loops import run_async

pytestmark = pytest.mark.slow

FILES_MAX_AGE_S = 4
LIMITS = {
    "SERVING_UI_MAX_STREAMS": "20",
    "SERVING_BODY_TIMEOUT_S": "2",
    "SERVING_UI_FILES_MAX_AGE_S": str(FILES_MAX_AGE_S),
}
KEY = {"authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def exposed(churn_bento_tag: str, tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Server]:
    """The churn bento as a default deployment would run it (no API key), with small limits."""
    with serve(
        churn_bento_tag, cwd=tmp_path_factory.mktemp("exposed"), log=artifacts / "serve-attacked.log", env=LIMITS
    ) as server:
        wait_for_ui(server.url)
        yield server


@pytest.fixture(scope="module")
def card(exposed: Server) -> dict[str, Any]:
    return httpx.get(f"{exposed.url}/model").json()["card"]


@pytest.fixture(scope="module")
def example(card: dict[str, Any]) -> dict[str, Any]:
    return {spec["name"]: card["examples"][0].get(spec["name"]) for spec in card["features"]}


def port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def server_pid(server: Server) -> int:
    """The `bentoml serve` process listening on the server's port."""
    found = subprocess.run(["pgrep", "-f", "--", f"--port {port(server)}"], capture_output=True, text=True)
    return int(found.stdout.split()[0])


def worker_pids(server: Server, pattern: str = "") -> list[int]:
    """Its workers (those whose command line has `pattern`)."""
    found = subprocess.run(
        ["pgrep", "-P", str(server_pid(server)), "-f", pattern or "."], capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]


def ui_folder(server: Server) -> Path:
    """The private folder the server's web UI keeps its files in (one per `bentoml serve` process)."""
    (folder,) = Path("/tmp").glob(f"model-ui-*-{server_pid(server)}")
    return folder


def csv_of(row: dict[str, Any]) -> str:
    return ",".join(row) + "\n" + ",".join("" if v is None else str(v) for v in row.values()) + "\n"


def file_data(path: str) -> dict[str, Any]:
    """A Gradio file argument naming `path`, as a client may send it without uploading anything."""
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def files_in(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def call(url: str, api: str, data: list[Any], headers: dict[str, str] | None = None) -> str:
    """A raw Gradio REST call: POST the data, then read the result stream; the stream's text."""
    joined = httpx.post(f"{url}/ui/gradio_api/call/{api}", json={"data": data}, headers=headers, timeout=30)
    assert joined.status_code == 200, joined.text
    answer = httpx.get(f"{url}/ui/gradio_api/call/{api}/{joined.json()['event_id']}", headers=headers, timeout=30)
    return answer.text


# --- H1: server files through the UI's CSV API -----------------------------------------------------------


@pytest.fixture(scope="module")
def outside_files(tmp_path_factory: pytest.TempPathFactory, card: dict[str, Any]) -> dict[str, str]:
    """Files on the server's disk that nobody uploaded: a CSV the model could read (with e-mails), and others."""
    folder = tmp_path_factory.mktemp("server-files")
    names = [spec["name"] for spec in card["features"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*names, "email"])
    writer.writerow([*("" if card["examples"][0][n] is None else card["examples"][0][n] for n in names), "a@b.example"])
    (folder / "customers.csv").write_text(buffer.getvalue())
    (folder / "secret.txt").write_text("SECRET=1\n")
    (folder / "link.csv").symlink_to(folder / "customers.csv")
    return {
        "outside csv": str(folder / "customers.csv"),
        "outside non-csv": str(folder / "secret.txt"),
        "system file": "/etc/passwd",
        "environment": "/proc/self/environ",
        "traversal": f"/tmp/gradio/../..{folder}/customers.csv",
        "symlink": str(folder / "link.csv"),
        "missing": str(folder / "missing.csv"),
    }


def test_no_server_file_is_read_or_copied_through_the_ui(exposed: Server, outside_files: dict[str, str]) -> None:
    folder = ui_folder(exposed)
    before = set(files_in(folder))
    answers = {}
    for what, path in outside_files.items():
        answer = call(exposed.url, "predict_csv", [file_data(path)])
        assert "a@b.example" not in answer and "SECRET" not in answer and "root:" not in answer, what
        answers[what] = answer.split("data:", 1)[-1].strip()
        fetched = httpx.get(f"{exposed.url}/ui/gradio_api/file={path}")
        assert fetched.status_code == 403 and "a@b.example" not in fetched.text, what
    # The same refusal whatever the path: nothing says whether a file exists.
    assert len(set(answers.values())) == 1 and "Errno" not in next(iter(answers.values())), answers
    copied = [p for p in set(files_in(folder)) - before if p.name in {"customers.csv", "secret.txt", "passwd"}]
    assert copied == []


def test_gradio_client_uploads_its_own_file_and_cannot_make_the_server_fetch_one(
    exposed: Server, tmp_path: Path, example: dict[str, Any]
) -> None:
    """gradio_client uploads a local file itself; a URL it passes on as it is, and the server must not fetch it."""
    client = Client(f"{exposed.url}/ui/", verbose=False)
    from gradio_client.exceptions import AppError

    for url in ("https://example.com/customers.csv", "http://169.254.169.254/latest/meta-data.csv"):
        with pytest.raises(AppError):
            client.predict(file_data(url), api_name="/predict_csv")
    for route in ("file=https://example.com/x.csv", "file=//example.com/x.csv", "proxy=https://example.com/x"):
        assert httpx.get(f"{exposed.url}/ui/gradio_api/{route}").status_code == 403, route
    own = tmp_path / "mine.csv"
    own.write_text(csv_of(example))
    status, _table, _download = client.predict(handle_file(str(own)), api_name="/predict_csv")
    assert "Predicted **1** rows" in status


def test_with_the_key_outside_paths_are_refused_too(locked_bento: Server, outside_files: dict[str, str]) -> None:
    for what in ("outside csv", "system file", "missing"):
        answer = call(locked_bento.url, "predict_csv", [file_data(outside_files[what])], headers=KEY)
        assert "event: error" in answer and "a@b.example" not in answer and "Errno" not in answer, what


# --- H2: error bodies ------------------------------------------------------------------------------------


def test_hostile_bodies_get_small_refusals_without_stalling_others(exposed: Server, example: dict[str, Any]) -> None:
    hostile = [
        ("/invocations", (b"a,b\n" * 262_000)[:1_000_000], "text/csv"),
        ("/predict_batch", json.dumps([{**example, **{f"u{i}": 1 for i in range(60)}}] * 1000).encode(), None),
        ("/prediction", json.dumps({**example, **{f"u{i}": 1 for i in range(40_000)}}).encode(), None),
        ("/prediction", json.dumps({**example, **{f"u{i}": 1 for i in range(40_000)}}).encode(), "application/x+json"),
    ]

    async def attack_and_predict() -> tuple[list[httpx.Response], list[float]]:
        async with httpx.AsyncClient(base_url=exposed.url, timeout=60) as client:

            async def refuse(path: str, body: bytes, media: str | None) -> httpx.Response:
                return await client.post(path, content=body, headers={"content-type": media or "application/json"})

            async def predict_meanwhile() -> list[float]:
                seconds = []
                for _ in range(20):
                    started = time.perf_counter()
                    assert (await client.post("/prediction", json=example)).status_code == 200
                    seconds.append(time.perf_counter() - started)
                return seconds

            *refused, seconds = await asyncio.gather(*(refuse(*h) for h in hostile * 2), predict_meanwhile())
            return refused, seconds

    refused, seconds = run_async(attack_and_predict)
    for response in refused:
        assert response.status_code == 400 and len(response.content) < 10_000, response.text[:200]
        assert len(response.json()["detail"]) <= 21
    assert max(seconds) < 2, seconds  # 161 MB of errors held a worker's loop for 5.4 s


def test_a_key_given_twice_is_refused_naming_it(exposed: Server, example: dict[str, Any]) -> None:
    name = next(iter(example))
    twice = json.dumps(example)[:-1] + f', "{name}": {json.dumps(example[name])}}}'
    for path, body in (("/prediction", twice), ("/predict_batch", f"[{twice}]")):
        refused = httpx.post(f"{exposed.url}{path}", content=body, headers={"content-type": "application/json"})
        assert refused.status_code == 400 and refused.json()["detail"][0]["type"] == "duplicate_key"
        assert refused.json()["detail"][0]["loc"][-1] == name


# --- H3 and M2: /metrics --------------------------------------------------------------------------------


async def send_many(host_port: tuple[str, int], requests: list[bytes], connections: int = 32) -> list[int]:
    """Send every raw HTTP/1.1 request over keep-alive connections; the statuses (httpx is the slow side here)."""
    statuses: list[int] = []
    queue = list(reversed(requests))

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(*host_port)
        while queue:
            writer.write(queue.pop())
            head = await reader.readuntil(b"\r\n\r\n")
            statuses.append(int(head.split(b" ", 2)[1]))
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
        writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return statuses


def test_metrics_stay_bounded_after_ten_thousand_made_up_paths(exposed: Server) -> None:
    # Most outside the UI: Gradio answers some 150 requests a second, the API's 404s many more.
    paths = [f"/made-up/{i}" if i % 10 else f"/ui/gradio_api/file=/x/{i}" for i in range(10_000)]
    before = httpx.get(f"{exposed.url}/metrics").content
    requests = [f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for path in paths]
    statuses = run_async(lambda: send_many(("127.0.0.1", port(exposed)), requests))
    assert len(statuses) == 10_000 and set(statuses) <= {403, 404}, set(statuses)
    started = time.perf_counter()
    after = httpx.get(f"{exposed.url}/metrics")
    scrape = time.perf_counter() - started
    labels = set(re.findall(r'endpoint="([^"]*)"', after.text))
    assert len(labels) <= 20 and "other" in labels and "/ui/*" in labels, labels
    assert not any("made-up" in label or "file=" in label for label in labels)
    assert len(after.content) < len(before) + 100_000 and scrape < 2, (len(before), len(after.content), scrape)


def test_batch_results_are_listed_nowhere_and_expire(exposed: Server, example: dict[str, Any], tmp_path: Path) -> None:
    own = tmp_path / "batch.csv"
    own.write_text(csv_of(example))
    client = Client(f"{exposed.url}/ui/", verbose=False)
    result = client.predict(handle_file(str(own)), api_name="/predict_csv")
    served = httpx.get(f"{exposed.url}/ui/config").text  # the download's path is in no page for others
    metrics = httpx.get(f"{exposed.url}/metrics").text
    assert "predictions.csv" not in metrics and "batch.csv" not in metrics and "predictions.csv" not in served
    assert Path(result[2]["value"]).read_text().count("\n") == 2  # the client got its own results
    folder = ui_folder(exposed)
    made = [p for p in files_in(folder) if p.name.endswith("-predictions.csv")]
    assert made and all(re.fullmatch(r"[0-9a-f]{32,64}", p.parent.name) for p in made)  # unguessable folders
    deadline = time.monotonic() + FILES_MAX_AGE_S + 10
    while any(p.exists() for p in made) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(p.exists() for p in made), "results outlived SERVING_UI_FILES_MAX_AGE_S"


# --- H4: the UI's queue flooded --------------------------------------------------------------------------


def test_the_ui_survives_a_flood_of_calls(exposed: Server, example: dict[str, Any]) -> None:
    body = json.dumps({"data": [*example.values()]}).encode()
    head = "POST /ui/gradio_api/call/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    call_once = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
    codes = run_async(lambda: send_many(("127.0.0.1", port(exposed)), [call_once] * 2_500, connections=50))
    assert len(codes) == 2_500 and set(codes) <= {200, 503}, set(codes)  # taken, or told the queue is full
    # The flood's last 100 calls may still be queued: the queue must drain and take new calls again, soon.
    deadline = time.monotonic() + QUEUE_DRAINS_S
    while (full := _queue_full(exposed.url, example)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not full, f"the UI's queue was still full {QUEUE_DRAINS_S} s after the flood"
    answer = call(exposed.url, "predict", [*example.values()])
    assert "event: complete" in answer, answer[:300]  # not "Queue is stopped." as before the fix
    assert httpx.get(f"{exposed.url}/readyz").status_code == 200


QUEUE_DRAINS_S = 30


def _queue_full(url: str, example: dict[str, Any]) -> bool:
    """The UI refuses a call because its queue is full (and says so); any other answer is not that."""
    joined = httpx.post(f"{url}/ui/gradio_api/call/predict", json={"data": [*example.values()]}, timeout=30)
    return joined.status_code == 503 and "Queue is full" in joined.text


def test_readiness_reports_a_ui_that_cannot_answer(exposed: Server) -> None:
    (ui,) = worker_pids(exposed, "_service_ui")
    os.kill(ui, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 20
        while httpx.get(f"{exposed.url}/readyz", timeout=10).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert httpx.get(f"{exposed.url}/readyz", timeout=10).status_code == 503
    finally:
        os.kill(ui, signal.SIGCONT)
    deadline = time.monotonic() + 20
    while httpx.get(f"{exposed.url}/readyz", timeout=10).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert httpx.get(f"{exposed.url}/readyz").status_code == 200


# --- H5: uploads -----------------------------------------------------------------------------------------


def worker_rss_mb(server: Server) -> float:
    kib = [int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) for pid in worker_pids(server)]
    return sum(kib) / 1024


def test_a_thousand_file_upload_is_cut_off_and_leaves_nothing(exposed: Server) -> None:
    megabyte = os.urandom(2**20)

    def parts(count: int) -> Iterator[bytes]:
        for i in range(count):
            yield f'--b0\r\nContent-Disposition: form-data; name="files"; filename="f{i}.csv"\r\n\r\n'.encode()
            yield megabyte + b"\r\n"
        yield b"--b0--\r\n"

    headers = {"content-type": "multipart/form-data; boundary=b0"}
    folder = ui_folder(exposed)
    rss = worker_rss_mb(exposed)
    started = time.monotonic()
    refused = httpx.post(f"{exposed.url}/ui/gradio_api/upload", content=parts(1000), headers=headers, timeout=60)
    assert refused.status_code == 413 and time.monotonic() - started < 10
    with socket.create_connection(("127.0.0.1", port(exposed)), timeout=10) as connection:  # a declared 1 GB
        connection.sendall(
            b"POST /ui/gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b0\r\n"
            b"Content-Length: %d\r\n\r\n" % (1000 * (2**20 + 80))
        )
        assert b" 413 " in connection.recv(200).split(b"\r\n", 1)[0]  # answered before any byte of the body
    two = (
        b"".join([*parts(0)][:0])
        + b'--b0\r\nContent-Disposition: form-data; name="files"; filename="a.csv"\r\n\r\na\r\n'
    )
    two += b'--b0\r\nContent-Disposition: form-data; name="files"; filename="b.csv"\r\n\r\nb\r\n--b0--\r\n'
    assert httpx.post(f"{exposed.url}/ui/gradio_api/upload", content=two, headers=headers).status_code == 413
    assert worker_rss_mb(exposed) - rss < 200  # was +1.8 GB
    size = sum(p.stat().st_size for p in files_in(folder))
    assert size < 4 * 2**20, size  # at most what the cap let through, and swept soon after


# --- M1, M4, the pass-through ---------------------------------------------------------------------------


def test_another_sites_page_cannot_drive_the_ui(exposed: Server, example: dict[str, Any]) -> None:
    headers = {"origin": "https://evil.example", "host": "model.example"}
    joined = httpx.post(
        f"{exposed.url}/ui/gradio_api/call/predict", json={"data": [*example.values()]}, headers=headers
    )
    assert joined.status_code == 403 and "access-control-allow-origin" not in joined.headers
    preflight = httpx.options(
        f"{exposed.url}/ui/gradio_api/call/predict", headers={**headers, "access-control-request-method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    same = {"origin": "http://model.example", "host": "model.example"}
    assert (
        httpx.post(
            f"{exposed.url}/ui/gradio_api/call/predict", json={"data": [*example.values()]}, headers=same
        ).status_code
        == 200
    )


def test_open_streams_never_hold_up_other_ui_requests(exposed: Server) -> None:
    async def hold_streams() -> tuple[list[int | str], list[float]]:
        limits = httpx.Limits(max_connections=300)  # the page's side never runs out of connections
        timeout = httpx.Timeout(30, read=None)
        async with httpx.AsyncClient(base_url=exposed.url, timeout=timeout, limits=limits) as streams:
            opened: list[int | str] = []

            async def hold(i: int) -> None:
                try:
                    async with streams.stream("GET", f"/ui/gradio_api/heartbeat/s{i:05d}") as response:
                        opened.append(response.status_code)
                        async for _ in response.aiter_raw():
                            pass
                except httpx.HTTPError as error:
                    opened.append(type(error).__name__)

            tasks = [asyncio.create_task(hold(i)) for i in range(250)]
            deadline = time.monotonic() + 30
            while len(opened) < 250 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            seconds = []
            async with httpx.AsyncClient(base_url=exposed.url, timeout=30) as other:
                for path in ("/ui/config", "/ui/gradio_api/info", "/ui/"):
                    started = time.perf_counter()
                    assert (await other.get(path)).status_code == 200, path
                    seconds.append(time.perf_counter() - started)
            for task in tasks:
                task.cancel()
            return opened, seconds

    opened, seconds = run_async(hold_streams)
    assert opened.count(200) <= 40 and opened.count(503) >= 210  # 20 a worker, the rest refused at once
    assert max(seconds) < 3, seconds  # waited 10 s then 503 before


def test_the_pass_through_answers_only_what_the_ui_should(exposed: Server, locked_bento: Server) -> None:
    page = httpx.get(f"{exposed.url}/ui/", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in page.headers
    assert len(page.headers.get_list("date")) == 1
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert header in page.headers, header
    assert page.headers["cache-control"] == "no-store"  # built from the Host header: no shared cache keeps it
    redirect = httpx.get(f"{exposed.url}/ui", headers={"host": "evil.example"})
    assert redirect.is_redirect and redirect.headers["cache-control"] == "no-store"
    docs = httpx.get(f"{exposed.url}/")
    assert "content-security-policy" in docs.headers and docs.headers["x-frame-options"] == "SAMEORIGIN"
    # Gradio's ranged file answers copy every request header back, the Authorization header included.
    config = httpx.get(f"{locked_bento.url}/ui/config", headers=KEY).json()
    template = next(str(path) for path in re.findall(r'"path": "([^"]+template\.csv)"', json.dumps(config)))
    ranged = httpx.get(f"{locked_bento.url}/ui/gradio_api/file={template}", headers={**KEY, "range": "bytes=0-10"})
    assert ranged.status_code in (200, 206) and "authorization" not in ranged.headers


def test_a_websocket_is_refused_at_once(exposed: Server) -> None:
    with socket.create_connection(("127.0.0.1", port(exposed)), timeout=10) as connection:
        connection.sendall(
            b"GET /ui/queue/join HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        started = time.monotonic()
        status = connection.recv(200).split(b"\r\n", 1)[0]
    assert b"403" in status and time.monotonic() - started < 5, status  # was a 500 after 30 s


def test_a_silent_body_is_cut_off(exposed: Server) -> None:
    for path in ("/prediction", "/predict_batch", "/invocations"):
        with socket.create_connection(("127.0.0.1", port(exposed)), timeout=30) as connection:
            head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
            connection.sendall(f"{head}\r\n{{".encode())  # then nothing more
            started = time.monotonic()
            status = connection.recv(200).split(b"\r\n", 1)[0]
            assert b"408" in status and time.monotonic() - started < 10, (path, status)


# --- M3, the session cookie -------------------------------------------------------------------------------


def test_a_malformed_session_cookie_is_a_401(locked_bento: Server) -> None:
    for cookie in (b"ui_session=\xb2.x", b"ui_session=" + b"9" * 5000 + b".x", b"ui_session=1.2.3"):
        for path in ("/ui/config", "/model", "/prediction"):
            answer = httpx.get(f"{locked_bento.url}{path}", headers={"cookie": cookie})
            assert answer.status_code in (401, 405) and "Traceback" not in answer.text, (path, answer.status_code)


def test_signing_out_ends_the_session_in_every_worker(locked_bento: Server) -> None:
    signed_in = httpx.post(
        f"{locked_bento.url}/ui/login", data={"key": API_KEY}, headers={"x-forwarded-proto": "https"}
    )
    assert signed_in.headers["set-cookie"].endswith("Secure")
    session = {"cookie": f"ui_session={signed_in.cookies['ui_session']}"}
    assert httpx.get(f"{locked_bento.url}/ui/logout", headers=session).status_code == 200  # a page, not a sign-out
    assert httpx.get(f"{locked_bento.url}/model", headers=session).status_code == 200
    assert httpx.post(f"{locked_bento.url}/ui/logout", headers=session).status_code == 303
    for _ in range(6):  # new connections: both API workers answer some
        assert httpx.get(f"{locked_bento.url}/model", headers=session).status_code == 401


# --- M5, the logs ---------------------------------------------------------------------------------------


def test_nothing_a_client_sends_forges_or_floods_the_log(exposed: Server, example: dict[str, Any]) -> None:
    size = exposed.log.stat().st_size
    httpx.get(f"{exposed.url}/forged%0a2026-12-01T00:00:00+0000%20[INFO]%20[cli]%20fake%1b[31m")
    path = "/x\n2026-12-01T00:00:00+0000 [INFO] [cli] fake.csv"
    call(exposed.url, "predict_csv", [{"path": path, "meta": {"_type": "gradio.FileData"}}])
    big = json.dumps({**example, next(iter(example)): "x" * 758_000}).encode()
    assert (
        httpx.post(
            f"{exposed.url}/prediction", content=big, headers={"content-type": "application/vnd.a+json"}
        ).status_code
        == 400
    )
    time.sleep(1)
    written = exposed.log.read_bytes()[size:].decode(errors="replace")
    assert not re.search(r"^2026-12-01T00:00:00\+0000", written, re.MULTILINE)
    assert "\x1b" not in written and "\\n2026-12-01T00:00:00" in written
    assert "Traceback" not in written.split("A web UI call failed")[0] and len(written) < 50_000, len(written)


# --- M6, the public card ----------------------------------------------------------------------------------


def test_without_a_key_no_training_row_is_served(exposed: Server, locked_bento: Server) -> None:
    info = httpx.get(f"{exposed.url}/model").json()
    assert info["card"]["reference"] == [] and "card.reference" in info["withheld"]
    read = next(feature for feature in info["card"]["features"] if feature["kind"] != "unused")
    assert read["stats"] or read["categories"]  # statistics stay
    assert httpx.get(f"{exposed.url}/model/notebook").status_code == 403
    config = httpx.get(f"{exposed.url}/ui/config").text
    assert "notebook is not served" in config
    with_key = httpx.get(f"{locked_bento.url}/model", headers=KEY).json()
    assert len(with_key["card"]["reference"]) > 100 and with_key["withheld"] == []
    assert httpx.get(f"{locked_bento.url}/model/notebook", headers=KEY).status_code == 200
