"""A notebook's own packages: its `requirements.txt`, installed into an environment of its own with uv.

A notebook that needs a package the project does not lock (XGBoost, LightGBM, ...) says so the way data
scientists already do, in a `requirements.txt` beside it (or `--requirements FILE`), in pip's syntax. Training
then runs in an environment made of the project's own packages (its `.venv`, through a `.pth` file: nothing
is copied or compiled again) plus those requirements, resolved by uv against the project's lock so that no
locked version moves: a requirement that would move one is refused with uv's words, naming both. The
environment is made once per (interpreter, lock, requirements) under `.cache/notebook-envs/` and reused while
none of them changes; the project's `.venv` is never touched, so `uv sync --frozen` cannot undo it.
The whole training step (the notebook's kernel, the checks, the fresh-process load) runs in it: `python -m
train` starts itself again with that environment's Python. `python -m train.environment NOTEBOOK` prints the
Python to serve the notebook's model with from the source tree (`make serve`): that environment's, or the
project's own when the notebook needs nothing more.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.environments import ENVIRONMENTS, MANIFEST, site_packages
from runtime.predictor import normalized_name
from train.errors import ModelCheckFailed

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS_FILE = "requirements.txt"
# The packages every bento of the project has (exported from uv.lock by `make lock`).
SERVING_REQUIREMENTS = ROOT / "requirements" / "serving.txt"
UV_TIMEOUT_S = 900
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


class RequirementsRefused(ModelCheckFailed):
    """The notebook's requirements cannot be installed beside the project's locked packages."""


@dataclass(frozen=True)
class NotebookEnvironment:
    """An environment made for a notebook's requirements: its folder and what it added to the project's."""

    folder: Path
    packages: dict[str, str]  # distribution -> version, beyond the project's lock

    @property
    def python(self) -> Path:
        return self.folder / "bin" / "python"


def requirements_for(notebook: Path, given: Path | None) -> Path | None:
    """The notebook's requirements file: the one given, else a requirements.txt beside the notebook, else none."""
    if given is not None:
        return given
    beside = notebook.resolve().parent / REQUIREMENTS_FILE
    return beside if beside.is_file() else None


def current() -> NotebookEnvironment | None:
    """The notebook environment this process runs in, if it is one."""
    manifest = Path(sys.prefix) / MANIFEST
    if not manifest.is_file():
        return None
    return NotebookEnvironment(Path(sys.prefix), json.loads(manifest.read_text())["packages"])


def prepare(requirements: Path) -> NotebookEnvironment:
    """The environment for these requirements: reused when it exists, else made (RequirementsRefused if it cannot)."""
    uv = _uv()
    lock = _run([uv, "export", "--project", str(ROOT), "--frozen", "--no-hashes", "--no-emit-project", "-q"]).stdout
    wanted = requirements.read_text()
    key = hashlib.sha256("\0".join([sys.version, str(ROOT), lock, wanted]).encode()).hexdigest()[:16]
    folder = ENVIRONMENTS / key
    ENVIRONMENTS.mkdir(parents=True, exist_ok=True)
    # One maker at a time per environment: a second training waits, then finds it made.
    with (ENVIRONMENTS / f"{key}.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if not (folder / MANIFEST).is_file():
            try:
                _make(uv, folder, requirements, lock)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)  # never a half-made environment left to find
                raise
        else:
            logger.info("The notebook's requirements (%s) are installed in %s", requirements, folder)
    return NotebookEnvironment(folder, json.loads((folder / MANIFEST).read_text())["packages"])


def _make(uv: str, folder: Path, requirements: Path, lock: str) -> None:
    """Resolve the requirements against the lock, then make the overlay and install what the project lacks."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="notebook-env-") as scratch:
        constraints = Path(scratch) / "project-lock.txt"
        constraints.write_text(lock)
        pinned = _resolve(uv, requirements, constraints)
    in_venv = {normalized_name(name) for name in requirement_names(lock)}
    served = {normalized_name(name) for name in requirement_names(SERVING_REQUIREMENTS.read_text())}
    shutil.rmtree(folder, ignore_errors=True)
    _run([uv, "venv", "-q", "--python", sys.executable, str(folder)])
    site = site_packages(folder)
    # The project's own packages, after the environment's own: its .venv is read, never changed.
    (site / "_project_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    missing = [line for line in pinned if normalized_name(_name(line)) not in in_venv]
    if missing:
        python = str(folder / "bin" / "python")
        _run([uv, "pip", "install", "-q", "--no-deps", "--compile-bytecode", "--python", python, *missing])
    # What a served model needs beyond the serving packages: installed here, or already in .venv (a training
    # package such as matplotlib, which a bento lacks).
    packages = {_name(line): _version(line) for line in pinned if normalized_name(_name(line)) not in served}
    (folder / MANIFEST).write_text(json.dumps({"requirements": requirements.read_text(), "packages": packages}))
    logger.info(
        "Made the notebook's environment in %.1f s: %s beside the project's packages, in %s",
        time.monotonic() - started,
        ", ".join(missing) or "nothing new",
        folder,
    )


def run_inside(environment: NotebookEnvironment, argv: list[str] | None) -> int:
    """`python -m train` run again with the environment's Python: in place of this process from the command line.

    In place (exec), so a signal, Ctrl+C and the exit status reach the one training process as they would have;
    with `argv` given (called from Python), as a child whose exit code is returned.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONNOUSERSITE": "1"}  # no package from ~/.local either
    python = str(environment.python)
    if argv is None:
        os.execve(python, [python, "-m", "train", *sys.argv[1:]], env)
    code = subprocess.run([python, "-m", "train", *argv], env=env, check=False).returncode
    return 128 - code if code < 0 else code  # killed by a signal: the shell's 128 + its number


