"""The API's input models, hardened where pydantic and BentoML leave a gap: every path validates through these.

BentoML's handler, the fast path and SageMaker's JSON all call `model_validate_json` on the two input models
BentoML built, so the fixes here hold wherever a request enters:

- Invalid JSON in a batch body is a 400, not a 500: BentoML 1.4.39 parses a root (list) input with
  `json.loads`, whose JSONDecodeError its handler answered with a 500 (schemathesis found it with a NUL byte).
- A key given twice is refused, naming it: JSON parsers keep the last value, a silent guess.
- A refusal lists at most MAX_ERRORS errors, each message at most MAX_MESSAGE_CHARS: 1,000 rows of 60 unknown
  keys answered 9 MB of errors and took 0.4 s to list them; the first errors are found again on a reduced copy
  of the input instead (docs/security.md).
- Every refusal is reported once (refused categories are counted per feature), whichever path answered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError, from_json, to_json

MAX_ERRORS = 20
MAX_MESSAGE_CHARS = 300
# What loc a row's errors start with in BentoML's list input model.
BATCH_PREFIX = ("root",)


def parse_json(model: type[BaseModel], body: str | bytes | bytearray) -> Any:
    """`body` parsed as JSON, or a ValidationError of type json_invalid naming what is wrong."""
    try:
        return from_json(body)
    except ValueError as error:
        raise _invalid(model, [_detail("json_invalid", f"Invalid JSON: {error}", ())]) from None


def harden(model: type[BaseModel], row_model: type[BaseModel], on_refusal: Callable[[ValidationError], None]) -> None:
    """Make `model.model_validate_json` refuse invalid JSON and repeated keys, cap its errors and report them.

    `model` is one row (`row_model` itself) or BentoML's list of rows of `row_model`.
    """
    is_batch = model is not row_model
    validate_json = model.model_validate_json

    def model_validate_json(cls: type[BaseModel], json_data: str | bytes | bytearray, **kwargs: Any) -> BaseModel:
        try:
            if is_batch:
                result = cls.model_validate(parse_json(cls, json_data), **kwargs)
                rows: list[BaseModel] = result.root  # type: ignore[attr-defined]
                keys = sum(len(row.model_fields_set) for row in rows)
            else:
                result = validate_json(json_data, **kwargs)
                keys = len(result.model_fields_set)
            refuse_repeated_keys(cls, json_data, keys, is_batch)
            return result
        except ValidationError as error:
            capped = cap_errors(cls, error, lambda: from_json(json_data), row_model, is_batch)
            on_refusal(capped)
            raise capped from None

    model.model_validate_json = classmethod(model_validate_json)  # type: ignore[method-assign,assignment]


def refuse_repeated_keys(model: type[BaseModel], body: str | bytes | bytearray, keys: int, is_batch: bool) -> None:
    """A ValidationError naming each key given twice in a row; nothing when there is none.

    Each key takes a colon, so a body with no more colons than the keys the rows were built from has no key twice:
    only then (a colon inside a text value, or a repeated key) is it parsed a second time to find out.
    """
    colons = body.count(b":" if isinstance(body, bytes | bytearray) else ":")  # type: ignore[arg-type]
    if colons <= keys:
        return
    parsed = json.loads(body, object_pairs_hook=_KeysOnce)
    rows = parsed if is_batch else [parsed]
    prefix: Callable[[int], tuple[int | str, ...]] = (lambda i: (*BATCH_PREFIX, i)) if is_batch else (lambda i: ())
    details = [
        _detail("duplicate_key", "Given more than once; send each field once", (*prefix(i), key))
        for i, row in enumerate(rows)
        if isinstance(row, _KeysOnce)
        for key in row.repeated
    ]
    if details:
        raise _invalid(model, details[:MAX_ERRORS])


class _KeysOnce(dict[str, Any]):
    """A JSON object that remembers the keys it was given more than once."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        seen: set[str] = set()
        self.repeated = [key for key, _ in pairs if key in seen or seen.add(key)]  # type: ignore[func-returns-value]


def cap_errors(
    model: type[BaseModel],
    error: ValidationError,
    parsed: Callable[[], Any],
    row_model: type[BaseModel],
    is_batch: bool,
) -> ValidationError:
    """`error` with at most MAX_ERRORS errors (plus one that gives the total) and no message over MAX_MESSAGE_CHARS."""
    total = error.error_count()
    if total <= MAX_ERRORS:
        details = error.errors(include_context=False, include_input=False, include_url=False)
        if all(len(d["msg"]) <= MAX_MESSAGE_CHARS for d in details):
            return error
        return _invalid(model, [_shortened(d) for d in details])
    rows = parsed() if is_batch else [parsed()]
    if not isinstance(rows, list):
        rows = [rows]
    first = first_errors(rows, row_model, BATCH_PREFIX if is_batch else None)
    summary = _detail("too_many_errors", f"{total:,} errors in all; only the first {len(first)} are listed", ())
    return _invalid(model, [*first, summary])


def first_errors(
    rows: Sequence[Any], row_model: type[BaseModel], prefix: tuple[str, ...] | None
) -> list[InitErrorDetails]:
    """The first MAX_ERRORS errors of `rows`, each row checked alone with at most MAX_ERRORS of its unknown keys.

    `prefix` None: one row, located by field alone; else rows located as (*prefix, index, field).
    """
    known = {field.alias or name for name, field in row_model.model_fields.items()}
    found: list[InitErrorDetails] = []
    for index, row in enumerate(rows):
        try:
            # The core validator, not model_validate_json: that one is hardened, and would come back here.
            row_model.__pydantic_validator__.validate_json(to_json(_fewer_unknown_keys(row, known)))
        except ValidationError as error:
            where: tuple[int | str, ...] = () if prefix is None else (*prefix, index)
            details = error.errors(include_context=False, include_input=False, include_url=False)
            found += [_shortened(d, where) for d in details[: MAX_ERRORS - len(found)]]
        if len(found) >= MAX_ERRORS:
            break
    return found


def _fewer_unknown_keys(row: Any, known: set[str]) -> Any:
    """`row` with only its first MAX_ERRORS keys the model does not know; anything but an object as it is."""
    if not isinstance(row, dict):
        return row
    unknown = [key for key in row if key not in known][:MAX_ERRORS]
    return {key: value for key, value in row.items() if key in known or key in unknown}


def _shortened(detail: Any, where: tuple[int | str, ...] = ()) -> InitErrorDetails:
    """One error as it was, with its message cut to MAX_MESSAGE_CHARS and its location after `where`."""
    message = detail["msg"]
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return _detail(detail["type"], message, (*where, *detail["loc"]))


def _detail(kind: str, message: str, loc: tuple[int | str, ...]) -> InitErrorDetails:
    """One error in pydantic's shape; braces in the message stay as they are."""
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input="")


def _invalid(model: type[BaseModel], details: list[InitErrorDetails]) -> ValidationError:
    return ValidationError.from_exception_data(model.__name__, details)
