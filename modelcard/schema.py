"""The request schema made from the card: one strict JSON field per feature, the contract every client sees.

Each feature's kind becomes a strict JSON type: a number a finite float within its accepted bounds, an
integer an integer, a boolean true/false, a category one of the text values seen in training (an enum in
the OpenAPI document, listed in the error). A feature that had blanks in training may be null or left out.
With `accept_unseen`, a category whose model answered a value it never saw in training
(`FeatureSpec.unseen_answered`) takes any text of at most MAX_UNSEEN_CHARS characters instead.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from modelcard.card import FeatureKind, FeatureSpec, ModelCard

# The longest category value accepted where values training never saw are (a value, not a document).
MAX_UNSEEN_CHARS = 200

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
    if accepts_unseen(spec, accept_unseen):
        annotation: Any = str
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
    elif accepts_unseen(spec, accept_unseen):
        seen = ", ".join(list(spec.categories or {})[:20])
        parts.append(
            f"text; seen in training: {seen}{', ...' if len(spec.categories or {}) > 20 else ''}; any other value "
            "is answered (the model does without it) and named in the answer's warnings"
        )
    elif spec.kind is FeatureKind.CATEGORY:
        parts.append(f"one of the {len(spec.categories or {})} values seen in training")
    if spec.nullable:
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
