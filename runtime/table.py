"""A table of features: the one representation a request becomes, and that everything after validation reads.

Every request's codec decodes it to rows of values (serving/codecs.py), and `TableBuilder.from_rows` makes them
one FeatureTable; training's data frames become one with `FeatureTable.from_frame`. The runtimes feed it
to scikit-learn (`to_frame`, with the training dtypes) or to ONNX (`onnx_inputs`, one input per feature),
the prediction log writes its columns, and the metrics count them. Each column is one numpy array:

- number, integer, boolean: float64, NaN where missing (a boolean is 0.0 or 1.0);
- category and text: an object array of str, None where missing;
- unused (a column the model never reads): an object array of the JSON values as sent, None where missing.
  The model is handed the card's placeholder in its place (`to_frame`, `onnx_inputs`); the log keeps the values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelcard.card import FeatureKind, FeatureSpec

if TYPE_CHECKING:
    import pandas as pd

# ONNX element types of the inputs a compiled model may declare (onnxruntime's NodeArg.type).
ONNX_FLOAT, ONNX_DOUBLE, ONNX_INT64, ONNX_STRING = "tensor(float)", "tensor(double)", "tensor(int64)", "tensor(string)"


@dataclass(frozen=True)
class FeatureTable:
    """`rows` rows of features, one array per feature, in the card's feature order."""

    columns: dict[str, np.ndarray]
    rows: int
    # Some category is blank (None): ONNX takes text blanks as "", so only then does it need a converted copy.
    blank_categories: bool = True
    # The features the model never reads: fed as placeholders, their columns kept for the log alone.
    unused: frozenset[str] = frozenset()

    @classmethod
    def from_frame(cls, features: Sequence[FeatureSpec], frame: pd.DataFrame) -> FeatureTable:
        """A training or test DataFrame as a table: what a request for the same rows would become."""
        import pandas as pd

        columns = {}
        for spec in features:
            column = frame[spec.name]
            missing = column.isna().to_numpy()
            if spec.kind in OBJECT_KINDS:
                values = column.astype(object).to_numpy(dtype=object).copy()
                values[missing] = None
                plain = str if spec.kind is not FeatureKind.UNUSED else _json_scalar
                columns[spec.name] = np.array([None if v is None else plain(v) for v in values], dtype=object)
            else:
                numbers = pd.to_numeric(column.astype(object).where(~missing, np.nan), errors="coerce")
                columns[spec.name] = numbers.to_numpy(dtype=np.float64)
        return cls(columns, len(frame), unused=unused_names(features))

    def to_frame(self, features: Sequence[FeatureSpec]) -> pd.DataFrame:
        """A DataFrame with the training dtypes, as the notebook's own model saw its data."""
        import pandas as pd

        return pd.DataFrame({spec.name: _series(spec, self.columns[spec.name]) for spec in features})

    def onnx_inputs(self, input_types: Mapping[str, str]) -> dict[str, np.ndarray]:
        """One (rows, 1) array per ONNX input, typed as the compiled model declares it."""
        return {
            name: (
                _onnx_placeholder(kind, self.rows)
                if name in self.unused
                else _onnx_column(self.columns[name], kind, self.blank_categories)
            ).reshape(-1, 1)
            for name, kind in input_types.items()
        }

    def json_columns(self, features: Sequence[FeatureSpec]) -> dict[str, list[Any]]:
        """The columns as JSON values: numbers, whole numbers, true/false, text, and null where missing."""
        return {spec.name: json_values(spec)(self.columns[spec.name]) for spec in features}

    def records(self, features: Sequence[FeatureSpec]) -> list[dict[str, Any]]:
        """The rows as {name: JSON value} records."""
        columns = self.json_columns(features)
        return [{name: values[i] for name, values in columns.items()} for i in range(self.rows)]


class TableBuilder:
    """Makes FeatureTables for one model's features: made once, then used for every request.

    All numeric columns come from one float64 array and all text columns (category, text, unused) from one object
    array, built column-major so each column is a contiguous view: two numpy calls per request instead of one
    per feature.
    """

    def __init__(self, features: Sequence[FeatureSpec]) -> None:
        self.names = [spec.name for spec in features]
        self._numeric = [(i, spec.name) for i, spec in enumerate(features) if spec.kind not in OBJECT_KINDS]
        self._category = [(i, spec.name) for i, spec in enumerate(features) if spec.kind in OBJECT_KINDS]
        self._unused = unused_names(features)

    def from_rows(self, rows: Sequence[Sequence[Any]]) -> FeatureTable:
        """Validated rows, each its values in the features' order (None for a blank), as a table."""
        columns: dict[str, np.ndarray] = {}
        if self._numeric:
            # float64 turns None into NaN and True/False into 1.0/0.0 by itself.
            numbers = np.array([[row[i] for i, _ in self._numeric] for row in rows], dtype=np.float64, order="F")
            columns.update((name, numbers[:, j]) for j, (_, name) in enumerate(self._numeric))
        blank = False
        if self._category:
            values = [[row[i] for i, _ in self._category] for row in rows]
            texts = np.empty((len(rows), len(self._category)), dtype=object, order="F")
            texts[:] = values
            # In Python, not numpy: an elementwise comparison of an object array cost more than the rest here.
            blank = any(None in row_values for row_values in values)
            columns.update((name, texts[:, j]) for j, (_, name) in enumerate(self._category))
        return FeatureTable({name: columns[name] for name in self.names}, len(rows), blank, self._unused)


