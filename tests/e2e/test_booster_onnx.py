"""XGBoost and LightGBM at the end of a scikit-learn pipeline: trained for real, in their requirements' environment.

Each notebook ships a requirements.txt, so `python -m train` makes (once) the environment with the booster and
runs there; onnxmltools' converters are registered with skl2onnx (train/boosters.py) and the parity gate decides.
The data is made in the notebook with a fixed seed: a category (one with 15 values, so the one-hot matrix is
sparse), an integer, a float with blanks, a yes/no text flag and a boolean. Three trainings in all, each ~20-40 s:
XGBoost with a LabelEncoder on three string classes, LightGBM on a one-hot pipeline (both kept on ONNX), and
LightGBM on pandas `category` columns it splits itself (kept on scikit-learn, the card says why).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.notebooks import write_notebook
from train.compile import PROBABILITY_TOLERANCE

pytestmark = pytest.mark.slow

# The same text as tests/e2e/test_notebook_requirements.py's: the same environment, made once for both.
LIGHTGBM_REQUIREMENTS = "lightgbm\n"
XGBOOST_REQUIREMENTS = "xgboost-cpu\n"

LOAD_CUSTOMERS = """\
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
rng = np.random.default_rng(20)
n = 900
X = pd.DataFrame({
    "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
    "region": rng.choice([f"region_{i:02d}" for i in range(15)], n),
    "tenure": rng.integers(0, 72, n),
    "charges": np.where(rng.random(n) < 0.08, np.nan, rng.normal(70, 20, n).round(2)),
    "paperless": rng.choice(["yes", "no"], n),
    "senior": rng.random(n) < 0.2,
})
score = (
    2.0 * (X["plan"] == "pro") + 1.0 * (X["plan"] == "plus") + X["tenure"] / 18
    - X["charges"].fillna(70) / 25 + 0.8 * (X["paperless"] == "yes") + 0.6 * X["senior"]
)
"""

SPLIT = """\
y = np.array(LABELS)[np.digitize(score, np.quantile(score, CUTS))]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=1)
"""

PIPELINE = """\
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
prepare = ColumnTransformer([
    ("categories", OneHotEncoder(handle_unknown="ignore"), ["plan", "region", "paperless"]),
    ("numbers", SimpleImputer(strategy="median"), ["tenure", "charges"]),
    ("flags", "passthrough", ["senior"]),
])
"""

FIT_XGBOOST = """\
from sklearn.preprocessing import LabelEncoder
from xgboost import XGBClassifier
label_encoder = LabelEncoder().fit(y_train)
y_train, y_test = label_encoder.transform(y_train), label_encoder.transform(y_test)
booster = XGBClassifier(n_estimators=150, max_depth=3, learning_rate=0.2, random_state=1)
model = Pipeline([("prepare", prepare), ("boost", booster)]).fit(X_train, y_train)
model_card = {"gate": {"accuracy": 0.8}}  # three classes cut from one score: the rows near a cut go either way
"""

FIT_LIGHTGBM = """\
from lightgbm import LGBMClassifier
booster = LGBMClassifier(n_estimators=150, learning_rate=0.1, verbose=-1, random_state=1)
model = Pipeline([("prepare", prepare), ("boost", booster)]).fit(X_train, y_train)
"""

# LightGBM's own handling of categories: pandas `category` columns on the raw frame, blanks left to it.
FIT_LIGHTGBM_CATEGORIES = """\
from lightgbm import LGBMClassifier
for name in ["plan", "region", "paperless"]:
    X_train[name], X_test[name] = X_train[name].astype("category"), X_test[name].astype("category")
