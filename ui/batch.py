"""Read a CSV of rows for batch prediction, refusing bad files with a message that names the row or column.

Cells are read by their feature's kind: text as a category, a number, a whole number, or a boolean
(true/false, yes/no, 1/0); an empty cell is a blank. Each row is then checked by the API's own schema.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from modelcard.card import FeatureKind, FeatureSpec

BOOLEAN_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


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
    text = text.strip()
    if not text:
        return None
    where = f"Row {position}, column {spec.name}: {text!r}"
    if spec.kind is FeatureKind.CATEGORY:
        return text
    if spec.kind is FeatureKind.BOOLEAN:
        if text.lower() not in BOOLEAN_WORDS:
            raise BatchFileError(f"{where} is not true or false (also yes/no, 1/0).")
        return BOOLEAN_WORDS[text.lower()]
    try:
        number = float(text)
    except ValueError:
        raise BatchFileError(f"{where} is not a number.") from None
    if spec.kind is FeatureKind.INTEGER:
        if not number.is_integer():
            raise BatchFileError(f"{where} is not a whole number.")
        return int(number)
    return number


def results_csv(frame: pd.DataFrame) -> str:
    """The results table as CSV text."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()
