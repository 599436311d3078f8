"""One codec per wire format: a request decoded into rows of feature values, predictions encoded back.

A row is a tuple of one request row's values in the card's feature order (None for a blank): the shape every
codec decodes to and the handler (serving/handler.py) makes one FeatureTable of. Decoding checks the rows
with the input models BentoML built for the two APIs (hardened by serving/jsoninput.py), so a mistake is
refused the same way on every path, as a ValidationError the codec turns into its 400 body.

- `JsonObjectCodec`: /prediction's one JSON object, answered with one object;
- `JsonListCodec`: /predict_batch's list of objects, answered with a list in the same order;
- `CsvCodec`: SageMaker's CSV rows (no header, the card's feature order), answered `class,p1,p2,...` a line;
- `record_rows`, `model_rows`, `field_row`: the in-process forms (the UI's records, BentoML's validated models
  and keyword arguments), which need no checking again.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, RootModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError, to_json

from modelcard.card import FeatureSpec, ModelCard
from modelcard.schema import field_name
from runtime.cells import CellError, cell_value
from runtime.predictor import Prediction
from serving.jsoninput import MAX_ERRORS, cap_errors
from serving.schemas import PredictionResult

Row = tuple[Any, ...]
JSON, CSV = "application/json", "text/csv"


class Codec(Protocol):
    """Bytes of one wire format to rows, and predictions back to bytes of that format."""

    content_type: str  # of the answers it encodes
    # One row, answered as one object (and micro-batched with the other single rows): reported as source "api".
    single: bool

    def decode(self, body: bytes) -> list[Row]:
        """The body's rows; ValidationError names what is wrong."""
        ...

    def encode(self, predictions: Sequence[Prediction]) -> bytes:
        """The answer's body."""
        ...

    def refusal(self, error: ValidationError) -> bytes:
        """The 400 body for a refused request."""
        ...


def result_fields(prediction: Prediction, model_tag: str) -> dict[str, object]:
    """One prediction as the JSON object PredictionResult serialises to (plain dicts: faster for 1,000 rows)."""
    fields: dict[str, object] = {
        "class": prediction.class_name,
        "probability": prediction.probability,
        "probabilities": prediction.probabilities,
        "model": model_tag,
    }
    if prediction.unseen:
        fields["warnings"] = [unseen_warning(name) for name in prediction.unseen]
    return fields


def unseen_warning(feature: str) -> dict[str, object]:
    """The answer's note that a feature's value was one training never saw (in the shape of an error's detail)."""
    message = "a value training never saw: the model answered without it (SERVING_UNSEEN_CATEGORIES=accept)"
    return {"type": "unseen_category", "loc": [feature], "msg": message}


def result(prediction: Prediction, model_tag: str) -> PredictionResult:
    """One prediction as the typed model BentoML's own @api methods document and serialise."""
    return PredictionResult.model_validate(result_fields(prediction, model_tag))


def validation_error_body(error: ValidationError, rows_located: bool = False) -> dict[str, Any]:
    """The 400 body BentoML sends for a pydantic validation error; `rows_located` drops the list model's "root"."""
    detail = error.errors(include_context=False, include_input=False)
    if rows_located:
        for entry in detail:
            entry["loc"] = entry["loc"][1:] if entry["loc"][:1] == ("root",) else entry["loc"]
    return {"error": f"{error.error_count()} validation error for {error.title}", "detail": detail}


class JsonObjectCodec:
    """One JSON object of features (the /prediction input model), answered with one JSON object."""

    content_type = JSON
    single = True

    def __init__(self, model: type[BaseModel], model_tag: str, rows_located: bool = False) -> None:
        self.model = model
        self.model_tag = model_tag
        self.rows_located = rows_located

    def decode(self, body: bytes) -> list[Row]:
        return [row_values(self.model.model_validate_json(body or b"{}"))]

    def encode(self, predictions: Sequence[Prediction]) -> bytes:
        (prediction,) = predictions
        return to_json(result_fields(prediction, self.model_tag))

    def refusal(self, error: ValidationError) -> bytes:
        return json.dumps(validation_error_body(error, self.rows_located)).encode()


class JsonListCodec:
    """A JSON list of feature objects (the /predict_batch input model, with its row limit), answered with a list."""

    content_type = JSON
    single = False

    def __init__(self, model: type[RootModel[Any]], model_tag: str, rows_located: bool = False) -> None:
        self.model = model
        self.model_tag = model_tag
        self.rows_located = rows_located

    def decode(self, body: bytes) -> list[Row]:
        return model_rows(self.model.model_validate_json(body or b"{}").root)

    def encode(self, predictions: Sequence[Prediction]) -> bytes:
        return to_json([result_fields(p, self.model_tag) for p in predictions])

    def refusal(self, error: ValidationError) -> bytes:
        return json.dumps(validation_error_body(error, self.rows_located)).encode()


