"""Property-based fuzzing of the served API from its own OpenAPI document (/docs.json) with schemathesis.

Valid and invalid inputs alike (all of schemathesis's phases and checks), with a fixed seed and example
budget so CI runs the same cases every time: no answer may be a 5xx, and every answer must match what the
document says (status code, content type, body schema). Both request paths are fuzzed: the fast path and
BentoML's own handler (SERVING_FAST_PATH=false); and the churn model, whose document has enums, integers,
booleans and nullable fields.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server, serve

pytestmark = pytest.mark.slow

SEED = 20261123
EXAMPLES_PER_OPERATION = 150
FUZZED = "^/(prediction|predict_batch|feedback|model)$"
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


@pytest.fixture(scope="module")
def handler_bento(bento_tag: str, tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Server]:
    """The bento answering through BentoML's own handler instead of the fast path."""
    log = artifacts / "serve-bento-no-fast-path.log"
    with serve(
        bento_tag, cwd=tmp_path_factory.mktemp("handler"), log=log, env={"SERVING_FAST_PATH": "false"}
    ) as server:
        yield server


def fuzz(url: str, report: Path) -> tuple[int, str]:
    """Run schemathesis against url/docs.json; return its exit code and output."""
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{url}/docs.json",
            "--include-path-regex",
            FUZZED,
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            str(SEED),
            "--generation-deterministic",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=report.parent,
    )
    return result.returncode, result.stdout + result.stderr


SERVERS = {"fast path": "served_bento", "BentoML handler": "handler_bento", "churn model": "served_churn_bento"}


@pytest.mark.parametrize("path", list(SERVERS))
def test_fuzzing_finds_no_5xx_and_no_departure_from_the_document(
    path: str, request: pytest.FixtureRequest, artifacts: Path
) -> None:
    server: Server = request.getfixturevalue(SERVERS[path])
    name = path.replace(" ", "-").lower()
    code, output = fuzz(server.url, artifacts / f"schemathesis-{name}.xml")
    (artifacts / f"schemathesis-{name}.txt").write_text(output)
    assert code == 0, output[-4000:]
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", output).groups())  # type: ignore[union-attr]
    assert generated == passed >= 100, output[-2000:]
    assert "Tested: 4" in output
