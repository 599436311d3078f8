"""Invalid JSON in a batch body is a 400, not a 500: a fix for BentoML's list-input models.

BentoML 1.4.39 parses a root (list) input with `json.loads` inside `model_validate_json`, so a body that is
not JSON raises JSONDecodeError, which its handler answers with a 500 (schemathesis found it with a NUL
byte). It also rebuilds the input's JSON schema on every call. Parsing with pydantic-core and raising a
pydantic ValidationError makes the answer the same 400 `json_invalid` a single-row body gets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError, from_json


def parse_json(model: type[BaseModel], body: str | bytes | bytearray) -> Any:
    """`body` parsed as JSON, or a ValidationError of type json_invalid naming what is wrong."""
    try:
        return from_json(body)
    except ValueError as error:
        detail = InitErrorDetails(
            type=PydanticCustomError("json_invalid", "Invalid JSON: {error}", {"error": str(error)}),
            loc=(),
            input=body,
        )
        raise ValidationError.from_exception_data(model.__name__, [detail]) from None


def refuse_invalid_json(model: type[BaseModel]) -> None:
    """Make `model.model_validate_json` parse with pydantic-core: invalid JSON becomes a ValidationError."""

    def model_validate_json(cls: type[BaseModel], json_data: str | bytes | bytearray, **kwargs: Any) -> BaseModel:
        return cls.model_validate(parse_json(cls, json_data), **kwargs)

    model.model_validate_json = classmethod(model_validate_json)  # type: ignore[method-assign,assignment]


def report_refusals(model: type[BaseModel], on_refusal: Callable[[ValidationError], None]) -> None:
    """Call `on_refusal` with every ValidationError `model.model_validate_json` raises, then raise it.

    BentoML's handler and the fast path both validate request bodies this way, so refusals are seen once,
    whichever path answered, and the successful path pays nothing.
    """
    validate = model.model_validate_json

    def model_validate_json(cls: type[BaseModel], json_data: str | bytes | bytearray, **kwargs: Any) -> BaseModel:
        try:
            return validate(json_data, **kwargs)
        except ValidationError as error:
            on_refusal(error)
            raise

    model.model_validate_json = classmethod(model_validate_json)  # type: ignore[method-assign,assignment]
