"""The request schema built from a model card: strict, bounded, and naming the wrong field."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from serving.card import ModelCard
from serving.schemas import PredictionResult, features_model
from tests.fakes import SETOSA, make_card


@pytest.fixture
def schema() -> type:
    return features_model(make_card())


def test_valid_row_keeps_feature_order(schema: type) -> None:
    row = schema.model_validate_json(json.dumps(SETOSA))
    assert list(row.__dict__.values()) == [5.1, 3.5, 1.4, 0.2]


def test_integers_are_numbers(schema: type) -> None:
    row = schema.model_validate_json(json.dumps({**SETOSA, "sepal_length": 5}))
    assert row.__dict__["x0"] == 5.0


@pytest.mark.parametrize(
    ("body", "field", "error_type"),
    [
        ({k: v for k, v in SETOSA.items() if k != "petal_width"}, "petal_width", "missing"),
        ({**SETOSA, "colour": 1.0}, "colour", "extra_forbidden"),
        ({**SETOSA, "sepal_width": None}, "sepal_width", "float_type"),
        ({**SETOSA, "sepal_width": "3.5"}, "sepal_width", "float_type"),
        ({**SETOSA, "sepal_width": True}, "sepal_width", "float_type"),
        ({**SETOSA, "petal_length": -1.0}, "petal_length", "greater_than"),
        ({**SETOSA, "petal_length": 0}, "petal_length", "greater_than"),
        ({**SETOSA, "petal_length": 1e9}, "petal_length", "less_than_equal"),
    ],
)
def test_bad_field_is_named(schema: type, body: dict, field: str, error_type: str) -> None:
    with pytest.raises(ValidationError) as caught:
        schema.model_validate_json(json.dumps(body))
    (error,) = caught.value.errors()
    assert error["loc"] == (field,)
    assert error["type"] == error_type


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_are_refused(schema: type, literal: str) -> None:
    body = json.dumps(SETOSA).replace("0.2", literal)
    with pytest.raises(ValidationError) as caught:
        schema.model_validate_json(body)
    assert caught.value.errors()[0]["loc"] == ("petal_width",)


def test_schema_documents_bounds_and_example(schema: type) -> None:
    card: ModelCard = make_card()
    schema = schema.model_json_schema()
    petal = schema["properties"]["petal_length"]
    assert petal["exclusiveMinimum"] == card.feature_limits["petal_length"].gt
    assert petal["maximum"] == card.feature_limits["petal_length"].le
    assert "training range" in petal["description"]
    assert schema["example"] == {n: card.examples[0][n] for n in card.feature_names}
    assert schema["additionalProperties"] is False


def test_result_serialises_class_key() -> None:
    result = PredictionResult(class_="setosa", probability=0.9, probabilities={"setosa": 0.9}, model="m:1")
    assert json.loads(result.model_dump_json()) == {
        "class": "setosa",
        "probability": 0.9,
        "probabilities": {"setosa": 0.9},
        "model": "m:1",
    }
