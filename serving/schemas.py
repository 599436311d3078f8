"""Request and response models, built from the model card so the API always matches the model it serves.

Each feature's kind becomes a strict JSON type: a number a finite float within its accepted bounds, an
integer an integer, a boolean true/false, a category one of the text values seen in training (an enum in
the OpenAPI document, listed in the error). A feature that had blanks in training may be null or left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from modelcard.card import FeatureKind, FeatureSpec, ModelCard
from modelcard.table import FeatureTable, TableBuilder

_PYTHON_TYPES: dict[FeatureKind, type] = {
    FeatureKind.NUMBER: float,
    FeatureKind.INTEGER: int,
    FeatureKind.BOOLEAN: bool,
}


class PredictionResult(BaseModel):
    """The answer for one row of features."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True, protected_namespaces=())

    class_: str = Field(alias="class", description="the predicted class")
    probability: float = Field(description="probability of the predicted class")
    probabilities: dict[str, float] = Field(description="probability of every class")
    model: str = Field(description="tag of the model that answered")


class ModelInfo(BaseModel):
    """What the service is running: the model's tag, when it was made, and its card."""

    model_config = ConfigDict(protected_namespaces=())

    tag: str
    creation_time: str
    runtime: str
    card: ModelCard
    withheld: list[str] = Field(
        default_factory=list,
        description="what this service keeps from callers without the API key: the card's training rows "
        "(card.reference) and the executed notebook, unless SERVING_SHARE_TRAINING_ROWS allows them",
    )


def field_name(index: int) -> str:
    """The Python name of the index-th feature's field; its JSON name (alias) is the feature's own name.

    Feature names need not be identifiers, and may clash with pydantic's own attributes ("schema", "copy").
    """
    return f"x{index}"


def _feature_field(spec: FeatureSpec, example: Any) -> tuple[Any, Any]:
    """One strict field for one feature, documented with what training saw."""
    options: dict[str, Any] = {"alias": spec.name, "description": _describe(spec)}
    if spec.kind is FeatureKind.CATEGORY:
        # A Literal matches its values exactly ("1" is not 1), so it needs no strict mode.
        annotation: Any = Literal[tuple(spec.categories or {})]  # type: ignore[misc]
    else:
        annotation = _PYTHON_TYPES[spec.kind]
        options["strict"] = True  # "5.1", true or 12.0 for an integer are a client's mistakes, not values to guess
    if spec.kind in (FeatureKind.NUMBER, FeatureKind.INTEGER):
        options.update(ge=_bound(spec, spec.lower), le=_bound(spec, spec.upper))
    if spec.kind is FeatureKind.NUMBER:
        options["allow_inf_nan"] = False
    if example is not None:
        # OpenAPI 3.0 "example" (singular): BentoML's schema objects have no "examples".
        options["json_schema_extra"] = {"example": example}
    if spec.nullable:
        return annotation | None, Field(None, **options)
    return annotation, Field(**options)


def _bound(spec: FeatureSpec, value: float | None) -> float | int | None:
    """A bound in the feature's own type (a whole number for integers)."""
    if value is None:
        return None
    return int(value) if spec.kind is FeatureKind.INTEGER else value


def _describe(spec: FeatureSpec) -> str:
    """The field's description: the notebook's words, then what training saw and what is accepted."""
    parts = [spec.description or spec.title or spec.name]
    if spec.unit:
        parts[0] += f" ({spec.unit})"
    if spec.kind in (FeatureKind.NUMBER, FeatureKind.INTEGER) and spec.stats is not None:
        parts.append(
            f"training range {spec.stats.min:g} to {spec.stats.max:g}; accepted {spec.lower:g} to {spec.upper:g}"
        )
    elif spec.kind is FeatureKind.CATEGORY:
        parts.append(f"one of the {len(spec.categories or {})} values seen in training")
    if spec.nullable:
        parts.append("may be null or left out (blank in training)")
    return "; ".join(parts)


def features_model(card: ModelCard) -> type[BaseModel]:
    """The flat JSON object of one row's features; unknown fields are refused."""
    example = card.examples[0] if card.examples else {}
    fields = {
        field_name(index): _feature_field(spec, example.get(spec.name)) for index, spec in enumerate(card.features)
    }
    row_example = {spec.name: example.get(spec.name) for spec in card.features} if example else None
    return create_model(  # type: ignore[call-overload,no-any-return]
        "Features",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"example": row_example} if row_example else None),
        **fields,
    )


def row_values(row: BaseModel) -> tuple[Any, ...]:
    """A validated request row's values (None for a blank), in the features' order."""
    # A row's fields are x0, x1, ... in the features' order, so its values are already in that order.
    return tuple(row.__dict__.values())


def rows_to_table(tables: TableBuilder, rows: Sequence[BaseModel]) -> FeatureTable:
    """Validated request rows (instances of features_model) as the table every later step reads."""
    return tables.from_rows([row_values(row) for row in rows])


def fields_to_table(tables: TableBuilder, fields: dict[str, Any]) -> FeatureTable:
    """One validated row given as its fields (what BentoML passes as keyword arguments) as a table."""
    return tables.from_rows([[fields.get(field_name(index)) for index in range(len(tables.names))]])


def unseen_categories(error: ValidationError, card: ModelCard) -> list[str]:
    """The category features an error refused because their value was not one training saw."""
    categories = {spec.name for spec in card.features if spec.kind is FeatureKind.CATEGORY}
    return [
        str(entry["loc"][-1])
        for entry in error.errors(include_url=False)
        if entry["type"] == "literal_error" and entry["loc"] and str(entry["loc"][-1]) in categories
    ]