def _resolve(uv: str, requirements: Path, constraints: Path) -> list[str]:
    """The requirements and what they need, pinned, with every locked package at its locked version."""
    result = subprocess.run(
        [uv, "pip", "compile", "-q", "--no-header", "--no-annotate", "--python", sys.executable,
         str(requirements), "--constraint", str(constraints)],
        capture_output=True, text=True, check=False, timeout=UV_TIMEOUT_S,
    )  # fmt: skip
    if result.returncode != 0:
        moved = _locked_pins_moved(requirements.read_text(), constraints.read_text())
        reason = "; ".join(moved) or " ".join(line.strip() for line in result.stderr.splitlines() if line.strip())
        raise RequirementsRefused(
            f"{requirements} cannot be installed beside the project's locked packages: {reason}. "
            "Loosen or drop that pin in the notebook's requirements (the project's versions are in uv.lock)."
        )
    return [line.strip() for line in result.stdout.splitlines() if line.strip() and not line.startswith("#")]


def _locked_pins_moved(wanted: str, lock: str) -> list[str]:
    """The notebook's own lines that pin a locked package to a version its lock does not hold, each named."""
    from packaging.requirements import InvalidRequirement, Requirement

    locked = {}
    for line in lock.splitlines():
        name, _, version = line.strip().partition("==")
        if version:
            locked[normalized_name(name)] = version.split(";")[0].strip()
    moved = []
    for line in wanted.splitlines():
        try:
            requirement = Requirement(line.split("#")[0].strip())
        except InvalidRequirement:
            continue
        held = locked.get(normalized_name(requirement.name))
        if held is not None and requirement.specifier and held not in requirement.specifier:
            moved.append(f"it asks for {requirement}, the project locks {requirement.name} {held}")
    return moved


def _uv() -> str:
    """uv: the project's own copy (make setup puts it in .cache/uv), else one on PATH."""
    own = ROOT / ".cache" / "uv" / "bin" / "uv"
    found = str(own) if own.is_file() else shutil.which("uv")
    if found is None:
        raise RequirementsRefused("the notebook has requirements, and installing them needs uv: run `make setup`.")
    return found


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a uv command; a failure is refused with uv's own message."""
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=UV_TIMEOUT_S,
                            env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})  # fmt: skip
    if result.returncode != 0:
        raise RequirementsRefused(f"`{' '.join(command[1:4])} …` failed: {result.stderr.strip()[-800:]}")
    return result


def _name(line: str) -> str:
    """The package of one pinned line ("name==1.0"); the whole line when it names none (a URL, a path)."""
    names = requirement_names(line)
    return names[0] if names else line.strip()


def _version(line: str) -> str:
    """The version of one pinned line ("name==1.0" -> "1.0"); "" for one that pins none (a URL, a path)."""
    return line.partition("==")[2].split(";")[0].strip()


def requirement_names(text: str) -> list[str]:
    """The package names of requirement lines ("name==1.0 ; marker" -> "name")."""
    names = []
    for line in text.splitlines():
        match = _NAME.match(line.strip())
        if match and not line.lstrip().startswith(("#", "-")):
            names.append(match.group(1))
    return names


def main(argv: list[str] | None = None) -> int:
    """Print the Python that has the notebook's packages (made if need be): `$(... NOTEBOOK) -m bentoml serve`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        logger.error("usage: python -m train.environment NOTEBOOK")
        return 2
    notebook = Path(args[0])
    if not notebook.is_file():
        logger.error("%s does not exist", notebook)
        return 2
    requirements = requirements_for(notebook, None)
    try:
        python = prepare(requirements).python if requirements is not None else Path(sys.executable)
    except ModelCheckFailed as error:
        logger.error("%s", error)
        return error.exit_code
    sys.stdout.write(f"{python}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
