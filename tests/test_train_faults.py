"""Training stopped halfway, and two trainings at once: the store never holds a partial or broken model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT
from tests.notebooks import FIT_FOREST, LOAD_IRIS, good, write_notebook

pytestmark = pytest.mark.slow

SLEEPY = """\
from pathlib import Path
Path("cell-started").write_text("yes")
import time
time.sleep(300)
"""


def _train(home: Path, notebook: Path, output: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "train", "--notebook", str(notebook), "--name", "iris_clf", "--output-dir", str(output)],
        cwd=ROOT,
        env={**os.environ, "BENTOML_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stored_versions(home: Path) -> list[str]:
    models = home / "models" / "iris_clf"
    return sorted(p.name for p in models.iterdir() if p.is_dir()) if models.is_dir() else []


def test_sigterm_mid_notebook_saves_nothing_and_stops_the_kernel(tmp_path: Path) -> None:
    home = tmp_path / "home"
    notebook = write_notebook(tmp_path, "sleepy", LOAD_IRIS, FIT_FOREST, SLEEPY)
    run = _train(home, notebook, tmp_path / "build")
    marker = tmp_path / "cell-started"
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "the notebook never reached its long cell"
        time.sleep(0.1)
    kernels = [p for p in psutil.Process(run.pid).children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
    assert kernels, "no kernel process found under the training run"

    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)

    assert run.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in stderr and "nothing was saved" in stderr
    gone, alive = psutil.wait_procs(kernels, timeout=10)
    assert alive == [], f"kernel still running: {alive}"
    assert _stored_versions(home) == []
    # The next run works as if nothing had happened.
    again = _train(home, good(tmp_path), tmp_path / "build")
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert _stored_versions(home) == [stdout.strip().splitlines()[-1].split(":")[1]]


def test_two_trainings_at_once_both_store_a_whole_model(tmp_path: Path) -> None:
    home = tmp_path / "home"
    notebook = good(tmp_path)
    runs = [_train(home, notebook, tmp_path / f"build-{index}") for index in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    tags = [stdout.strip().splitlines()[-1] for stdout, _ in outputs]
    assert len(set(tags)) == 2
    assert _stored_versions(home) == sorted(tag.split(":")[1] for tag in tags)
    # Each one loads and predicts: neither run wrote into the other's model.
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, bentoml\n"
            "from runtime.predictor import load_predictor\n"
            "from tests.fakes import table_of\n"
            "for tag in sys.argv[1:]:\n"
            "    p = load_predictor(bentoml.models.get(tag), 'auto')\n"
            "    row = dict(sepal_length=5.1, sepal_width=3.5, petal_length=1.4, petal_width=0.2)\n"
            "    assert p.predict(table_of(p.card.features, [row]))[0].class_name == 'setosa', tag\n"
            "print(bentoml.models.get('iris_clf:latest').tag)\n",
            *tags,
        ],
        cwd=ROOT,
        env={**os.environ, "BENTOML_HOME": str(home)},
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() in tags