# The kinds whose columns hold Python objects (text, or an unused column's values as sent), not float64.
OBJECT_KINDS = frozenset({FeatureKind.CATEGORY, FeatureKind.TEXT, FeatureKind.UNUSED})


def unused_names(features: Sequence[FeatureSpec]) -> frozenset[str]:
    """The features the model never reads."""
    return frozenset(spec.name for spec in features if spec.kind is FeatureKind.UNUSED)


def json_values(spec: FeatureSpec) -> Callable[[np.ndarray], list[Any]]:
    """The function that turns one of `spec`'s columns into JSON values (choose it once, call it per row)."""
    if spec.kind in OBJECT_KINDS:
        return list
    if spec.kind is FeatureKind.INTEGER:
        return _integers
    if spec.kind is FeatureKind.BOOLEAN:
        return _booleans
    return _numbers


def _numbers(column: np.ndarray) -> list[Any]:
    return [None if v != v else v for v in column.tolist()]  # v != v: NaN, a blank


def _integers(column: np.ndarray) -> list[Any]:
    return [None if v != v else int(v) for v in column.tolist()]


def _booleans(column: np.ndarray) -> list[Any]:
    return [None if v != v else v == 1.0 for v in column.tolist()]


def _series(spec: FeatureSpec, column: np.ndarray) -> Any:
    """One column in the dtype it had in training."""
    import pandas as pd

    dtype = spec.dtype
    if spec.kind is FeatureKind.UNUSED:
        return pd.Series([spec.placeholder] * len(column), dtype=dtype)
    if spec.kind in (FeatureKind.CATEGORY, FeatureKind.TEXT):
        if dtype == "category":
            return pd.Categorical(column, categories=spec.dtype_categories or sorted(spec.categories or {}))
        if dtype == "object":
            # NaN marks a blank, as scikit-learn's imputers look for it, unless training's blanks were None.
            blank: Any = None if spec.blank_as_none else np.nan
            return pd.Series(np.where(column == None, blank, column), dtype=object)  # noqa: E711 - elementwise
        return pd.Series(column, dtype=dtype)
    missing = np.isnan(column)
    if spec.kind is FeatureKind.BOOLEAN:
        if dtype == "bool":
            return column.astype(bool)
        if dtype == "object":
            return pd.Series(np.where(missing, np.nan, column.astype(bool).astype(object)), dtype=object)
        return pd.Series([None if blank else bool(v) for blank, v in zip(missing, column, strict=True)], dtype=dtype)
    if spec.kind is FeatureKind.INTEGER and not missing.any() and dtype.startswith(("int", "uint")):
        return column.astype(dtype)
    if spec.kind is FeatureKind.INTEGER:
        return pd.Series(column).astype(dtype)  # a nullable dtype such as Int64: NaN becomes <NA>
    return column.astype(dtype)


def _json_scalar(value: Any) -> Any:
    """A training frame's value as the JSON scalar a request would send: numpy's as Python's, a date as text."""
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, str | int | float | bool) else str(value)


def _onnx_placeholder(onnx_type: str, rows: int) -> np.ndarray:
    """An input the model never reads, filled with a constant of its type."""
    if onnx_type == ONNX_STRING:
        return np.full(rows, "", dtype=object)
    dtypes = {ONNX_INT64: np.int64, ONNX_FLOAT: np.float32}
    return np.zeros(rows, dtype=dtypes.get(onnx_type, np.float64))


def _onnx_column(column: np.ndarray, onnx_type: str, blanks: bool) -> np.ndarray:
    """One column converted to the element type of its ONNX input (no copy where it already is)."""
    if onnx_type == ONNX_STRING:
        return np.array(["" if v is None else v for v in column], dtype=object) if blanks else column
    if onnx_type == ONNX_INT64:
        return column.astype(np.int64)
    if onnx_type == ONNX_DOUBLE:
        return column
    return column.astype(np.float32)
