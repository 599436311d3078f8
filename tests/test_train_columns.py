"""Free text and columns the model never reads, trained for real from notebooks and answered by the predictor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import VotingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
from sklearn.svm import LinearSVC

from modelcard.card import FeatureKind
from modelcard.schema import features_model
from runtime.predictor import load_predictor
from tests import notebooks
from tests.fakes import table_of
from tests.test_train import card_of, train_notebook
from train.checks import check_served_path
from train.columnuse import ColumnUse, column_use
from train.errors import ModelCheckFailed
from train.features import describe_column, describe_features


@pytest.fixture(scope="module")
def reviews_tag(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("reviews")
    return train_notebook(folder, notebooks.reviews(folder), gates={"accuracy": 0.8})


def test_text_read_by_a_vectorizer_is_free_text_and_a_dropped_reference_is_unused(reviews_tag: str) -> None:
    card = card_of(reviews_tag)
    assert {f.name: f.kind for f in card.features} == {
        "order_ref": FeatureKind.UNUSED,
        "note": FeatureKind.TEXT,
        "shop": FeatureKind.CATEGORY,
        "price": FeatureKind.NUMBER,
    }
    note = card.feature("note")
    assert note.categories is None and note.text is not None
    assert 15 <= note.text.chars.min <= note.text.chars.max <= 60
    assert note.text.max_chars == 10_000 and "works" in note.text.vocabulary and "#" not in note.text.vocabulary
    # Every row ends in its own number, which the test rows' numbers never match: about one word in six is new.
    assert 0.05 < note.text.unseen_word_share < 0.3
    assert len(note.text.samples) == 5 and all(" #" in sample and len(sample) <= 200 for sample in note.text.samples)
    assert card.feature("order_ref").placeholder == ""  # no training identifier in the card
    assert card.runtime == "onnx", card.runtime_note
    assert all(row["order_ref"].startswith("ORD-") for row in card.examples), "examples keep the reference"


def test_the_schema_takes_any_text_and_no_reference(reviews_tag: str) -> None:
    card = card_of(reviews_tag)
    schema = features_model(card)
    text = "a completely new sentence about a blender, never seen in training"
    assert schema.model_validate({"note": text, "shop": "east", "price": 20.0}).model_dump(by_alias=True) == {
        "order_ref": None,
        "note": text,
        "shop": "east",
        "price": 20.0,
    }
    assert (
        schema.model_validate({"order_ref": 12345, "note": "", "shop": "east", "price": 1.0}).model_dump()["x0"]
        == 12345
    )
    with pytest.raises(ValueError, match="note"):
        schema.model_validate({"note": "x" * 10_001, "shop": "east", "price": 1.0})
    with pytest.raises(ValueError, match="order_ref"):
        schema.model_validate({"order_ref": {"nested": 1}, "note": "fine", "shop": "east", "price": 1.0})


@pytest.mark.parametrize("runtime", ["onnx", "sklearn"])
def test_new_text_is_answered_by_its_words_and_the_reference_kept(reviews_tag: str, runtime: str) -> None:
    predictor = load_predictor(bentoml.models.get(reviews_tag), runtime)
    rows = [
        {"order_ref": "mine-1", "note": "love it, works well, great value", "shop": "east", "price": 20.0},
        {"order_ref": 7, "note": "arrived damaged and stopped working", "shop": "east", "price": 20.0},
        {"order_ref": None, "note": "", "shop": "north", "price": 20.0},
    ]
    table = table_of(predictor.card.features, rows)
    liked, disliked, empty = predictor.predict(table)
    assert (liked.class_name, disliked.class_name) == ("liked", "disliked")
    assert liked.probability > 0.8 and disliked.probability > 0.8 and empty.class_name in ("liked", "disliked")
    assert table.records(predictor.card.features)[:2] == [rows[0], rows[1]], "the log keeps what was sent"


def test_a_column_the_column_transformer_drops_may_have_any_dtype(tmp_path: Path) -> None:
    tag = train_notebook(tmp_path, notebooks.dropped_odd_columns(tmp_path))
    card = card_of(tag)
    day = card.feature("day")
    assert (day.kind, day.dtype, day.nullable, day.placeholder) == (
        FeatureKind.UNUSED,
        "datetime64[us]",
        True,
        "1970-01-01",
    )
    assert card.feature("tags").kind is card.feature("meta").kind is FeatureKind.UNUSED
    predictor = load_predictor(bentoml.models.get(tag), "auto")
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    assert predictor.predict(table_of(predictor.card.features, [row]))[0].class_name == "setosa"


def _frame(rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "ref": [f"T-{i}" for i in range(rows)],
            "comment": [
                None if i % 9 == 0 else f"{rng.choice(['great', 'awful', 'fine'])} visit {i}" for i in range(rows)
            ],
            "plan": rng.choice(["basic", "pro"], rows),
            "spend": rng.uniform(0, 100, rows),
        }
    )


def _labels(frame: pd.DataFrame) -> np.ndarray:
    return np.where(frame["comment"].fillna("").str.contains("great") | (frame["spend"] > 90), "happy", "unhappy")


def _prep(*, text: Any) -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("comment", text, ["comment"]),
            ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
            ("spend", "passthrough", ["spend"]),
        ],
        remainder="drop",
    )


def blanks_then_words() -> Pipeline:
    """Blanks filled, the one column flattened to texts, then words: free text behind an imputer."""
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value=""), FunctionTransformer(np.ravel), TfidfVectorizer()
    )


def test_text_behind_an_imputer_and_a_calibrated_models_columns_are_found() -> None:
    frame = _frame()
    columns = list(frame.columns)
    plain = Pipeline([("prep", _prep(text=blanks_then_words())), ("clf", LogisticRegression(max_iter=2000))]).fit(
        frame, _labels(frame)
    )
    assert column_use(plain, columns) == ColumnUse(frozenset({"comment"}), frozenset({"ref"}))
    calibrated = CalibratedClassifierCV(
        Pipeline([("prep", _prep(text=blanks_then_words())), ("svm", LinearSVC(max_iter=5000))]), cv=3
    )
    calibrated.fit(frame, _labels(frame))
    assert column_use(calibrated, columns) == ColumnUse(frozenset({"comment"}), frozenset({"ref"}))
    # One member reading the comment as a category: it is not free text for the ensemble.
    voting = VotingClassifier(
        [
            (
                "words",
                Pipeline([("prep", _prep(text=blanks_then_words())), ("clf", LogisticRegression(max_iter=2000))]),
            ),
            (
                "values",
                Pipeline(
                    [
                        (
                            "prep",
                            _prep(
                                text=make_pipeline(
                                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                                )
                            ),
                        ),
                        ("clf", LogisticRegression(max_iter=2000)),
                    ]
                ),
            ),
        ],
        voting="soft",
    ).fit(frame, _labels(frame))
    assert column_use(voting, columns) == ColumnUse(frozenset(), frozenset({"ref"}))
    assert column_use(LogisticRegression(max_iter=2000).fit(frame[["spend"]], _labels(frame)), ["spend"]) == ColumnUse()


def test_blanks_kept_as_none_reach_the_model_as_none() -> None:
    frame = _frame().astype({"comment": object})
    frame["plan"] = pd.Series([None if i % 7 == 0 else plan for i, plan in enumerate(frame["plan"])], dtype=object)
    encode = make_pipeline(SimpleImputer(missing_values=None, strategy="constant", fill_value="none"), OneHotEncoder())
    model = Pipeline(
        [
            ("prep", ColumnTransformer([("plan", encode, ["plan"]), ("spend", "passthrough", ["spend"])])),
            ("clf", LogisticRegression(max_iter=2000)),
        ]
    ).fit(frame[["plan", "spend"]], _labels(frame))
    features = describe_features(frame[["plan", "spend"]])
    assert features[0].blank_as_none and not features[1].blank_as_none
    check_served_path(model, features, frame[["plan", "spend"]], model.predict_proba(frame[["plan", "spend"]]))


def test_the_notebook_declares_free_text_with_max_chars() -> None:
    repeated = pd.Series(["fine", "great stay", "awful"] * 40, dtype="str")
    spec = describe_column("comment", repeated, repeated, 1.0, {"max_chars": 500})
    assert spec.kind is FeatureKind.TEXT and spec.text is not None and spec.text.max_chars == 500
    fixed = repeated.astype("category")
    with pytest.raises(ModelCheckFailed, match="is a pandas category, a fixed set of values, not free text"):
        describe_column("comment", fixed, fixed, 1.0, {"max_chars": 500})
    with pytest.raises(ModelCheckFailed, match="but it is a number, not free text"):
        describe_column("spend", pd.Series([1.0, 2.0]), pd.Series([1.0]), 1.0, {"max_chars": 500})
