"""A notebook's requirements: finding them, reading their lines, and the environment uv makes for them (small real
requirement files and real uv here; LightGBM and a whole training: tests/e2e/test_notebook_requirements.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from runtime.environments import MANIFEST
from runtime.predictor import normalized_name
from train import environment
from train.environment import (
    ROOT,
    NotebookEnvironment,
    RequirementsRefused,
    _key,
    _locked_pins_moved,
    current,
    prepare,
    requirement_names,
    requirements_for,
    run_inside,
)
from train.notebook_code import check_packages_served

# A small pure-Python wheel on PyPI, required by its URL.
TERMCOLOR = (
    "https://files.pythonhosted.org/packages/33/d1/8bb87d21e9aeb323cc03034f5eaf2c8f69841e40e4853c2627edf8111ed3/"
    "termcolor-3.3.0-py3-none-any.whl"
)


@pytest.fixture
def environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where this test's environments are made: its own folder, not the project's .cache."""
    folder = tmp_path / "notebook-envs"
    monkeypatch.setattr(environment, "ENVIRONMENTS", folder)
    return folder


def requirements(folder: Path, text: str, name: str = "requirements.txt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def manifest(made: NotebookEnvironment) -> dict[str, object]:
    recorded: dict[str, object] = json.loads((made.folder / MANIFEST).read_text())
    return recorded


def probe_wheel(folder: Path) -> Path:
    """A wheel of `n2p-probe` 0.1.0, a distribution no index has."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "n2p_probe-0.1.0-py3-none-any.whl"
    info = "n2p_probe-0.1.0.dist-info"
    files = {
        "n2p_probe/__init__.py": "VALUE = 1\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: n2p-probe\nVersion: 0.1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{info}/RECORD", "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"]))
    return wheel


def test_the_requirements_beside_the_notebook_or_the_given_file(tmp_path: Path) -> None:
    notebook = tmp_path / "model.ipynb"
    notebook.write_text("{}")
    assert requirements_for(notebook, None) is None
    (tmp_path / "requirements.txt").write_text("lightgbm\n")
    assert requirements_for(notebook, None) == tmp_path / "requirements.txt"
    other = tmp_path / "pins.txt"
    assert requirements_for(notebook, other) == other


def test_requirement_lines_give_their_package_names() -> None:
    lines = (
        "# a comment\nLightGBM==4.7.0\nxgboost-cpu>=3 ; python_version >= '3.10'\n-c constraints.txt\n\nscikit_learn\n"
        f"{TERMCOLOR}\ngit+https://github.com/org/repo\nwheels/x-1.0-py3-none-any.whl\n"  # name no distribution
        "tabulate \\\n    ==0.10.0  # a continued line\n"
        f"termcolor@{TERMCOLOR}\n"
    )
    assert requirement_names(lines) == ["LightGBM", "xgboost-cpu", "scikit_learn", "tabulate", "termcolor"]
    assert normalized_name("Scikit_Learn") == normalized_name("scikit-learn") == "scikit-learn"


def test_the_project_environment_is_no_notebook_environment() -> None:
    assert current() is None


def test_a_pin_that_moves_a_locked_package_is_named_with_the_locked_version() -> None:
    lock = "numpy==2.4.6\nscipy==1.17.1 ; python_version >= '3.11'\n    # via scikit-learn\n"
    wanted = "lightgbm\nnumpy==1.26.4  # the tutorial's\nscipy>=1.10\nNumPy<3\nscipy \\\n  <1.12\n"
    assert _locked_pins_moved(wanted, lock) == [
        "it asks for numpy==1.26.4, the project locks numpy 2.4.6",
        "it asks for scipy<1.12, the project locks scipy 1.17.1",
    ]


@pytest.mark.parametrize(
    "line",
    [
        "-e ./mypkg",
        "--editable=git+https://github.com/org/repo#egg=repo",
        "./wheels/n2p_probe-0.1.0-py3-none-any.whl",
        "wheels/n2p_probe-0.1.0-py3-none-any.whl",
        "n2p-probe @ file:///tmp/wheels/n2p_probe-0.1.0-py3-none-any.whl",
        "git+file:///tmp/repo",
    ],
)
def test_a_local_path_or_an_editable_install_is_refused_saying_why(
    tmp_path: Path, environments: Path, line: str
) -> None:
    """Refused before uv runs: a bento built or served on another machine could not install it the same way."""
    included = requirements(tmp_path, f"six\n{line}\n", "more.txt")
    with pytest.raises(RequirementsRefused, match="could not install it the same way") as refused:
        prepare(requirements(tmp_path, "tabulate\n-r more.txt\n"))
    assert f"{included}: `{line}` is " in str(refused.value)
    assert "--extra-index-url URL" in str(refused.value) and "git+https://…@<commit>" in str(refused.value)
    assert not environments.exists()


@pytest.mark.parametrize("line", [f"termcolor @ {TERMCOLOR}", TERMCOLOR])
def test_a_url_requirement_is_recorded_by_its_distribution_version_and_url(
    tmp_path: Path, environments: Path, monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    made = prepare(requirements(tmp_path, f"{line}\n"))
    assert made.packages == {"termcolor": "3.3.0"}
    assert manifest(made)["urls"] == {"termcolor": TERMCOLOR}
    # Training inside it: a model needing termcolor is one a served model (with the card's packages) has.
    monkeypatch.setattr(environment, "current", lambda: made)
    check_packages_served({"termcolor": "3.3.0"})


def test_the_requirements_index_options_reach_the_install_and_the_manifest(tmp_path: Path, environments: Path) -> None:
    """n2p-probe is only in a --find-links folder: uv pip install finds it only if it is given the options too."""
    wheels = probe_wheel(tmp_path / "notebook" / "wheels").parent
    made = prepare(requirements(tmp_path / "notebook", "--no-index\n-f ./wheels\nn2p-probe\n"))
    assert made.packages == {"n2p-probe": "0.1.0"}
    assert manifest(made)["index_options"] == ["--no-index", f"--find-links {wheels}"]
    imported = subprocess.run([made.python, "-c", "import n2p_probe"], capture_output=True, text=True, check=False)
    assert imported.returncode == 0, imported.stderr


@pytest.mark.parametrize("variable", ["UV_INDEX_URL", "PIP_INDEX_URL"])
def test_a_mirror_in_the_environment_is_the_index_uv_asks(
    tmp_path: Path, environments: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    for name in ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "PIP_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "http://127.0.0.1:9/simple")  # a closed port: the refusal names the mirror asked
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    with pytest.raises(RequirementsRefused, match="127.0.0.1:9/simple/tabulate"):
        prepare(requirements(tmp_path, "tabulate\n"))


def test_a_changed_included_file_makes_a_new_environment(tmp_path: Path, environments: Path) -> None:
    """The key holds every file `-r` and `-c` include, to any depth: a change in one is never a stale reuse."""
    top = requirements(tmp_path / "a", "-r more.txt\n-c pins.txt\n")
    requirements(tmp_path / "a", "-r deeper.txt\n", "more.txt")
    requirements(tmp_path / "a", "six\n", "deeper.txt")
    requirements(tmp_path / "a", "", "pins.txt")
    made = [prepare(top).folder]
    (tmp_path / "a" / "deeper.txt").write_text("six\njoblib\n")
    made.append(prepare(top).folder)
    (tmp_path / "a" / "pins.txt").write_text("six==1.17.0\n")
    made.append(prepare(top).folder)
    assert len(set(made)) == 3
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # the same files elsewhere: the same environment
    assert prepare(tmp_path / "b" / "requirements.txt").folder == made[-1]


def test_the_key_is_the_bytes_of_the_lock_and_the_requirements_not_their_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = requirements(tmp_path, "lightgbm\n")
    key = _key([wanted])
    copies = [tmp_path / "checkout" / file.name for file in environment.LOCK_FILES]
    (tmp_path / "checkout").mkdir()
    for file, copy in zip(environment.LOCK_FILES, copies, strict=True):
        shutil.copy(file, copy)
    monkeypatch.setattr(environment, "LOCK_FILES", tuple(copies))
    assert _key([wanted]) == key
    copies[0].write_bytes(copies[0].read_bytes() + b"\n")
    assert _key([wanted]) != key


def test_an_environment_made_is_reused_without_running_uv(
    tmp_path: Path, environments: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = requirements(tmp_path, "six\n")
    made = prepare(wanted)

    def no_uv(*_: object) -> str:
        raise AssertionError("uv ran for an environment that exists")

    monkeypatch.setattr(environment, "_uv", no_uv)
    monkeypatch.setattr(environment, "_run", no_uv)
    assert prepare(wanted) == made


def test_a_locked_package_for_another_platform_is_installed(tmp_path: Path, environments: Path) -> None:
    """colorama is locked for Windows only (`; sys_platform == 'win32'`), so .venv lacks it here: it is installed."""
    made = prepare(requirements(tmp_path, "colorama\n"))
    imported = subprocess.run([made.python, "-c", "import colorama"], capture_output=True, text=True, check=False)
    assert imported.returncode == 0, imported.stderr


@pytest.mark.parametrize("theirs", [None, "/their/lib"])
def test_training_started_again_inside_keeps_the_users_pythonpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, theirs: str | None
) -> None:
    python = tmp_path / "bin" / "python"  # stands in for the environment's Python: it writes what it was given
    python.parent.mkdir()
    python.write_text('#!/bin/sh\nprintf %s "$PYTHONPATH" > "$(dirname "$0")/pythonpath"\n')
    python.chmod(0o755)
    if theirs is None:
        monkeypatch.delenv("PYTHONPATH", raising=False)
    else:
        monkeypatch.setenv("PYTHONPATH", theirs)
    assert run_inside(NotebookEnvironment(tmp_path, {}), ["--help"]) == 0
    assert (tmp_path / "bin" / "pythonpath").read_text() == os.pathsep.join([str(ROOT), *filter(None, [theirs])])


def test_what_the_card_records_of_an_environment_has_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from train import pipeline

    inside = NotebookEnvironment(
        Path("/env"),
        {"corp-booster": "1.2.0", "forked": "0.3.1"},
        {"forked": "git+https://token@github.com/someone/forked@0a1b2c"},
        ["--index-url https://me:secret@pypi.corp.example/simple", "--find-links /srv/wheels"],
    )
    monkeypatch.setattr(pipeline.notebook_environment, "current", lambda: inside)
    assert pipeline._installed_requirements() == {
        "requirements": {"corp-booster": "1.2.0", "forked": "0.3.1"},
        "requirement_urls": {"forked": "git+https://github.com/someone/forked@0a1b2c"},
        "index_options": ["--index-url https://pypi.corp.example/simple", "--find-links /srv/wheels"],
    }
