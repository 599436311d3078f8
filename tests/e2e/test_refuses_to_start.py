"""A service with no usable model refuses to start, with one line that says what is wrong and how to fix it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from modelcard.files import ONNX_FILE
from tests.conftest import ROOT
from tests.e2e.server import BENTOML

pytestmark = pytest.mark.slow


def serve_output(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BENTOML, "serve", ".", "--port", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_unknown_model_tag(trained_tag: str) -> None:
    result = serve_output({"MODEL_TAG": "iris_clf:doesnotexist"})
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert lines[-1].startswith(
        "The model service cannot start: Model iris_clf:doesnotexist is not in the BentoML model store"
    )
    assert "Traceback" not in result.stderr


def test_corrupt_model_file(trained_tag: str, bentoml_home: Path, tmp_path: Path) -> None:
    name, version = trained_tag.split(":")
    home = tmp_path / "home"
    shutil.copytree(bentoml_home / "models" / name / version, home / "models" / name / version)
    (home / "models" / name / version / ONNX_FILE).write_bytes(b"not an onnx model")
    result = serve_output({"BENTOML_HOME": str(home), "MODEL_TAG": trained_tag})
    assert result.returncode != 0
    last = (result.stdout + result.stderr).strip().splitlines()[-1]
    assert last.startswith(f"The model service cannot start: Model {trained_tag} in ")
    assert "cannot be loaded" in last and "python -m train" in last
    assert "Traceback" not in result.stderr
