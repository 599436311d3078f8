"""Train from the notebook and build the bento into a BENTOML_HOME of the caller's, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def prepare(home: Path) -> tuple[str, Path]:
    """Train from the notebook and build the bento; return the bento tag and the model's joblib file."""
    env = {**os.environ, "BENTOML_HOME": str(home)}
    model_tag = _run([PYTHON, "-m", "train", "--output-dir", str(home / "build")], env).strip().splitlines()[-1]
    build = _run([str(BIN / "bentoml"), "build", "--output", "tag"], env)
    bento_tag = build.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = model_tag.split(":")
    return bento_tag, home / "models" / name / version / "model.joblib"


def _run(command: list[str], env: dict[str, str]) -> str:
    """Run a set-up command from the project root; fail loudly with its output."""
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
