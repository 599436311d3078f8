"""A bento keeps serving the model it was built with, even after newer training runs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests import notebooks
from tests.conftest import ROOT
from tests.e2e.server import serve
from tests.fakes import SETOSA
from train.pipeline import TrainOptions, train

pytestmark = pytest.mark.slow


def test_bento_ignores_newer_model_and_source_tree_serves_latest(
    bento_tag: str, trained_tag: str, tmp_path: Path, artifacts: Path
) -> None:
    newer = str(train(TrainOptions(notebook=notebooks.good(tmp_path), name="iris_clf", output_dir=tmp_path)))
    assert newer != trained_tag

    with serve(bento_tag, cwd=tmp_path, log=artifacts / "serve-pinned-bento.log") as server:
        assert httpx.post(f"{server.url}/prediction", json=SETOSA).json()["model"] == trained_tag

    with serve(".", cwd=ROOT, log=artifacts / "serve-source.log") as server:
        assert httpx.post(f"{server.url}/prediction", json=SETOSA).json()["model"] == newer
