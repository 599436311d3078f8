"""Read a CSV of rows for batch prediction, refusing bad files with a message that names the row or column.

Cells are read by their feature's kind (runtime/cells.py, as SageMaker's CSV is); each row is then checked by the
API's own schema.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from modelcard.card import FeatureKind, FeatureSpec
from runtime.cells import CellError, cell_value


class BatchFileError(ValueError):
    """A CSV the batch tab cannot use; the message is shown to the person as it is."""


def read_batch_csv(
    path: str | Path, schema: type[BaseModel], features: list[FeatureSpec], max_rows: int
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The file as read (every column kept, as text) and one checked record per row."""
    names = [spec.name for spec in features]
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as error:
        raise BatchFileError(f"Could not read the file as CSV: {error}") from error
    frame.columns = [str(c).strip() for c in frame.columns]
    # A column the model never reads may be left out, as a request may leave it out.
    for spec in features:
        if spec.kind is FeatureKind.UNUSED and spec.name not in frame.columns:
            frame[spec.name] = ""
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise BatchFileError(
            f"Missing column(s): {', '.join(missing)}. The file needs a header row with: {', '.join(names)}."
        )
    if frame.empty:
        raise BatchFileError("The file has a header but no rows.")
    if len(frame) > max_rows:
        raise BatchFileError(f"The file has {len(frame):,} rows; at most {max_rows:,} can be predicted at once.")
    records = [
        _record(position, dict(zip(names, cells, strict=True)), features, schema)
        for position, cells in enumerate(frame[names].itertuples(index=False), start=1)
    ]
    return frame, records


def _record(position: int, cells: dict[str, str], features: list[FeatureSpec], schema: type[BaseModel]) -> dict:
    """One row's cells as JSON values, checked; BatchFileError names the row and column of the first bad one."""
    record = {spec.name: _cell(position, spec, cells[spec.name]) for spec in features}
    try:
        schema.model_validate({name: value for name, value in record.items() if value is not None})
    except ValidationError as error:
        first = error.errors()[0]
        column = first["loc"][0] if first["loc"] else "?"
        raise BatchFileError(f"Row {position}, column {column}: {cells.get(str(column))!r}: {first['msg']}.") from None
    return record


def _cell(position: int, spec: FeatureSpec, text: str) -> Any:
    """One cell as the JSON value of its kind; None for an empty cell."""
    try:
        return cell_value(spec, text)
    except CellError as error:
        raise BatchFileError(f"Row {position}, column {spec.name}: {text.strip()!r} {error.message}.") from None


def results_csv(frame: pd.DataFrame) -> str:
    """The results table as CSV text."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()
