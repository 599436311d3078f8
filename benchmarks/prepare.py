"""Train a notebook and build its bento into a BENTOML_HOME of the caller's, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelcard.files import SKLEARN_FILE, stored_file

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


@dataclass(frozen=True)
class Prepared:
    """A trained model and its bento: what the benchmark serves and what it sends."""

    bento_tag: str
    model_tag: str
    model_file: Path  # the pickle the Flask baseline loads
    example: dict[str, Any]  # the card's first example row, without its label
    python: str  # the interpreter with the model's packages: the notebook's environment's, or the project's own


def prepare(home: Path, notebook: Path = ROOT / "notebooks" / "iris.ipynb") -> Prepared:
    """Train the notebook and build a bento of its model."""
    env = {**os.environ, "BENTOML_HOME": str(home)}
    train = [PYTHON, "-m", "train", "--notebook", str(notebook), "--output-dir", str(home / "build")]
    model_tag = _run(train, env).strip().splitlines()[-1]
    build = _run([str(BIN / "bentoml"), "build", "--output", "tag"], {**env, "MODEL_TAG": model_tag})
    bento_tag = build.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = model_tag.split(":")
    model_dir = home / "models" / name / version
    card = json.loads((model_dir / "card.json").read_text())
    example = {k: v for k, v in card["examples"][0].items() if k != "label"}
    # A booster's model needs its package in every server (the baseline unpickles it): the environment's Python.
    python = _run([PYTHON, "-m", "train.environment", str(notebook)], env).strip()
    return Prepared(bento_tag, model_tag, stored_file(model_dir, SKLEARN_FILE), example, python)


def _run(command: list[str], env: dict[str, str]) -> str:
    """Run a set-up command from the project root; fail loudly with its output."""
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
