"""Read a CSV of measurements for batch prediction, refusing bad files with a message that names the row or column."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ValidationError


class BatchFileError(ValueError):
    """A CSV the batch tab cannot use; the message is shown to the person as it is."""


def read_batch_csv(path: str | Path, schema: type[BaseModel], feature_names: list[str], max_rows: int) -> pd.DataFrame:
    """The file as a DataFrame, every feature column checked by the API's own schema; other columns kept."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as error:
        raise BatchFileError(f"Could not read the file as CSV: {error}") from error
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [name for name in feature_names if name not in frame.columns]
    if missing:
        raise BatchFileError(
            f"Missing column(s): {', '.join(missing)}. The file needs a header row with: {', '.join(feature_names)}."
        )
    if frame.empty:
        raise BatchFileError("The file has a header but no rows.")
    if len(frame) > max_rows:
        raise BatchFileError(f"The file has {len(frame):,} rows; at most {max_rows:,} can be predicted at once.")
    for position, row in enumerate(frame[feature_names].itertuples(index=False), start=1):
        _check_row(position, dict(zip(feature_names, row, strict=True)), schema)
    return frame.astype(dict.fromkeys(feature_names, float))


def _check_row(position: int, raw: dict[str, str], schema: type[BaseModel]) -> None:
    """Raise BatchFileError naming the row and column of the first bad value."""
    values: dict[str, object] = {}
    for name, text in raw.items():
        try:
            values[name] = float(text)
        except ValueError:
            raise BatchFileError(f"Row {position}, column {name}: {text!r} is not a number.") from None
    try:
        schema.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        column = first["loc"][0] if first["loc"] else "?"
        raise BatchFileError(f"Row {position}, column {column}: {raw.get(str(column))!r}: {first['msg']}.") from None


def results_csv(frame: pd.DataFrame) -> str:
    """The results table as CSV text."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()
