"""Shared fixtures: an isolated BentoML home for the whole session and one model trained from the real notebook."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# BentoML reads BENTOML_HOME when it is first imported, so this must run before any test module imports it.
_BENTOML_HOME = tempfile.mkdtemp(prefix="bentoml-home-tests-")
os.environ["BENTOML_HOME"] = _BENTOML_HOME
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def bentoml_home() -> Path:
    """The temporary BENTOML_HOME every test in this session uses."""
    return Path(_BENTOML_HOME)


@pytest.fixture(scope="session")
def trained_tag(bentoml_home: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Train once from the real notebook into the session's model store."""
    from train.pipeline import TrainOptions, train

    tag = train(TrainOptions(output_dir=tmp_path_factory.mktemp("train-build")))
    return str(tag)


@pytest.fixture(scope="session")
def service_module(trained_tag: str) -> Iterator[object]:
    """service.py imported against the trained model (it reads the model card at import)."""
    os.environ["MODEL_TAG"] = trained_tag
    try:
        import service
    finally:
        # Only this import should see it; servers started later pick their model themselves.
        del os.environ["MODEL_TAG"]
    yield service


@pytest.fixture
def iris_forest_file(tmp_path: Path) -> Path:
    """A small forest fitted on iris with named features and species labels, saved as the store would."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    from modelcard.files import SKLEARN_FILE
    from tests.fakes import FEATURES

    iris = load_iris(as_frame=True)
    X = iris.data.set_axis(FEATURES, axis=1)
    y = iris.target_names[iris.target]
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    path = tmp_path / SKLEARN_FILE
    joblib.dump(model, path)
    return path


@pytest.fixture(scope="session")
def http_client(service_module) -> Iterator[object]:
    """One ASGI app for the session: BentoML registers its metrics per app, so a second app in-process fails."""
    import logging

    from starlette.testclient import TestClient

    # BentoML logs every rejected request with its traceback; the tests look at the responses instead.
    logging.getLogger("bentoml").setLevel(logging.CRITICAL)
    with TestClient(service_module.Classifier.to_asgi()) as client:
        yield client


@pytest.fixture(scope="session")
def churn_tag(bentoml_home: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The churn example notebook trained once into the session's store."""
    from train.pipeline import NOTEBOOKS, TrainOptions, train

    return str(train(TrainOptions(notebook=NOTEBOOKS / "churn.ipynb", output_dir=tmp_path_factory.mktemp("churn"))))


@pytest.fixture(scope="session")
def bank_marketing_tag(bentoml_home: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The bank-marketing example notebook trained once into the session's store."""
    from train.pipeline import NOTEBOOKS, TrainOptions, train

    notebook = NOTEBOOKS / "bank_marketing.ipynb"
    return str(train(TrainOptions(notebook=notebook, output_dir=tmp_path_factory.mktemp("bank"))))


@pytest.fixture(scope="session")
def product_reviews_tag(bentoml_home: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The product-reviews example notebook (free text and an identifier) trained once into the session's store."""
    from train.pipeline import NOTEBOOKS, TrainOptions, train

    notebook = NOTEBOOKS / "product_reviews.ipynb"
    return str(train(TrainOptions(notebook=notebook, output_dir=tmp_path_factory.mktemp("reviews"))))


@pytest.fixture(scope="session")
def loan_default_tag(bentoml_home: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The XGBoost example (its requirements.txt, a label encoder) trained once, by `python -m train` as users run it.

    In a process of its own: training runs in the notebook's environment, which has XGBoost and this one has not.
    """
    import subprocess

    notebook = ROOT / "notebooks" / "loan_default" / "loan_default.ipynb"
    output = tmp_path_factory.mktemp("loan")
    command = [sys.executable, "-m", "train", "--notebook", str(notebook), "--output-dir", str(output)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]
