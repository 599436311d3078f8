"""Free text and columns the model never reads, trained for real from notebooks and answered by the predictor."""

from __future__ import annotations

from pathlib import Path

import bentoml
import pytest

from modelcard.card import FeatureKind
from modelcard.schema import features_model
from runtime.predictor import load_predictor
from tests import notebooks
from tests.fakes import table_of
from tests.test_train import card_of, train_notebook


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
    assert card.feature("order_ref").placeholder.startswith("ORD-")
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
    tag = train_notebook(tmp_path, notebooks.dropped_datetime_column(tmp_path))
    day = card_of(tag).feature("day")
    assert (day.kind, day.dtype, day.nullable, day.placeholder) == (
        FeatureKind.UNUSED,
        "datetime64[us]",
        True,
        "2026-01-01 00:00:00",
    )
    predictor = load_predictor(bentoml.models.get(tag), "auto")
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    assert predictor.predict(table_of(predictor.card.features, [row]))[0].class_name == "setosa"
