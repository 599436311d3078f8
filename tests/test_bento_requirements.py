"""A bento's Python requirements: the serving packages, plus the model's own packages from its card."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from serving.bento_requirements import FOLDER, SERVING_REQUIREMENTS, VARIABLE, write_bento_requirements
from tests.conftest import ROOT
from tests.fakes import make_card


@pytest.fixture
def source_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the committed serving requirements, and BENTO_REQUIREMENTS unset."""
    (tmp_path / "requirements").mkdir()
    shutil.copy(ROOT / SERVING_REQUIREMENTS, tmp_path / SERVING_REQUIREMENTS)
    monkeypatch.delenv(VARIABLE, raising=False)
    return tmp_path


def test_a_plain_model_installs_exactly_the_serving_packages(source_tree: Path) -> None:
    written = write_bento_requirements(make_card(), "iris_clf:abc", source_tree)
    assert written is not None and written.read_text() == (ROOT / SERVING_REQUIREMENTS).read_text()
    assert os.environ[VARIABLE] == "build/bento-requirements/iris_clf-abc.txt"
    assert source_tree / os.environ[VARIABLE] == written


def test_a_boosters_bento_installs_it_at_the_version_it_was_trained_with(source_tree: Path) -> None:
    card = make_card()
    card.lineage.requirements.update({"xgboost-cpu": "3.2.0", "lightgbm": "4.7.0"})
    written = write_bento_requirements(card, "boosted_clf:abc", source_tree)
    assert written is not None
    extra = written.read_text().removeprefix((ROOT / SERVING_REQUIREMENTS).read_text()).splitlines()
    assert extra[1:] == ["lightgbm==4.7.0", "xgboost-cpu==3.2.0"] and extra[0].startswith("# ")


def test_urls_and_index_options_come_along_and_a_local_folder_stays_behind(source_tree: Path) -> None:
    card = make_card()
    card.lineage.requirements.update({"corp-booster": "1.2.0", "forked": "0.3.1"})
    card.lineage.requirement_urls["forked"] = "git+https://github.com/someone/forked@0a1b2c"
    card.lineage.index_options[:] = ["--extra-index-url https://pypi.corp.example/simple", "--find-links /home/me/w"]
    written = write_bento_requirements(card, "corp_clf:abc", source_tree)
    assert written is not None
    assert written.read_text().splitlines()[-3:] == [
        "--extra-index-url https://pypi.corp.example/simple",
        "corp-booster==1.2.0",
        "forked @ git+https://github.com/someone/forked@0a1b2c",
    ]


def test_inside_a_bento_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    assert write_bento_requirements(make_card(), "iris_clf:abc", tmp_path) is None
    assert VARIABLE not in os.environ and list(tmp_path.iterdir()) == []


def test_the_bentofile_reads_the_file_the_service_names() -> None:
    config = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    assert config["python"]["requirements_txt"] == f"${{{VARIABLE}}}"
    # BentoML refuses a path in a hidden folder or outside the build context; git keeps none of it.
    assert not FOLDER.is_absolute() and not any(part.startswith(".") for part in FOLDER.parts)
    assert f"{FOLDER.parts[0]}/" in (ROOT / ".gitignore").read_text().splitlines()
