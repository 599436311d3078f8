"""A notebook that needs a package the project does not lock: its requirements.txt, trained and served for real.

`python -m train` makes (once) an environment of the project's packages plus the notebook's requirements with
uv, and runs the whole training step in it; a pin that would move a locked package is refused; the model is
served from the source tree with that environment's Python, and without it fails at once naming the package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import build_bento
from tests.e2e.server import BENTOML, free_port, private_home, serve
from tests.notebooks import LOAD_IRIS, needs_a_training_only_package, write_notebook

pytestmark = pytest.mark.slow

FIT_LIGHTGBM = """\
from lightgbm import LGBMClassifier
model = LGBMClassifier(n_estimators=30, verbose=-1, random_state=1).fit(X_train, y_train)
"""
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def train(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m train ...` as a user runs it, in the project's environment."""
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def boosted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("boosted")
    (folder / "requirements.txt").write_text("lightgbm\n")
    return write_notebook(folder, "boosted", LOAD_IRIS, FIT_LIGHTGBM)


@pytest.fixture(scope="module")
def boosted_tag(boosted: Path) -> str:
    result = train("--notebook", str(boosted), "--output-dir", str(boosted.parent / "build"))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_the_notebook_trains_in_an_environment_with_its_requirements(boosted_tag: str, bentoml_home: Path) -> None:
    name, version = boosted_tag.split(":")
    card = json.loads((bentoml_home / "models" / name / version / "card.json").read_text())
    installed = card["lineage"]["requirements"]
    assert list(installed) == ["lightgbm"] and installed["lightgbm"] == card["lineage"]["libraries"]["lightgbm"]
    assert card["class_names"] == ["setosa", "versicolor", "virginica"] and card["metrics"]["accuracy"] > 0.9


def test_the_environment_is_made_once_and_reused(boosted: Path, boosted_tag: str) -> None:
    first = subprocess.run([sys.executable, "-m", "train.environment", str(boosted)], capture_output=True, text=True)
    again = subprocess.run([sys.executable, "-m", "train.environment", str(boosted)], capture_output=True, text=True)
    assert first.returncode == again.returncode == 0
    assert first.stdout == again.stdout and ".cache/notebook-envs/" in first.stdout
    assert "are installed in" in again.stderr and "Made the notebook's environment" not in again.stderr
    plain = subprocess.run([sys.executable, "-m", "train.environment", str(ROOT / "notebooks" / "iris.ipynb")],
                           capture_output=True, text=True)  # fmt: skip
    assert plain.stdout.strip() == sys.executable


def test_a_pin_that_would_move_a_locked_package_is_refused(boosted: Path, tmp_path: Path, bentoml_home: Path) -> None:
    pinned = tmp_path / "old-numpy.txt"
    pinned.write_text("lightgbm\nnumpy==1.26.4\n")
    before = sorted((bentoml_home / "models").glob("*/*"))
    result = train("--notebook", str(boosted), "--requirements", str(pinned), "--output-dir", str(tmp_path))
    assert result.returncode == 4
    assert (
        "numpy==1.26.4" in result.stderr and "cannot be installed beside the project's locked packages" in result.stderr
    )
    assert sorted((bentoml_home / "models").glob("*/*")) == before


def test_a_training_package_the_refusal_names_can_be_declared(tmp_path: Path) -> None:
    """The refusal's own advice works: skl2onnx is locked for training, but a served model needs it declared."""
    refused = train("--notebook", str(needs_a_training_only_package(tmp_path)), "--output-dir", str(tmp_path / "a"))
    assert refused.returncode == 4 and "add `skl2onnx==" in refused.stderr
    (tmp_path / "requirements.txt").write_text("skl2onnx\n")
    declared = train("--notebook", str(tmp_path / "needs_a_training_only_package.ipynb"), "--output-dir", str(tmp_path))
    assert declared.returncode == 0, declared.stderr[-2000:]


def test_a_missing_import_says_where_the_package_goes(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path, "no_requirements", LOAD_IRIS, FIT_LIGHTGBM)
    result = train("--notebook", str(notebook), "--output-dir", str(tmp_path / "build"))
    assert result.returncode == 2
    assert "ModuleNotFoundError: No module named 'lightgbm'" in result.stderr
    assert f"goes in a requirements.txt beside the notebook ({tmp_path}/requirements.txt" in result.stderr


def test_served_from_the_source_tree_with_the_projects_python(boosted_tag: str, artifacts: Path) -> None:
    """`MODEL_TAG=… bentoml serve .` as the README says: the booster is read from the environment training made."""
    log = artifacts / "serve-boosted-source.log"
    with serve(".", cwd=ROOT, log=log, env={"MODEL_TAG": boosted_tag, "SERVING_RUNTIME": "sklearn"}) as server:
        answer = httpx.post(f"{server.url}/prediction", json=SETOSA)
        assert answer.status_code == 200, answer.text
        assert answer.json()["class"] == "setosa"


def bento_requirements(bento_tag: str) -> list[str]:
    """The pinned lines of a built bento's requirements.txt, markers and comments left out."""
    info = json.loads(subprocess.run([BENTOML, "get", bento_tag, "-o", "json"], capture_output=True, text=True).stdout)
    path = Path(os.environ["BENTOML_HOME"]) / "bentos" / info["name"] / info["version"] / "env" / "python"
    lines = (path / "requirements.txt").read_text().splitlines()
    # A set: BentoML adds its own pin (bentoml==…) again after the file's.
    return sorted({line.split(";")[0].strip() for line in lines if "==" in line and not line.startswith("#")})


def test_the_bento_carries_the_booster_and_serves_with_it_or_names_it(
    boosted_tag: str, bento_tag: str, bentoml_home: Path, boosted: Path, tmp_path: Path, artifacts: Path
) -> None:
    """The bento installs lightgbm at the card's version; a plain model's bento installs the serving packages only."""
    name, version = boosted_tag.split(":")
    card = json.loads((bentoml_home / "models" / name / version / "card.json").read_text())
    lightgbm = card["lineage"]["libraries"]["lightgbm"]
    boosted_bento = build_bento(boosted_tag)
    serving = sorted(
        line.split(";")[0].strip() for line in (ROOT / "requirements" / "serving.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )  # fmt: skip
    assert bento_requirements(bento_tag) == serving
    assert bento_requirements(boosted_bento) == sorted([*serving, f"lightgbm=={lightgbm}"])
    # Served with a Python that lacks lightgbm (and no source tree to find an environment in): one line, at once.
    env = {**os.environ, "SERVING_RUNTIME": "sklearn", "BENTOML_HOME": str(private_home(bentoml_home))}
    without = subprocess.run(
        [BENTOML, "serve", boosted_bento, "--port", str(free_port())],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    shutil.rmtree(env["BENTOML_HOME"], ignore_errors=True)
    assert without.returncode != 0
    line = f"needs the Python package lightgbm=={lightgbm}, which is not installed here: install it"
    assert line in without.stdout + without.stderr
    # With a Python that has the bento's packages (here the notebook's environment), the bento serves.
    made = subprocess.run([sys.executable, "-m", "train.environment", str(boosted)], capture_output=True, text=True)
    log = artifacts / "serve-boosted-bento.log"
    with serve(
        boosted_bento, cwd=tmp_path, log=log, env={"SERVING_RUNTIME": "sklearn"}, python=made.stdout.strip()
    ) as server:
        answer = httpx.post(f"{server.url}/prediction", json=SETOSA)
        assert answer.status_code == 200, answer.text
        assert answer.json()["class"] == "setosa"
