"""From the source tree, a model's own packages are read from the environment training made for its notebook."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import pytest

from runtime import environments
from runtime.environments import MANIFEST, add_notebook_packages, site_packages


def fake_environment(root: Path, key: str, packages: dict[str, str], python: str = sys.executable) -> Path:
    """A finished notebook environment: its Python, its manifest, and each package's metadata in site-packages."""
    folder = root / key
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").symlink_to(Path(python).resolve())
    site = site_packages(folder)
    for name, version in packages.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (folder / MANIFEST).write_text(json.dumps({"requirements": "", "packages": packages}))
    return folder


@pytest.fixture
def envs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(environments, "ENVIRONMENTS", tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


def test_the_environment_with_the_missing_package_is_added(envs: Path) -> None:
    fake_environment(envs, "a", {"other-booster": "1.0"})
    wanted = fake_environment(envs, "b", {"Fake_Booster": "2.5", "other-booster": "1.0"})
    assert add_notebook_packages({"fake-booster": "2.5", "numpy": metadata.version("numpy")}) == site_packages(wanted)
    assert sys.path[-1] == str(site_packages(wanted))  # after the project's own packages
    assert metadata.version("fake-booster") == "2.5"


def test_nothing_is_added_without_an_environment_at_the_cards_version(envs: Path) -> None:
    fake_environment(envs, "a", {"fake-booster": "2.4"})
    (envs / "half-made").mkdir()  # no manifest: an environment still being made, or a failed one
    before = list(sys.path)
    assert add_notebook_packages({"fake-booster": "2.5"}) is None
    assert sys.path == before


def test_an_environment_of_another_python_is_not_taken(envs: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-python"
    other.write_text("")
    fake_environment(envs, "a", {"fake-booster": "2.5"}, python=str(other))
    assert add_notebook_packages({"fake-booster": "2.5"}) is None


def test_a_model_with_everything_installed_changes_nothing(envs: Path) -> None:
    fake_environment(envs, "a", {"numpy": metadata.version("numpy")})
    assert add_notebook_packages({"numpy": metadata.version("numpy")}) is None
    assert add_notebook_packages({}) is None
