"""The request schema built from a model card: strict types by kind, bounds, enums, blanks, and the field named."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from modelcard.card import ModelCard
from modelcard.schema import features_model
from runtime.table import TableBuilder
from serving.codecs import model_rows
from serving.schemas import PredictionResult, unseen_categories
from tests.fakes import CHURN_ROW, CONTRACTS, PAYMENTS, SETOSA, make_card, make_churn_card


@pytest.fixture
def schema() -> type:
    return features_model(make_card())


@pytest.fixture
def churn() -> type:
    return features_model(make_churn_card())


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
        ({**SETOSA, "petal_length": -5.5}, "petal_length", "greater_than_equal"),
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


def test_schema_documents_bounds_from_the_data_and_a_real_example(schema: type) -> None:
    card: ModelCard = make_card()
    document = schema.model_json_schema()
    petal = document["properties"]["petal_length"]
    spec = card.feature("petal_length")
    assert (petal["minimum"], petal["maximum"]) == (spec.lower, spec.upper) == (-5.0, 13.0)
    assert "training range 1 to 7" in petal["description"]
    assert document["example"] == {n: card.examples[0][n] for n in card.feature_names}
    assert document["additionalProperties"] is False
    assert document["required"] == card.feature_names


def test_every_kind_gets_its_json_type(churn: type) -> None:
    properties = churn.model_json_schema()["properties"]
    assert properties["tenure"]["type"] == "integer" and properties["tenure"]["minimum"] == -72
    assert properties["monthlycharges"]["type"] == "number"
    assert properties["seniorcitizen"]["type"] == "boolean"
    assert properties["contract"]["enum"] == list(CONTRACTS)
    # Blanks in training: null accepted, and the field may be left out.
    assert {"type": "null"} in properties["totalcharges"]["anyOf"]
    assert {"type": "null"} in properties["paymentmethod"]["anyOf"]
    assert set(churn.model_json_schema()["required"]) == {"tenure", "monthlycharges", "seniorcitizen", "contract"}


def test_blanks_are_null_or_left_out_where_training_had_them(churn: type) -> None:
    left_out = {k: v for k, v in CHURN_ROW.items() if k not in ("totalcharges", "paymentmethod")}
    for body in (CHURN_ROW, left_out):
        row = churn.model_validate_json(json.dumps(body))
        table = TableBuilder(make_churn_card().features).from_rows(model_rows([row]))
        assert table.columns["paymentmethod"].tolist() == ([None] if body is left_out else ["electronic_check"])
        assert str(table.columns["totalcharges"][0]) == "nan"


@pytest.mark.parametrize(
    ("change", "field", "error_type"),
    [
        ({"contract": "monthly"}, "contract", "literal_error"),
        ({"contract": None}, "contract", "literal_error"),
        ({"contract": 1}, "contract", "literal_error"),
        ({"tenure": 12.5}, "tenure", "int_type"),
        ({"tenure": "12"}, "tenure", "int_type"),
        ({"tenure": True}, "tenure", "int_type"),
        ({"tenure": None}, "tenure", "int_type"),
        ({"tenure": 1000}, "tenure", "less_than_equal"),
        ({"seniorcitizen": "yes"}, "seniorcitizen", "bool_type"),
        ({"seniorcitizen": 1}, "seniorcitizen", "bool_type"),
        ({"monthlycharges": None}, "monthlycharges", "float_type"),
        ({"totalcharges": "NaN"}, "totalcharges", "float_type"),
    ],
)
def test_bad_mixed_rows_name_the_field(churn: type, change: dict, field: str, error_type: str) -> None:
    with pytest.raises(ValidationError) as caught:
        churn.model_validate_json(json.dumps({**CHURN_ROW, **change}))
    error = caught.value.errors()[0]
    assert error["loc"][0] == field and error["type"] == error_type


def test_an_unseen_category_lists_the_allowed_values_and_is_told_apart(churn: type) -> None:
    with pytest.raises(ValidationError) as caught:
        churn.model_validate_json(json.dumps({**CHURN_ROW, "contract": "weekly"}))
    message = caught.value.errors()[0]["msg"]
    assert all(value in message for value in CONTRACTS)
    assert unseen_categories(caught.value, make_churn_card()) == ["contract"]


def test_result_serialises_class_key() -> None:
    result = PredictionResult(class_="setosa", probability=0.9, probabilities={"setosa": 0.9}, model="m:1")
    assert json.loads(result.model_dump_json()) == {
        "class": "setosa",
        "probability": 0.9,
        "probabilities": {"setosa": 0.9},
        "model": "m:1",
    }


def test_the_openapi_document_spells_blanks_the_3_0_way(churn: type) -> None:
    from serving.openapi import openapi_3_0_nullable

    properties = churn.model_json_schema()["properties"]
    openapi_3_0_nullable(properties)
    total, payment = properties["totalcharges"], properties["paymentmethod"]
    assert (total["type"], total["nullable"], total["minimum"]) == ("number", True, 18.0 - 8682.0)
    assert payment["nullable"] is True and payment["enum"] == list(PAYMENTS)
    assert "anyOf" not in total and "nullable" not in properties["contract"]
