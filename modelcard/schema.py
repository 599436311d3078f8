"""The request schema made from the card: one strict JSON field per feature, the contract every client sees.

Each feature's kind becomes a strict JSON type: a number a finite float within its accepted bounds, an
integer an integer, a boolean true/false, a category one of the text values seen in training (an enum in
the OpenAPI document, listed in the error), free text any string of at most its card's `max_chars`. A feature
that had blanks in training may be null or left out. A column the model never reads (an identifier) takes
any JSON scalar (text of at most MAX_UNUSED_CHARS), or nothing: it is only kept in the prediction log.
With `accept_unseen`, a category whose model answered a value it never saw in training
(`FeatureSpec.unseen_answered`) takes any text of at most MAX_UNSEEN_CHARS characters instead.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, create_model

from modelcard.card import FeatureKind, FeatureSpec, ModelCard

# The longest category value accepted where values training never saw are (a value, not a document).
MAX_UNSEEN_CHARS = 200
# The longest text accepted for a column the model never reads: an identifier or a reference, not a document.
MAX_UNUSED_CHARS = 1_000

_PYTHON_TYPES: dict[FeatureKind, type] = {
    FeatureKind.NUMBER: float,
    FeatureKind.INTEGER: int,
    FeatureKind.BOOLEAN: bool,
}


def field_name(index: int) -> str:
    """The Python name of the index-th feature's field; its JSON name (alias) is the feature's own name.

    Feature names need not be identifiers, and may clash with pydantic's own attributes ("schema", "copy").
    """
    return f"x{index}"


def accepts_unseen(spec: FeatureSpec, accept_unseen: bool) -> bool:
    """Whether the schema takes any text for this feature: asked for, and the model answered such a value."""
    return accept_unseen and spec.kind is FeatureKind.CATEGORY and bool(spec.unseen_answered)


def _feature_field(spec: FeatureSpec, example: Any, accept_unseen: bool = False) -> tuple[Any, Any]:
    """One strict field for one feature, documented with what training saw."""
    options: dict[str, Any] = {"alias": spec.name, "description": _describe(spec, accept_unseen)}
    if spec.kind is FeatureKind.UNUSED:
        return _unused_field(options, example)
    if spec.kind is FeatureKind.TEXT:
        annotation: Any = str
        options.update(strict=True, max_length=spec.text.max_chars if spec.text else None)
    elif accepts_unseen(spec, accept_unseen):
        annotation = str
        options.update(strict=True, min_length=1, max_length=MAX_UNSEEN_CHARS)
    elif spec.kind is FeatureKind.CATEGORY:
        # A Literal matches its values exactly ("1" is not 1), so it needs no strict mode.
        annotation = Literal[tuple(spec.categories or {})]  # type: ignore[misc]
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


def _unused_field(options: dict[str, Any], example: Any) -> tuple[Any, Any]:
    """Any JSON scalar or nothing, taken as sent ("5" stays text and 5 a number): the model never reads it."""
    if example is not None:
        options["json_schema_extra"] = {"example": example}
    return UnusedValue, Field(None, **options)


def _json_scalar(value: Any) -> Any:
    """The value of a column the model never reads, if it is one: one clear error, not one per JSON type."""
    if value is None or isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, str) and len(value) <= MAX_UNUSED_CHARS:
        return value
    raise ValueError(f"must be text of at most {MAX_UNUSED_CHARS} characters, a number, true, false or null")


UnusedValue = Annotated[
    Any,
    PlainValidator(_json_scalar),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "maxLength": MAX_UNUSED_CHARS}, {"type": "number"}, {"type": "boolean"}],
            "nullable": True,  # OpenAPI 3.0's null, as BentoML writes it for the other optional fields
        }
    ),
]


def _bound(spec: FeatureSpec, value: float | None) -> float | int | None:
    """A bound in the feature's own type (a whole number for integers)."""
    if value is None:
        return None
    return int(value) if spec.kind is FeatureKind.INTEGER else value


def _describe(spec: FeatureSpec, accept_unseen: bool = False) -> str:
    """The field's description: the notebook's words, then what training saw and what is accepted."""
    parts = [spec.description or spec.title or spec.name]
    if spec.unit:
        parts[0] += f" ({spec.unit})"
    if spec.kind in (FeatureKind.NUMBER, FeatureKind.INTEGER) and spec.stats is not None:
        parts.append(
            f"training range {spec.stats.min:g} to {spec.stats.max:g}; accepted {spec.lower:g} to {spec.upper:g}"
        )
    elif spec.kind is FeatureKind.UNUSED:
        parts.append("not used by the model: any text, number or true/false, or left out; kept in the prediction log")
    elif spec.kind is FeatureKind.TEXT and spec.text is not None:
        parts.append(
            f"free text of at most {spec.text.max_chars} characters (training: {spec.text.chars.min:g} to "
            f"{spec.text.chars.max:g}, median {spec.text.chars.quantiles[5]:g})"
        )
    elif accepts_unseen(spec, accept_unseen):
        seen = ", ".join(list(spec.categories or {})[:20])
        parts.append(
            f"text; seen in training: {seen}{', ...' if len(spec.categories or {}) > 20 else ''}; any other value "
            "is answered (the model does without it) and named in the answer's warnings"
        )
    elif spec.kind is FeatureKind.CATEGORY:
        parts.append(f"one of the {len(spec.categories or {})} values seen in training")
    if spec.nullable and spec.kind is not FeatureKind.UNUSED:
        parts.append("may be null or left out (blank in training)")
    return "; ".join(parts)


def features_model(card: ModelCard, accept_unseen: bool = False) -> type[BaseModel]:
    """The flat JSON object of one row's features; unknown fields are refused.

    `accept_unseen`: take values training never saw for the categories whose model answers them.
    """
    example = card.examples[0] if card.examples else {}
    fields = {
        field_name(index): _feature_field(spec, example.get(spec.name), accept_unseen)
        for index, spec in enumerate(card.features)
    }
    row_example = {spec.name: example.get(spec.name) for spec in card.features} if example else None
    return create_model(  # type: ignore[call-overload,no-any-return]
        "Features",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"example": row_example} if row_example else None),
        **fields,
    )
