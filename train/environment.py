"""A notebook's own packages: its `requirements.txt`, installed into an environment of its own with uv.

A notebook that needs a package the project does not lock (XGBoost, LightGBM, ...) says so the way data
scientists already do, in a `requirements.txt` beside it (or `--requirements FILE`), in pip's syntax. Training
then runs in an environment made of the project's own packages (its `.venv`, through a `.pth` file: nothing
is copied or compiled again) plus those requirements, resolved by uv against the project's lock so that no
locked version moves: a requirement that would move one is refused with uv's words, naming both. The
environment is made once per (Python, `uv.lock` and `pyproject.toml`, requirements and the files they include
with `-r`/`-c`) under `.cache/notebook-envs/` and reused while none of them changes; the key is a hash of those
files' bytes, so a reuse runs no uv at all. The project's `.venv` is never touched, so `uv sync --frozen`
cannot undo it. The whole training step (the notebook's kernel, the checks, the fresh-process load) runs in it:
`python -m train` starts itself again with that environment's Python. `python -m train.environment NOTEBOOK`
prints the Python to serve the notebook's model with from the source tree (`make serve`): that environment's,
or the project's own when the notebook needs nothing more.

What a bento of the model could install the same way elsewhere is accepted, and recorded in the environment's
manifest: each package by its distribution name and installed version; a direct URL (`name @ https://…`, a
`git+https://…` one resolved by uv to its commit) with that URL beside it (`urls`); and the index options
(`--index-url`, `--extra-index-url`, `--find-links`, `--no-index`), which the install is given too
(`index_options`). A local path or an editable install (`./wheels/x.whl`, `-e ./mypkg`, `name @ file://…`) is
refused before uv runs, saying why: it names a folder of this machine, which a bento built or served elsewhere
does not have (and `-e` follows whatever that folder holds later). A mirror in `UV_INDEX_URL` is uv's own
setting, which nothing here overrides; pip's `PIP_INDEX_URL` is given to uv as that when uv has none.
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
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from runtime.environments import ENVIRONMENTS, MANIFEST, normalized_name, site_packages
from train.errors import ModelCheckFailed

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS_FILE = "requirements.txt"
# The packages every bento of the project has (exported from uv.lock by `make lock`).
SERVING_REQUIREMENTS = ROOT / "requirements" / "serving.txt"
# What `uv export` reads: their bytes are the lock's part of an environment's key.
LOCK_FILES = (ROOT / "uv.lock", ROOT / "pyproject.toml")
UV_TIMEOUT_S = 900
# An option line of pip's requirements syntax: "--find-links ./wheels", "--index-url=URL", "-r other.txt".
_OPTION = re.compile(r"(--[\w-]+|-\w)[=\s]*(.*)")
_LONG = {"-i": "--index-url", "-f": "--find-links", "-r": "--requirement", "-c": "--constraint", "-e": "--editable"}
_INDEX_OPTIONS = ("--index-url", "--extra-index-url", "--find-links", "--no-index")
_INCLUDES = ("--requirement", "--constraint")
_URL = re.compile(r"([A-Za-z][\w+.-]*)://")  # its scheme: https, git+https, file


class RequirementsRefused(ModelCheckFailed):
    """The notebook's requirements cannot be installed beside the project's locked packages."""


@dataclass(frozen=True)
class NotebookEnvironment:
    """An environment made for a notebook's requirements: its folder and what it added to the project's."""

    folder: Path
    packages: dict[str, str]  # distribution -> version, beyond the project's lock
    urls: dict[str, str] = field(default_factory=dict)  # distribution -> the URL it was installed from
    index_options: list[str] = field(default_factory=list)  # --index-url, --find-links, ... as the requirements say

    @classmethod
    def read(cls, folder: Path) -> NotebookEnvironment:
        """A finished environment, from its manifest."""
        manifest = json.loads((folder / MANIFEST).read_text())
        return cls(folder, manifest["packages"], manifest.get("urls", {}), manifest.get("index_options", []))

    @property
    def python(self) -> Path:
        return self.folder / "bin" / "python"


@dataclass(frozen=True)
class Line:
    """One logical line of a requirements file (continuations joined, comment dropped) and the file it is in."""

    text: str
    file: Path


def without_credentials(text: str) -> str:
    """A URL, or an option naming one, with any user name and password taken out: the card is shown to anyone."""
    return re.sub(r"(://)[^/@\s]+@", r"\1", text)


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
    return NotebookEnvironment.read(Path(sys.prefix))


def prepare(requirements: Path) -> NotebookEnvironment:
    """The environment for these requirements: reused when it exists, else made (RequirementsRefused if it cannot)."""
    files = _files_read(requirements)
    lines = [Line(text, file) for file in files for text in _logical_lines(file.read_text())]
    _refuse_local(lines)
    key = _key(files)
    folder = ENVIRONMENTS / key
    ENVIRONMENTS.mkdir(parents=True, exist_ok=True)
    # One maker at a time per environment: a second training waits, then finds it made.
    with (ENVIRONMENTS / f"{key}.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if not (folder / MANIFEST).is_file():
            try:
                _make(_uv(), folder, requirements, lines)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)  # never a half-made environment left to find
                raise
        else:
            logger.info("The notebook's requirements (%s) are installed in %s", requirements, folder)
    return NotebookEnvironment.read(folder)


def _key(files: list[Path]) -> str:
    """An environment's name, known without uv: a hash of the Python version, the lock's files and the requirements.

    Bytes only, no paths: the same lock and requirements give the same key on every machine.
    """
    digest = hashlib.sha256(sys.version.encode())
    for file in (*LOCK_FILES, *files):
        digest.update(b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def _make(uv: str, folder: Path, requirements: Path, lines: list[Line]) -> None:
    """Resolve the requirements against the lock, then make the overlay and install what the project lacks."""
    started = time.monotonic()
    lock = _run([uv, "export", "--project", str(ROOT), "--frozen", "--no-hashes", "--no-emit-project", "-q"]).stdout
    options = _index_options(lines)
    with tempfile.TemporaryDirectory(prefix="notebook-env-") as scratch:
        constraints = Path(scratch) / "project-lock.txt"
        constraints.write_text(lock)
        pinned = _resolve(uv, requirements, constraints, lines)
        in_venv = {normalized_name(held.name) for held in _requirements_in(lock) if _applies(held)}
        missing = [line for line, wanted in pinned if normalized_name(wanted.name) not in in_venv]
        # The notebook's index options reach the install as they reached the resolution: in a requirements file.
        install = Path(scratch) / "install.txt"
        install.write_text("".join(f"{line}\n" for line in [*options, *missing]))
        site = _overlay(uv, folder, install if missing else None)
    # What a served model needs beyond the serving packages: installed here, or already in .venv (a training
    # package such as matplotlib, which a bento lacks).
    served = {normalized_name(name) for name in requirement_names(SERVING_REQUIREMENTS.read_text())}
    added = [wanted for _, wanted in pinned if normalized_name(wanted.name) not in served]
    manifest = {
        "requirements": requirements.read_text(),
        "packages": {wanted.name: _installed_version(site, wanted.name) for wanted in added},
        "urls": {wanted.name: wanted.url for wanted in added if wanted.url},
        "index_options": options,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest))
    logger.info(
        "Made the notebook's environment in %.1f s: %s beside the project's packages, in %s",
        time.monotonic() - started,
        ", ".join(missing) or "nothing new",
        folder,
    )


def _overlay(uv: str, folder: Path, install: Path | None) -> Path:
    """A new venv reading the project's packages after its own, with `install` (a requirements file) in it."""
    shutil.rmtree(folder, ignore_errors=True)
    _run([uv, "venv", "-q", "--python", sys.executable, str(folder)])
    site = site_packages(folder)
    # The project's own packages, after the environment's own: its .venv is read, never changed.
    (site / "_project_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    if install is not None:
        python = str(folder / "bin" / "python")
        _run([uv, "pip", "install", "-q", "--no-deps", "--compile-bytecode", "--python", python, "-r", str(install)])
    return site


def run_inside(environment: NotebookEnvironment, argv: list[str] | None) -> int:
    """`python -m train` run again with the environment's Python: in place of this process from the command line.

    In place (exec), so a signal, Ctrl+C and the exit status reach the one training process as they would have;
    with `argv` given (called from Python), as a child whose exit code is returned.
    """
    path = os.pathsep.join(part for part in (str(ROOT), os.environ.get("PYTHONPATH", "")) if part)
    env = {**os.environ, "PYTHONPATH": path, "PYTHONNOUSERSITE": "1"}  # no package from ~/.local either
    python = str(environment.python)
    if argv is None:
        os.execve(python, [python, "-m", "train", *sys.argv[1:]], env)
    code = subprocess.run([python, "-m", "train", *argv], env=env, check=False).returncode
    return 128 - code if code < 0 else code  # killed by a signal: the shell's 128 + its number


def _resolve(uv: str, requirements: Path, constraints: Path, lines: list[Line]) -> list[tuple[str, Requirement]]:
    """The requirements and what they need, pinned (each line with its reading), every locked one at its version."""
    result = subprocess.run(
        [uv, "pip", "compile", "-q", "--no-header", "--no-annotate", "--python", sys.executable,
         str(requirements), "--constraint", str(constraints)],
        capture_output=True, text=True, check=False, timeout=UV_TIMEOUT_S, env=_uv_env(),
    )  # fmt: skip
    if result.returncode != 0:
        moved = _locked_pins_moved("\n".join(line.text for line in lines), constraints.read_text())
        reason = "; ".join(moved) or " ".join(line.strip() for line in result.stderr.splitlines() if line.strip())
        raise RequirementsRefused(
            f"{requirements} cannot be installed beside the project's locked packages: {reason}. "
            "Loosen or drop that pin in the notebook's requirements (the project's versions are in uv.lock)."
        )
    pinned = []
    for line in _logical_lines(result.stdout):
        wanted = requirement(line)
        if wanted is None:  # uv keeps a line it cannot name as it was; _refuse_local let none of those through
            raise RequirementsRefused(f"{requirements}: uv resolved it to `{line}`, which names no distribution.")
        pinned.append((line, wanted))
    return pinned


def _locked_pins_moved(wanted: str, lock: str) -> list[str]:
    """The notebook's own lines that pin a locked package to a version its lock does not hold, each named."""
    pins = {normalized_name(held.name): _pinned_version(held) for held in _requirements_in(lock)}
    locked = {name: version for name, version in pins.items() if version is not None}
    moved = []
    for asked in _requirements_in(wanted):
        held = locked.get(normalized_name(asked.name))
        if held is not None and asked.specifier and held not in asked.specifier:
            moved.append(f"it asks for {asked}, the project locks {asked.name} {held}")
    return moved


def _refuse_local(lines: list[Line]) -> None:
    """Refuse a local path or an editable install: a bento built or served elsewhere could not install it so."""
    for line in lines:
        option, _ = _option(line.text)
        if option == "--editable" or (option is None and _is_local(line.text)):
            what = "an editable install, which follows whatever its folder holds later" if option else "a local path"
            raise RequirementsRefused(
                f"{line.file}: `{line.text}` is {what}: a bento of the model, built or served on another machine, "
                "could not install it the same way. Publish the package to an index and require it by "
                "name and version (`--extra-index-url URL` then `name==1.0`), or require it by a URL anyone can "
                "fetch: `name @ https://…/name-1.0-py3-none-any.whl` or `name @ git+https://…@<commit>`."
            )


def _is_local(line: str) -> bool:
    """A requirement line that installs from this machine: a path (`./x.whl`, `../pkg`) or a `file:` URL."""
    wanted = requirement(line)
    if wanted is not None:
        return wanted.url is not None and _is_local_url(wanted.url)
    if _URL.match(line) or line.startswith("file:"):
        return _is_local_url(line)
    return line.startswith((".", "/", "~")) or "/" in line or line.endswith((".whl", ".tar.gz", ".zip"))


def _is_local_url(url: str) -> bool:
    """A URL of this machine's files (`file:///…`, `git+file://…`, `file:./x`), or no URL but a path."""
    match = _URL.match(url)
    return match is None or match.group(1).split("+")[-1] == "file"


def _index_options(lines: list[Line]) -> list[str]:
    """The index options the requirements give (long form, a local folder made absolute), in their order."""
    options = []
    for line in lines:
        option, value = _option(line.text)
        if option in _INDEX_OPTIONS:
            if value and not _URL.match(value):
                value = str((line.file.parent / value).resolve())  # uv reads it from the requirements file's folder
            options.append(f"{option} {value}".strip())
    return options


def _files_read(requirements: Path) -> list[Path]:
    """The requirements file, then each file it includes with `-r` or `-c`, and theirs, each once."""
    files: list[Path] = []
    pending: list[tuple[Path, Path | None]] = [(requirements.resolve(), None)]
    while pending:
        file, included_by = pending.pop(0)
        if file in files:
            continue
        if not file.is_file():
            raise RequirementsRefused(f"{included_by or 'The notebook'} includes {file}, which does not exist.")
        files.append(file)
        for text in _logical_lines(file.read_text()):
            option, value = _option(text)
            if option in _INCLUDES and not _URL.match(value):
                pending.append(((file.parent / value).resolve(), file))
    return files


def _logical_lines(text: str) -> list[str]:
    """The lines of requirements text as pip reads them: continuations joined, comments and blanks dropped."""
    joined = re.sub(r"\\\r?\n", " ", text)
    stripped = (re.sub(r"(^|\s)#.*", "", line).strip() for line in joined.splitlines())
    return [line for line in stripped if line]


def requirement(line: str) -> Requirement | None:
    """A logical line as a PEP 508 requirement (`name[extra]==1.0 ; marker`, `name @ url`); None for an option, a
    bare path or a bare URL."""
    if line.startswith("-"):
        return None
    try:
        return Requirement(line)
    except InvalidRequirement:
        return None


def _requirements_in(text: str) -> list[Requirement]:
    """The requirements of requirements text, in order (its options, paths and bare URLs left out)."""
    return [wanted for line in _logical_lines(text) if (wanted := requirement(line)) is not None]


def requirement_names(text: str) -> list[str]:
    """The package names of requirement lines ("name==1.0 ; marker" -> "name")."""
    return [wanted.name for wanted in _requirements_in(text)]


def _applies(wanted: Requirement) -> bool:
    """The requirement is for this Python and platform (no marker, or one that holds here)."""
    return wanted.marker is None or wanted.marker.evaluate()


def _pinned_version(wanted: Requirement) -> str | None:
    """The version a requirement pins exactly ("name==1.0" -> "1.0"); None for a range or a URL."""
    specifiers = list(wanted.specifier)
    if len(specifiers) == 1 and specifiers[0].operator in ("==", "==="):
        return specifiers[0].version
    return None


def _option(line: str) -> tuple[str | None, str]:
    """An option line's option, in its long form, and value ("-f ./wheels" -> ("--find-links", "./wheels"))."""
    match = _OPTION.fullmatch(line) if line.startswith("-") else None
    if match is None:
        return None, ""
    return _LONG.get(match.group(1), match.group(1)), match.group(2).strip()


def _installed_version(site: Path, name: str) -> str:
    """A distribution's version as the environment sees it: in its own site-packages first, then the project's."""
    found = metadata.distributions(name=name, path=[str(site), sysconfig.get_paths()["purelib"]])
    return next(iter(found)).version


def _uv() -> str:
    """uv: the project's own copy (make setup puts it in .cache/uv), else one on PATH."""
    own = ROOT / ".cache" / "uv" / "bin" / "uv"
    found = str(own) if own.is_file() else shutil.which("uv")
    if found is None:
        raise RequirementsRefused("the notebook has requirements, and installing them needs uv: run `make setup`.")
    return found


def _uv_env() -> dict[str, str]:
    """uv's environment: this one (UV_INDEX_URL included), with pip's PIP_INDEX_URL as uv's when uv has none."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    if env.get("PIP_INDEX_URL") and not {"UV_INDEX_URL", "UV_DEFAULT_INDEX"} & env.keys():
        env["UV_INDEX_URL"] = env["PIP_INDEX_URL"]
    return env


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a uv command; a failure is refused with uv's own message."""
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=UV_TIMEOUT_S,
                            env=_uv_env())  # fmt: skip
    if result.returncode != 0:
        raise RequirementsRefused(f"`{' '.join(command[1:4])} …` failed: {result.stderr.strip()[-800:]}")
    return result


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
