"""A new version against the stored one it would replace (--gate-vs): refused when worse, recorded when not."""

from __future__ import annotations

import logging
from pathlib import Path

import bentoml
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from runtime.evaluation import evaluate
from tests import notebooks
from tests.fakes import FEATURES
from tests.test_train import card_of, store_tags
from train.__main__ import main
from train.comparison import Candidate, compare, judge
from train.errors import ModelCheckFailed
from train.pipeline import TrainOptions, train

NAME = "gate_vs_clf"


@pytest.fixture(scope="module")
def forest(bentoml_home: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The small iris forest stored as NAME: the version a new one is compared with."""
    folder = tmp_path_factory.mktemp("gate-vs")
    return str(train(TrainOptions(notebook=notebooks.good(folder), name=NAME, output_dir=folder / "build")))


def test_a_worse_version_is_refused_none_skips_and_an_equal_one_is_recorded(
    forest: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    assert card_of(forest).comparison is None  # a first training: nothing to compare with
    dummy = notebooks.low_accuracy(tmp_path)
    flags = ["--notebook", str(dummy), "--name", NAME, "--gate", "accuracy=0.3", "--output-dir", str(tmp_path / "b")]
    before = store_tags()
    with caplog.at_level(logging.ERROR):
        assert main(flags) == 4
    assert store_tags() == before
    # Against NAME:latest by default: both versions, the metric, both figures and the margin.
    assert (
        f"the new {NAME} from {dummy} scores test accuracy 0.3333, 0.6444 below the 0.9778 of {forest}" in caplog.text
    )
    assert "allowed margin 0.01" in caplog.text and "(--gate-vs-margin 0.645)" in caplog.text
    capsys.readouterr()

    assert main([*flags, "--gate-vs", "none"]) == 0
    assert card_of(capsys.readouterr().out.strip()).comparison is None

    again = train(TrainOptions(notebook=notebooks.good(tmp_path), name=NAME, gate_vs=forest, output_dir=tmp_path))
    comparison = card_of(str(again)).comparison
    assert comparison is not None
    assert comparison.model_dump() == {
        "against": forest,
        "metric": "accuracy",
        "new": pytest.approx(44 / 45),
        "old": pytest.approx(44 / 45),
        "margin": 0.01,
        "verdict": "equal",
        "rows": 45,
        "same_test_rows": True,
    }


def _iris_candidate(classes: list[str], drop: list[str]) -> Candidate:
    """Iris test rows less `drop`, labelled with `classes` in turn, scored as by a model unsure of every row."""
    iris = load_iris(as_frame=True)
    _, rows = train_test_split(iris.data.set_axis(FEATURES, axis=1), test_size=0.3, random_state=1)
    labels = np.resize(np.array(classes), len(rows))
    metrics = evaluate(np.full((len(rows), len(classes)), 1 / len(classes)), labels, classes)
    return Candidate("new model", rows.drop(columns=drop), labels, classes, metrics, "0" * 64)


@pytest.mark.parametrize(
    ("classes", "drop", "complaint"),
    [
        (["False", "True"], [], "their classes differ"),
        (["setosa", "versicolor", "virginica"], ["petal_width"], "reads petal_width, which the new test rows lack"),
    ],
)
def test_a_version_of_other_classes_or_features_cannot_be_compared(
    forest: str, classes: list[str], drop: list[str], complaint: str
) -> None:
    with pytest.raises(ModelCheckFailed, match=complaint) as refused:
        compare(bentoml.models.get(forest), _iris_candidate(classes, drop), "accuracy", 0.01)
    assert f"cannot be compared with {forest}" in str(refused.value) and "--gate-vs none" in str(refused.value)


@pytest.mark.parametrize(
    ("metric", "new", "old", "verdict"),
    [
        ("accuracy", 0.95, 0.95, "equal"),
        ("accuracy", 0.96, 0.95, "better"),
        ("accuracy", 0.94, 0.95, "within margin"),  # exactly the margin, whatever the float rounding
        ("accuracy", 0.93, 0.95, None),
        ("log_loss", 0.20, 0.25, "better"),
        ("log_loss", 0.30, 0.25, None),
    ],
)
def test_the_margin_and_the_direction_of_the_metric(metric: str, new: float, old: float, verdict: str | None) -> None:
    assert judge(metric, new, old, 0.01) == verdict


def test_a_named_version_missing_from_the_store_is_refused_before_the_notebook_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notebook = notebooks.good(tmp_path)
    with caplog.at_level(logging.ERROR):
        assert main(["--notebook", str(notebook), "--gate-vs", "absent_clf:v1", "--output-dir", str(tmp_path)]) == 4
    assert "--gate-vs absent_clf:v1 is not in the model store" in caplog.text
    assert not (tmp_path / "good.executed.ipynb").exists()
