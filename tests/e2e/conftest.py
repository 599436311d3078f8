"""End-to-end fixtures: a bento built from this checkout, served for real."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.server import BENTOML, Server, serve

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where end-to-end tests leave logs and screenshots for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def bento_tag(trained_tag: str) -> str:
    """`bentoml build` of this checkout, as a user would run it."""
    result = subprocess.run(
        [BENTOML, "build", "--output", "tag"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    tag = result.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    info = json.loads(subprocess.run([BENTOML, "get", tag, "-o", "json"], capture_output=True, text=True).stdout)
    assert [m["tag"] for m in info["services"][0]["models"]] == [trained_tag]
    return tag


@pytest.fixture(scope="session")
def served_bento(bento_tag: str, tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Server]:
    """The built bento served with `bentoml serve <tag>` from outside the source tree."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    with serve(bento_tag, cwd=elsewhere, log=artifacts / "serve-bento.log") as server:
        yield server
