"""The input models every path validates through: repeated keys refused, errors capped, refusals reported once."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, RootModel, ValidationError, create_model

from modelcard.schema import features_model
from serving.codecs import validation_error_body
from serving.jsoninput import MAX_ERRORS, MAX_MESSAGE_CHARS, harden
from tests.fakes import SETOSA, make_card


def hardened() -> tuple[type[BaseModel], type[Any], list[ValidationError]]:
    """A fresh row model and list model (as service.py builds them), hardened, with the refusals they report."""
    row = features_model(make_card())
    rows = RootModel[Annotated[list[row], Field(min_length=1, max_length=1000)]]  # type: ignore[valid-type]
    refused: list[ValidationError] = []
    for model in (row, rows):
        harden(model, row, refused.append)
    return row, rows, refused


def body(error: ValidationError) -> dict[str, Any]:
    return validation_error_body(error)


def test_a_key_given_twice_is_refused_naming_it() -> None:
    row, rows, refused = hardened()
    text = json.dumps(SETOSA)[:-1] + ', "petal_width": 9.9}'
    with pytest.raises(ValidationError) as single:
        row.model_validate_json(text)
    assert [(e["type"], e["loc"]) for e in body(single.value)["detail"]] == [("duplicate_key", ("petal_width",))]
    with pytest.raises(ValidationError) as batch:
        rows.model_validate_json(f"[{json.dumps(SETOSA)}, {text}]")
    assert [e["loc"] for e in body(batch.value)["detail"]] == [("root", 1, "petal_width")]


def test_a_colon_inside_a_value_is_not_taken_for_a_repeated_key() -> None:
    Note = create_model("Note", text=(str, ...), count=(int, ...))
    refused: list[ValidationError] = []
    harden(Note, Note, refused.append)
    assert Note.model_validate_json('{"text": "at 12:30: lunch", "count": 1}').text == "at 12:30: lunch"
    with pytest.raises(ValidationError) as error:
        Note.model_validate_json('{"text": "a:b", "count": 1, "text": "c"}')
    assert [e["loc"] for e in body(error.value)["detail"]] == [("text",)]
    assert len(refused) == 1


def test_thousands_of_unknown_keys_answer_a_small_body_quickly() -> None:
    row, rows, refused = hardened()
    many = {**SETOSA, **{f"u{i}": 1 for i in range(40_000)}}
    started = time.perf_counter()
    with pytest.raises(ValidationError) as single:
        row.model_validate_json(json.dumps(many))
    seconds = time.perf_counter() - started
    answer = body(single.value)
    assert len(answer["detail"]) == MAX_ERRORS + 1
    assert answer["detail"][-1]["type"] == "too_many_errors" and "40,000 errors" in answer["detail"][-1]["msg"]
    assert len(json.dumps(answer)) < 5_000
    assert seconds < 2  # listing all 40,000 errors took 0.2 s and 6 MB; this lists 21
    with pytest.raises(ValidationError) as batch:
        rows.model_validate_json(json.dumps([{**SETOSA, **{f"u{i}": 1 for i in range(60)}}] * 1000))
    detail = body(batch.value)["detail"]
    assert len(detail) == MAX_ERRORS + 1 and detail[0]["loc"] == ("root", 0, "u0")
    assert "60,000 errors" in detail[-1]["msg"]
    assert len(refused) == 2  # each refusal reported once, already capped
    assert all(e.error_count() == MAX_ERRORS + 1 for e in refused)


def test_the_first_errors_are_the_rows_own_errors_in_order() -> None:
    _row, rows, _refused = hardened()
    bad = [{**SETOSA, "sepal_length": "long"}] * 30
    with pytest.raises(ValidationError) as batch:
        rows.model_validate_json(json.dumps(bad))
    detail = body(batch.value)["detail"]
    assert [e["loc"] for e in detail[:3]] == [("root", i, "sepal_length") for i in range(3)]
    assert all(e["type"] == "float_type" for e in detail[:MAX_ERRORS])


def test_a_long_message_is_cut() -> None:
    values = tuple(f"value-{i:04d}" for i in range(500))
    Picky = create_model("Picky", pick=(Literal[values], ...))  # type: ignore[valid-type]
    harden(Picky, Picky, lambda error: None)
    with pytest.raises(ValidationError) as error:
        Picky.model_validate_json('{"pick": "nope"}')
    (detail,) = body(error.value)["detail"]
    assert len(detail["msg"]) == MAX_MESSAGE_CHARS and detail["msg"].endswith("…")


def test_invalid_json_in_a_batch_is_a_validation_error() -> None:
    _row, rows, refused = hardened()
    with pytest.raises(ValidationError) as error:
        rows.model_validate_json(b"\x00")
    assert body(error.value)["detail"][0]["type"] == "json_invalid"
    assert len(refused) == 1


def test_good_input_passes_and_reports_nothing() -> None:
    row, rows, refused = hardened()
    assert row.model_validate_json(json.dumps(SETOSA)).model_fields_set == set(row.model_fields)
    assert len(rows.model_validate_json(json.dumps([SETOSA] * 3)).root) == 3
    assert refused == []
