"""Notebooks as people write them: their own functions and classes, a search left as the model, ranges, progress."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import bentoml
import numpy as np
import pandas as pd
import pytest

from modelcard.card import FeatureKind, read_card
from modelcard.files import SKLEARN_FILE
from tests import notebooks
from train.errors import ModelCheckFailed
from train.features import bounds, describe_column
from train.notebook_code import check_loads_elsewhere, notebook_code, serialize
from train.pipeline import TrainOptions, train

ROOT = Path(__file__).resolve().parent.parent


def test_a_notebooks_own_function_and_class_train_and_load_where_the_notebook_never_ran(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="train")
    tag = train(TrainOptions(notebook=notebooks.own_code(tmp_path), output_dir=tmp_path / "build"))
    stored = bentoml.models.get(tag)
    card = read_card(Path(stored.path))
    assert [entry.split(" (")[0] for entry in card.notebook_code] == ["add_ratios", "ClipOutliers"]
    assert card.runtime == "sklearn" and "notebook's own code (add_ratios, ClipOutliers)" in card.runtime_note
    # A process that never ran the notebook, and has no notebook on its path, loads the file as the service does.
    check = (
        "import sys, joblib, pandas as pd\n"
        "model = joblib.load(sys.argv[1])\n"
        "row = pd.DataFrame([dict(sepal_length=5.1, sepal_width=3.5, petal_length=1.4, petal_width=0.2)])\n"
        "print(model.predict(row)[0])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", check, str(Path(stored.path) / SKLEARN_FILE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (run.returncode, run.stdout.strip()) == (0, "setosa"), run.stderr
    messages = caplog.text
    assert "Cell 2/2 (" in messages and "): import numpy as np" in messages and "All 2 code cells ran in" in messages
    assert "loads in a new process and predicts the" in messages


def test_notebook_code_names_what_the_notebook_defined_and_where() -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(  # noqa: S102 - a notebook's cell, defined as a kernel would define it
        "from sklearn.preprocessing import FunctionTransformer, StandardScaler\n"
        "from sklearn.pipeline import make_pipeline\n"
        "def twice(x):\n    return x * 2\n"
        "class Mine(StandardScaler):\n    pass\n"
        "model = make_pipeline(FunctionTransformer(twice), Mine(), StandardScaler())\n",
        namespace,
    )
    assert notebook_code(namespace["model"]) == [
        "twice (function, at model.steps['functiontransformer'].func)",
        "Mine (class, at model.steps['mine'])",
    ]
    from sklearn.preprocessing import StandardScaler

    assert notebook_code(StandardScaler()) == []


def test_a_model_that_predicts_otherwise_elsewhere_is_refused() -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=500).fit(iris.data, iris.target)
    expected = model.predict_proba(iris.data)
    check_loads_elsewhere(serialize(model), iris.data, expected, [])
    with pytest.raises(ModelCheckFailed, match="does not predict the test rows as the notebook's model did"):
        check_loads_elsewhere(serialize(model), iris.data, expected + 1e-9, ["twice (function, at model.func)"])
    with pytest.raises(ModelCheckFailed, match="does not load in a process that never ran the notebook"):
        check_loads_elsewhere(b"not a pickle", iris.data, expected, [])


def test_the_new_process_unpickles_the_stored_model_once(tmp_path: Path) -> None:
    """One load gives both the model it predicts with and the packages its pickle names."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(  # noqa: S102 - a notebook's cell: a model that notes each time it is unpickled
        "class Noted:\n"
        "    def __init__(self, inner, tally):\n        self.inner, self.tally = inner, tally\n"
        "    def predict_proba(self, rows):\n        return self.inner.predict_proba(rows)\n"
        "    def __setstate__(self, state):\n        self.__dict__.update(state)\n"
        "        with open(self.tally, 'a') as file:\n            file.write('unpickled\\n')\n",
        namespace,
    )
    iris = load_iris(as_frame=True)
    fitted = LogisticRegression(max_iter=500).fit(iris.data, iris.target)
    model = namespace["Noted"](fitted, str(tmp_path / "tally"))
    check_loads_elsewhere(serialize(model), iris.data, model.predict_proba(iris.data), ["Noted (class, at model)"])
    assert (tmp_path / "tally").read_text() == "unpickled\n"


def test_a_search_is_served_as_its_best_estimator_and_recorded(tmp_path: Path) -> None:
    tag = train(TrainOptions(notebook=notebooks.grid_search(tmp_path), output_dir=tmp_path / "build"))
    card = read_card(Path(bentoml.models.get(tag).path))
    assert card.search is not None
    assert card.search.search == "sklearn.model_selection._search.GridSearchCV"
    assert set(card.search.best_params) == {"logisticregression__C"}
    assert card.search.scoring == "accuracy" and card.search.candidates == 3
    assert card.search.best_score is not None and 0.8 < card.search.best_score <= 1.0
    assert card.estimator == "sklearn.pipeline.Pipeline"
    assert card.runtime == "onnx", card.runtime_note  # the best estimator converts, as it would on its own


def test_bounds_never_cross_zero_for_a_feature_never_negative() -> None:
    assert bounds(np.array([1.0, 3.0, 6.9]), FeatureKind.NUMBER, 1.0) == (0.0, 12.8)
    assert bounds(np.array([0, 5]), FeatureKind.INTEGER, 1.0) == (0.0, 10.0)
    assert bounds(np.array([-2.0, 2.0]), FeatureKind.NUMBER, 1.0) == (-6.0, 6.0)


def test_the_notebook_sets_a_features_accepted_range() -> None:
    column = pd.Series([1.0, 2.0, 3.0], name="length")
    spec = describe_column("length", column, column, 1.0, {"lower": 0.5, "upper": 100.0})
    assert (spec.lower, spec.upper) == (0.5, 100.0)
    with pytest.raises(ModelCheckFailed, match="gives `colour` a range, but it is a category"):
        describe_column("colour", pd.Series(["red", "blue"]), pd.Series(["red"]), 1.0, {"upper": 3})


def test_a_category_with_many_values_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="train.features")
    shops = pd.Series([f"shop-{i % 150}" for i in range(600)], dtype="str")
    assert describe_column("shop", shops, shops, 1.0, {}).kind is FeatureKind.CATEGORY
    assert "Column `shop` has 150 different values (25% of its rows)" in caplog.text
    caplog.clear()
    plans = pd.Series(["basic", "pro"] * 50, dtype="str")
    describe_column("plan", plans, plans, 1.0, {})
    assert caplog.text == ""


def test_text_with_mostly_distinct_values_is_free_text_not_an_enum(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="train.features")
    ids = pd.Series([f"customer-{i}" for i in range(500)], dtype="str")
    spec = describe_column("customer_id", ids, ids.head(50), 1.0, {})
    assert (spec.kind, spec.categories) == (FeatureKind.TEXT, None) and spec.text is not None
    assert (spec.text.chars.min, spec.text.chars.max, spec.text.words.max) == (10.0, 12.0, 2.0)
    assert spec.text.unseen_word_share == 0.0  # the test rows' words are training's
    assert caplog.text == ""
    assert describe_column("customer_id", ids, ids, 1.0, {}, as_category=True).kind is FeatureKind.CATEGORY
    as_category = pd.Series(ids, dtype="category")
    assert describe_column("customer_id", as_category, as_category, 1.0, {}).kind is FeatureKind.CATEGORY
