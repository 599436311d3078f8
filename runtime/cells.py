"""A text cell (of a CSV upload or a CSV request body) as its feature's JSON value, one way for every reader.

Cells are read by their feature's kind: text as a category, free text or an unused column's value (as
written), a number, a whole number, or a boolean (true/false, yes/no, 1/0); an empty cell is a blank (an empty
text where free text has no blanks). The value is then checked by the API's own schema, like any JSON value.
"""

from __future__ import annotations

from typing import Any

from modelcard.card import FeatureKind, FeatureSpec

BOOLEAN_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


class CellError(ValueError):
    """A cell that is no value of its feature's kind: `kind` is pydantic's error type for it, `message` says why."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def cell_value(spec: FeatureSpec, text: str) -> Any:
    """The cell as `spec`'s JSON value (None when empty); CellError when it is no value of that kind."""
    if spec.kind is FeatureKind.TEXT and not text.strip():
        return None if spec.nullable else ""  # a CSV cannot tell a blank from an empty text: the one allowed
    if spec.kind in (FeatureKind.TEXT, FeatureKind.UNUSED):
        return text if text.strip() else None  # a person's words, or an identifier: kept as written
    text = text.strip()
    if not text:
        return None
    if spec.kind is FeatureKind.CATEGORY:
        return text
    if spec.kind is FeatureKind.BOOLEAN:
        if text.lower() not in BOOLEAN_WORDS:
            raise CellError("bool_parsing", "is not true or false (also yes/no, 1/0)")
        return BOOLEAN_WORDS[text.lower()]
    try:
        number = float(text)
    except ValueError:
        raise CellError("float_parsing", "is not a number") from None
    if spec.kind is FeatureKind.INTEGER:
        if not number.is_integer():
            raise CellError("int_from_float", "is not a whole number")
        return int(number)
    return number  # bounds, NaN and infinities are the schema's to refuse