model = LGBMClassifier(n_estimators=150, learning_rate=0.1, verbose=-1, random_state=1).fit(X_train, y_train)
"""

THREE_CLASSES = SPLIT.replace("LABELS", '["low", "mid", "high"]').replace("CUTS", "[1 / 3, 2 / 3]")
TWO_CLASSES = SPLIT.replace("LABELS", '["no", "yes"]').replace("CUTS", "[0.5]")
XGBOOST_NOTEBOOK = (LOAD_CUSTOMERS, THREE_CLASSES, PIPELINE, FIT_XGBOOST)
LIGHTGBM_NOTEBOOK = (LOAD_CUSTOMERS, TWO_CLASSES, PIPELINE, FIT_LIGHTGBM)
LIGHTGBM_CATEGORIES_NOTEBOOK = (LOAD_CUSTOMERS, TWO_CLASSES, FIT_LIGHTGBM_CATEGORIES)
_GAP = re.compile(r"largest probability gap (\S+)")


def train(home: Path, folder: Path, name: str, requirements: str, *sources: str) -> tuple[dict[str, Any], str]:
    """Write the notebook and its requirements.txt, train it as a user does: its card (in `home`) and the log."""
    folder.mkdir()
    (folder / "requirements.txt").write_text(requirements)
    notebook = write_notebook(folder, name, *sources)
    result = subprocess.run(
        [sys.executable, "-m", "train", "--notebook", str(notebook), "--output-dir", str(folder / "build")],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    name, version = result.stdout.strip().splitlines()[-1].split(":")
    card: dict[str, Any] = json.loads((home / "models" / name / version / "card.json").read_text())
    return card, result.stderr


def parity_gap(card: dict[str, Any]) -> float:
    """The largest probability gap the parity gate measured, from the card's runtime note."""
    found = _GAP.search(card["runtime_note"])
    assert found, card["runtime_note"]
    return float(found.group(1))


@pytest.fixture(scope="module")
def xgboost_trained(tmp_path_factory: pytest.TempPathFactory, bentoml_home: Path) -> tuple[dict[str, Any], str]:
    folder = tmp_path_factory.mktemp("xgboost") / "notebook"
    return train(bentoml_home, folder, "xgboost_customers", XGBOOST_REQUIREMENTS, *XGBOOST_NOTEBOOK)


def test_xgboost_after_a_sparse_one_hot_pipeline_runs_on_onnx(xgboost_trained: tuple[dict[str, Any], str]) -> None:
    card, log = xgboost_trained
    assert card["runtime"] == "onnx", card["runtime_note"]
    assert parity_gap(card) <= PROBABILITY_TOLERANCE
    assert "same class on all" in card["runtime_note"]
    # Its input is sparse (15 regions one-hot), whose absent entries XGBoost reads as missing: the graph does too.
    assert "XGBClassifier is given a sparse matrix" in log
    assert card["lineage"]["requirements"] == {"xgboost-cpu": card["lineage"]["libraries"]["xgboost-cpu"]}


def test_xgboost_classes_are_the_label_encoders_strings(xgboost_trained: tuple[dict[str, Any], str]) -> None:
    card, _ = xgboost_trained
    assert card["class_names"] == ["high", "low", "mid"]  # LabelEncoder's order, decoded from the codes 0, 1, 2
    assert {example["label"] for example in card["examples"]} <= {"high", "low", "mid"}
    assert card["metrics"]["accuracy"] >= 0.8


def test_lightgbm_after_a_one_hot_pipeline_runs_on_onnx(
    tmp_path_factory: pytest.TempPathFactory, bentoml_home: Path
) -> None:
    folder = tmp_path_factory.mktemp("lightgbm") / "notebook"
    card, _ = train(bentoml_home, folder, "lightgbm_customers", LIGHTGBM_REQUIREMENTS, *LIGHTGBM_NOTEBOOK)
    assert card["runtime"] == "onnx", card["runtime_note"]
    assert parity_gap(card) <= PROBABILITY_TOLERANCE
    assert card["class_names"] == ["no", "yes"] and card["metrics"]["accuracy"] >= 0.9
    assert list(card["lineage"]["requirements"]) == ["lightgbm"]


def test_lightgbm_on_its_own_categories_stays_on_scikit_learn_and_says_why(
    tmp_path_factory: pytest.TempPathFactory, bentoml_home: Path
) -> None:
    folder = tmp_path_factory.mktemp("lightgbm-categories") / "notebook"
    card, _ = train(bentoml_home, folder, "lightgbm_categories", LIGHTGBM_REQUIREMENTS, *LIGHTGBM_CATEGORIES_NOTEBOOK)
    assert card["runtime"] == "sklearn"
    assert card["runtime_note"].startswith("not converted to ONNX: LightGBM splits the pandas category columns")
    assert "(plan, region, paperless)" in card["runtime_note"] and "onnx/onnxmltools#309" in card["runtime_note"]
    assert card["class_names"] == ["no", "yes"] and card["metrics"]["accuracy"] >= 0.9
    kinds = {feature["name"]: feature["kind"] for feature in card["features"]}
    assert kinds["plan"] == kinds["region"] == "category" and kinds["charges"] == "number"