class CsvCodec:
    """CSV rows without a header, the card's features in order, checked by the list input model.

    The row count is checked before any row is, and at most MAX_ERRORS errors are listed (with the total). The
    answer is one `class,p1,p2,...` line per row, the probabilities in the card's class order (GET /model).
    """

    content_type = f"{CSV}; charset=utf-8"
    single = False

    def __init__(
        self,
        batch: type[RootModel[Any]],
        single: type[BaseModel],
        card: ModelCard,
        max_rows: int,
        refused: Callable[[ValidationError], None],
    ) -> None:
        self.batch = batch
        self.row_model = single
        self.features = card.features
        self.max_rows = max_rows
        self.refused = refused  # told of every refused body, as the hardened JSON models tell it

    def decode(self, body: bytes) -> list[Row]:
        try:
            lines = [cells for cells in csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")) if cells]
        except (UnicodeDecodeError, csv.Error) as error:
            raise self._invalid(
                [_error("csv_invalid", "Invalid CSV: {error}", ("body",), {"error": str(error)})]
            ) from None
        if len(lines) > self.max_rows:
            message = "{rows} rows; send at most {limit} per call"
            raise self._invalid([_error("too_long", message, ("body",), {"rows": len(lines), "limit": self.max_rows})])
        names = [spec.name for spec in self.features]
        records: list[dict[str, Any]] = []
        errors: list[InitErrorDetails] = []
        for row, cells in enumerate(lines):
            shape_error = _shape_error(row, cells, names)
            if shape_error is not None:
                errors.append(shape_error)
                continue
            record = {}
            for spec, cell in zip(self.features, cells, strict=True):
                value = _cell_value(spec, cell, (row, spec.name), errors)
                if value is not None:  # a blank is left out: allowed where training had blanks, else "required"
                    record[spec.name] = value
            records.append(record)
        try:
            if errors:
                raise self._invalid(_listed(errors))
            return model_rows(self.batch.model_validate(records).root)
        except ValidationError as error:
            capped = error if errors else cap_errors(self.batch, error, lambda: records, self.row_model, is_batch=True)
            self.refused(capped)
            raise capped from None

    def encode(self, predictions: Sequence[Prediction]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([p.class_name, *p.probabilities.values()] for p in predictions)
        return buffer.getvalue().encode()

    def refusal(self, error: ValidationError) -> bytes:
        return json.dumps(validation_error_body(error, rows_located=True)).encode()

    def _invalid(self, errors: list[InitErrorDetails]) -> ValidationError:
        return ValidationError.from_exception_data(self.batch.__name__, errors)


def row_values(row: BaseModel) -> Row:
    """A validated request row's values (None for a blank), in the features' order."""
    # A row's fields are x0, x1, ... in the features' order, so its values are already in that order.
    return tuple(row.__dict__.values())


def model_rows(rows: Sequence[BaseModel]) -> list[Row]:
    """Validated request rows (instances of the input model) as rows."""
    return [row_values(row) for row in rows]


def field_row(fields: Mapping[str, Any], feature_count: int) -> Row:
    """One validated row given as its fields (what BentoML passes an @api method as keyword arguments)."""
    return tuple(fields.get(field_name(index)) for index in range(feature_count))


def record_rows(records: Sequence[Mapping[str, Any]], features: Sequence[FeatureSpec]) -> list[Row]:
    """Checked {feature name: value} records (the UI's; a missing key or None for a blank) as rows."""
    return [tuple(record.get(spec.name) for spec in features) for record in records]


def _listed(errors: list[InitErrorDetails]) -> list[InitErrorDetails]:
    """At most MAX_ERRORS of `errors`, and one that gives their number when there are more."""
    if len(errors) <= MAX_ERRORS:
        return errors
    summary = "{total} errors in all; only the first {shown} are listed"
    return [*errors[:MAX_ERRORS], _error("too_many_errors", summary, (), {"total": len(errors), "shown": MAX_ERRORS})]


def _error(
    kind: str, message: str, loc: tuple[int | str, ...], context: dict[str, Any] | None = None
) -> InitErrorDetails:
    """One error in pydantic's shape, so a CSV mistake reads like a JSON one."""
    return InitErrorDetails(type=PydanticCustomError(kind, message, context), loc=loc, input="")


def _shape_error(row: int, cells: list[str], names: list[str]) -> InitErrorDetails | None:
    """A header row, or a row with the wrong number of fields; None for a row of the right shape."""
    if row == 0 and [cell.strip() for cell in cells] == names:
        return _error("csv_header", "This is a header row; send the rows without one", (row,))
    if len(cells) == len(names):
        return None
    expected = f"{len(names)} columns, the features in this order: {', '.join(names)}"
    return _error(
        "csv_columns", "{got} columns, expected {expected}", (row,), {"got": len(cells), "expected": expected}
    )


def _cell_value(spec: FeatureSpec, text: str, loc: tuple[int, str], errors: list[InitErrorDetails]) -> Any:
    """One CSV cell as its feature's JSON value (None when empty); a cell that is no value of its kind is an error."""
    try:
        return cell_value(spec, text)
    except CellError as error:
        errors.append(InitErrorDetails(type=error.kind, loc=loc, input=text.strip()))
        return None
