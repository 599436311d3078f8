"""The release pipeline for real: scripts/build.sh builds an OCI image with podman and smoke-runs it; the model
file it exports imports into an empty store and serves."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import build_sh
from tests.e2e.server import BENTOML, serve
from tests.fakes import SETOSA

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(iris_image: dict[str, str]) -> dict[str, str]:
    """build -> export -> containerize (local Debian base) -> smoke, as a user runs it (once a session, shared)."""
    return iris_image


def test_image_serves_the_trained_model(pipeline: dict[str, str], trained_tag: str) -> None:
    assert f'"model":"{trained_tag}"' in pipeline["stdout"], "the image carries the model the store has"
    assert "smoke: ready after" in pipeline["stdout"]
    assert pipeline["image"].startswith("iris-clf-service:")  # named after the bento, named after the model


def test_image_runs_as_non_root(pipeline: dict[str, str]) -> None:
    image = pipeline["image"].split()[0]
    env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "podman" / "containers.conf")}
    uid = subprocess.run(
        ["podman", "run", "--rm", "--entrypoint", "id", image, "-u"], capture_output=True, text=True, env=env
    )
    assert uid.stdout.strip() not in ("", "0"), uid.stderr


def test_exported_model_imports_into_empty_store_and_serves(
    pipeline: dict[str, str], trained_tag: str, tmp_path: Path, artifacts: Path
) -> None:
    exported = ROOT / "dist" / f"{trained_tag.replace(':', '-')}.bentomodel"
    assert exported.is_file()
    elsewhere = {"BENTOML_HOME": str(tmp_path / "empty-home")}
    imported = subprocess.run(
        [BENTOML, "models", "import", str(exported)], capture_output=True, text=True, env={**os.environ, **elsewhere}
    )
    assert imported.returncode == 0, imported.stderr
    with serve(".", cwd=ROOT, log=artifacts / "serve-imported.log", env=elsewhere) as server:
        answer = httpx.post(f"{server.url}/prediction", json=SETOSA).json()
    assert (answer["class"], answer["model"]) == ("setosa", trained_tag)


def test_the_churn_image_serves_categories_and_blanks(churn_tag: str, artifacts: Path) -> None:
    """The same pipeline for the churn model: its own image, and the smoke run's row is its card's example."""
    churn = build_sh(churn_tag, artifacts / "build-sh-churn.log", "export")
    assert churn["image"].startswith("churn-clf-service:") and churn["bento"].startswith("churn_clf_service:")
    assert f'"model":"{churn_tag}"' in churn["stdout"] and '"contract":' in churn["stdout"]
    assert "smoke: ready after" in churn["stdout"]
