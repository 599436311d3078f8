"""End-to-end fixtures: a bento built from this checkout, served for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.conftest import ROOT
from tests.e2e.server import BENTOML, Server, serve, wait_for_ui

ARTIFACTS = ROOT / "test-artifacts"
# The API key of the locked-down server; 25 characters, over the 16 the settings require.
API_KEY = "test-key-0123456789abcdef"
ALLOWED_ORIGIN = "https://app.example"
CHROMIUM = "/usr/bin/chromium"
# Headless, and none of the background networking this closed network would refuse.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# How long a browser assertion waits for the page: Gradio's first render of a page took over Playwright's default
# 5 s on a loaded 2-core CI machine (the page still showed "Loading..."), and pages get 20 s for every action.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where end-to-end tests leave logs and screenshots for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def build_bento(model_tag: str) -> str:
    """`MODEL_TAG=<model_tag> bentoml build` of this checkout, as a user would run it; the bento's tag."""
    result = subprocess.run(
        [BENTOML, "build", "--output", "tag"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MODEL_TAG": model_tag},
    )
    assert result.returncode == 0, result.stderr
    tag = result.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    info = json.loads(subprocess.run([BENTOML, "get", tag, "-o", "json"], capture_output=True, text=True).stdout)
    assert [m["tag"] for m in info["services"][0]["models"]] == [model_tag]
    return tag


@pytest.fixture(scope="session")
def bento_tag(trained_tag: str) -> str:
    """The iris model's bento."""
    return build_bento(trained_tag)


@pytest.fixture(scope="session")
def churn_bento_tag(churn_tag: str) -> str:
    """The churn model's bento: named after its model."""
    tag = build_bento(churn_tag)
    assert tag.startswith(f"{churn_tag.split(':')[0]}_service:")
    return tag


@pytest.fixture(scope="session")
def served_bento(bento_tag: str, tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Server]:
    """The built bento served with `bentoml serve <tag>` from outside the source tree."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    with serve(bento_tag, cwd=elsewhere, log=artifacts / "serve-bento.log") as server:
        wait_for_ui(server.url)  # the UI's own worker starts after the API's
        yield server


@pytest.fixture(scope="session")
def served_churn_bento(
    churn_bento_tag: str, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[Server]:
    """The churn bento served with no MODEL_TAG set: it serves the model it was built with."""
    elsewhere = tmp_path_factory.mktemp("churn-elsewhere")
    with serve(churn_bento_tag, cwd=elsewhere, log=artifacts / "serve-churn-bento.log") as server:
        wait_for_ui(server.url)
        yield server


@pytest.fixture(scope="session")
def locked_bento(bento_tag: str, tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Server]:
    """The built bento with an API key, CORS for one origin, and JSON log lines."""
    env = {"SERVING_API_KEY": API_KEY, "SERVING_CORS_ORIGINS": ALLOWED_ORIGIN, "SERVING_LOG_FORMAT": "json"}
    log = artifacts / "serve-locked-bento.log"
    with serve(bento_tag, cwd=tmp_path_factory.mktemp("locked"), log=log, env=env) as server:
        wait_for_ui(server.url, headers={"Authorization": f"Bearer {API_KEY}"})
        yield server


def build_sh(model_tag: str, log: Path, *skip: str) -> dict[str, str]:
    """scripts/build.sh with the test and train stages skipped, for a model already in the store: its summary."""
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: `make test` installs it (scripts/system-deps.sh)")
    stages = [arg for stage in ("test", "train", *skip) for arg in ("--skip", stage)]
    started = time.monotonic()
    result = subprocess.run(
        [str(ROOT / "scripts" / "build.sh"), *stages, "--local-base"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "SMOKE_PORT": "3911", "MODEL_TAG": model_tag},
    )
    log.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = dict(
        line.strip().split(":", 1) for line in result.stdout.split("Summary", 1)[1].splitlines() if ":" in line
    )
    seconds = f"{time.monotonic() - started:.0f}"
    return {key.strip(): value.strip() for key, value in summary.items()} | {
        "stdout": result.stdout,
        "seconds": seconds,
    }


@pytest.fixture(scope="session")
def iris_image(trained_tag: str, artifacts: Path) -> dict[str, str]:
    """The iris model's image, built once a session by scripts/build.sh --local-base and shared by every test that
    runs it (the pipeline, SageMaker's way, podman kube play): build.sh's summary, plus "tag" and "seconds"."""
    summary = build_sh(trained_tag, artifacts / "build-sh.log")
    return summary | {"tag": summary["image"].split()[0]}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium, driven by Playwright."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (scripts/system-deps.sh)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
