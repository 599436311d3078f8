"""The release pipeline for real: scripts/build.sh builds an OCI image with podman and smoke-runs it; the model
file it exports imports into an empty store and serves."""

from __future__ import annotations

import json
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


def installed_version(image: str, distribution: str) -> str:
    """The version of a Python distribution inside an image, or "none"."""
    env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "podman" / "containers.conf")}
    script = (
        f"import importlib.metadata as m\ntry: print(m.version({distribution!r}))\n"
        "except m.PackageNotFoundError: print('none')"
    )
    command = ["podman", "run", "--rm", "--entrypoint", "/app/.venv/bin/python", image, "-c", script]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_boosting_example_image_carries_its_booster_and_answers_class_names(
    loan_default_tag: str, iris_image: dict[str, str], bentoml_home: Path, artifacts: Path
) -> None:
    """The XGBoost example's own image serves (build.sh's smoke run), with xgboost-cpu at the card's version."""
    loan = build_sh(loan_default_tag, artifacts / "build-sh-loan.log", "export")
    assert loan["image"].startswith("loan-default-clf-service:") and "smoke: ready after" in loan["stdout"]
    assert '"class":"defaulted"' in loan["stdout"] or '"class":"repaid"' in loan["stdout"]
    name, version = loan_default_tag.split(":")
    card = json.loads((bentoml_home / "models" / name / version / "card.json").read_text())
    assert installed_version(loan["image"].split()[0], "xgboost-cpu") == card["lineage"]["requirements"]["xgboost-cpu"]
    assert installed_version(iris_image["tag"], "xgboost-cpu") == "none"  # a plain model's image has no booster
    (artifacts / "image-sizes.txt").write_text(f"iris: {iris_image['image']}\nloan_default: {loan['image']}\n")
