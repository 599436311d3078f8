"""Reads of the prediction log's window over both kinds of files: Parquet, and the JSON segments still being written.

Readers take the window's batches of only the columns they ask for; a segment whose Parquet file exists is
read from that alone. The outcome index's look-ups in Parquet files (by request and by key column) are here too.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from modelcard.card import FeatureSpec
from monitoring.logstore import PREFIX, ROW_GROUP_ROWS, is_unused, json_batches
from monitoring.retention import FILE_NAME


def prediction_files(directory: Path) -> list[Path]:
    """The folder's prediction files of both kinds, by name; a JSON segment already compacted is left out."""
    found = [p for p in directory.glob(f"{PREFIX}-*") if p.suffix in (".jsonl", ".parquet") and FILE_NAME.match(p.name)]
    parquet = {p.stem for p in found if p.suffix == ".parquet"}
    return sorted(p for p in found if p.suffix == ".parquet" or p.stem not in parquet)


def may_hold(path: Path, since: datetime | None, until: datetime | None) -> bool:
    """False when the file's day lies wholly outside the window."""
    match = FILE_NAME.match(path.name)
    if match is None:
        return True
    day = datetime.strptime(match["day"], "%Y-%m-%d").date()
    return (since is None or day >= since.astimezone(UTC).date()) and (
        until is None or day <= until.astimezone(UTC).date()
    )


def read_window(
    directory: Path,
    columns: Sequence[str],
    since: datetime | None = None,
    until: datetime | None = None,
    features: Sequence[FeatureSpec] = (),
    rows: int = ROW_GROUP_ROWS,
) -> Iterator[pa.Table]:
    """The window's rows (since <= time < until), oldest file first, as tables of these columns only.

    A column is a top-level name ("model", "class") or "features.<name>" / "probabilities.<class>"; one a file
    lacks (an older model's) comes back as nulls. JSON segments are typed by `features` (a feature not among
    them comes back as nulls from a JSON segment). Each table holds at most `rows` rows.
    """
    for path in prediction_files(directory):
        if not may_hold(path, since, until):
            continue
        try:
            batches: Iterable[pa.RecordBatch | pa.Table] = (
                _parquet_batches(path, columns, since, until, rows)
                if path.suffix == ".parquet"
                else _json_window(path, features, columns, since, until, rows)
            )
            for batch in batches:
                table = _project(
                    pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch, columns
                )
                table = _in_window(table, since, until)
                if table.num_rows:
                    yield table
        except FileNotFoundError:
            continue  # deleted by retention, or compacted, while the window was read


def _json_window(
    path: Path,
    features: Sequence[FeatureSpec],
    columns: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    rows: int,
) -> Iterator[pa.RecordBatch]:
    """A JSON segment's batches typed by the features the columns name."""
    wanted = {c.split(".", 1)[1] for c in columns if c.startswith("features.")}
    classes = [c.split(".", 1)[1] for c in columns if c.startswith("probabilities.")]
    return json_batches(path, [spec for spec in features if spec.name in wanted], classes, rows)


def _parquet_batches(
    path: Path, columns: Sequence[str], since: datetime | None, until: datetime | None, rows: int
) -> Iterator[pa.RecordBatch]:
    """A Parquet file's batches of the columns it has, row groups wholly outside the window skipped."""
    file = pq.ParquetFile(path)
    names = set(file.schema_arrow.names) | {
        f"{top.name}.{child.name}" for top in file.schema_arrow if pa.types.is_struct(top.type) for child in top.type
    }
    present = sorted({"time", *(c for c in columns if c in names)})
    groups = [g for g in range(file.num_row_groups) if _group_in_window(file, g, since, until)]
    if groups:
        yield from file.iter_batches(batch_size=rows, row_groups=groups, columns=present)


def _group_in_window(file: pq.ParquetFile, group: int, since: datetime | None, until: datetime | None) -> bool:
    """False when a row group's time statistics put it wholly outside the window."""
    low, high = _min_max(file, group, "time")
    return low is None or ((since is None or high >= since) and (until is None or low < until))


def _min_max(file: pq.ParquetFile, group: int, name: str) -> tuple[Any, Any]:
    """A row group's smallest and largest value of a column, from its statistics; (None, None) without them."""
    meta = file.metadata.row_group(group)
    for i in range(meta.num_columns):
        column = meta.column(i)
        if column.path_in_schema == name and column.statistics is not None and column.statistics.has_min_max:
            return column.statistics.min, column.statistics.max
    return None, None


def models_in_window(
    directory: Path, since: datetime | None, until: datetime | None, sources: Sequence[str] | None = None
) -> tuple[Counter[str], str | None]:
    """Rows per model in the window (of these sources; all when None), and the model of its newest row.

    A Parquet row group wholly inside the window, of one model, is counted from its statistics, unread.
    """
    by_model: Counter[str] = Counter()
    newest: tuple[datetime, str] | None = None
    for path in prediction_files(directory):
        if not may_hold(path, since, until):
            continue
        try:
            for stamp, model, counts in _model_counts(path, since, until, sources):
                by_model.update(counts)
                if newest is None or stamp >= newest[0]:
                    newest = (stamp, model)
        except FileNotFoundError:
            continue  # deleted by retention, or compacted, meanwhile
    return by_model, None if newest is None else newest[1]


def _model_counts(
    path: Path, since: datetime | None, until: datetime | None, sources: Sequence[str] | None
) -> Iterator[tuple[datetime, str, Counter[str]]]:
    """Per part of one file: its newest row's time and model, and its rows per model in the window."""
    parts: Iterable[pa.Table]
    if path.suffix == ".parquet":
        file = pq.ParquetFile(path)
        parts = []
        for group in range(file.num_row_groups):
            low, high = _min_max(file, group, "time")
            first, last = _min_max(file, group, "model")
            whole = low is not None and (since is None or low >= since) and (until is None or high < until)
            if whole and first is not None and first == last and not sources:
                yield high, str(first), Counter({str(first): file.metadata.row_group(group).num_rows})
            elif _group_in_window(file, group, since, until):
                parts.append(_in_window(file.read_row_group(group, columns=["time", "model", "source"]), since, until))
    else:
        parts = (
            _in_window(_project(pa.Table.from_batches([b]), ["model", "source"]), since, until)
            for b in json_batches(path, (), ())
        )
    for part in parts:
        if sources:
            part = part.filter(pc.is_in(pc.cast(part.column("source"), pa.string()), value_set=pa.array(list(sources))))
        if part.num_rows:
            last = int(np.argmax(part.column("time").to_numpy()))
            counts = Counter(dict(zip(*_value_counts(part.column("model")), strict=True)))
            yield part.column("time")[last].as_py(), str(part.column("model")[last].as_py()), counts


def _value_counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    """A column's distinct values as text and how often each occurs."""
    counted = pc.value_counts(pc.cast(column, pa.string())).to_pylist()
    return [str(pair["values"]) for pair in counted], [pair["counts"] for pair in counted]


def _project(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """The table as these columns, nested ones by their dotted name; a missing one as nulls (time always kept)."""
    arrays, names = [], []
    for name in ["time", *[c for c in columns if c != "time"]]:
        top, _, child = name.partition(".")
        if top not in table.column_names:
            column = pa.nulls(table.num_rows)
        elif not child:
            column = table.column(top)
        else:
            struct = table.column(top)
            has = child in {f.name for f in struct.type}
            column = pc.struct_field(struct, child) if has else pa.nulls(table.num_rows)
        arrays.append(column)
        names.append(name)
    return pa.table(arrays, names=names)


def _in_window(table: pa.Table, since: datetime | None, until: datetime | None) -> pa.Table:
    """The table's rows with since <= time < until."""
    time = table.column("time")
    if not table.num_rows:
        return table
    low, high = pc.min_max(time).values()
    if (since is None or low.as_py() >= since) and (until is None or high.as_py() < until):
        return table  # wholly inside: nothing to copy
    keep = None
    if since is not None:
        keep = pc.greater_equal(time, pa.scalar(since, time.type))
    if until is not None:
        before = pc.less(time, pa.scalar(until, time.type))
        keep = before if keep is None else pc.and_(keep, before)
    return table if keep is None else table.filter(keep)


def request_starts(path: Path) -> tuple[list[str], np.ndarray]:
    """A Parquet file's requests: each one's id and the file row it starts at (its rows follow it)."""
    table = pq.read_table(path, columns=["request_id", "row"])
    starts = np.flatnonzero(table.column("row").to_numpy() == 0)
    return pc.take(table.column("request_id"), pa.array(starts)).to_pylist(), starts


def key_values(path: Path, name: str) -> tuple[list[Any], np.ndarray]:
    """One input's values in every row of a Parquet file (decoded from JSON for an unused one), and the rows' `row`."""
    file = pq.ParquetFile(path)
    features = file.schema_arrow.field("features").type
    if features.get_field_index(name) < 0:
        return [], np.empty(0, np.int64)
    table = file.read(columns=[f"features.{name}", "row"])
    values = pc.struct_field(table.column("features"), name).to_pylist()
    if is_unused(features.field(name)):
        values = [None if v is None else json.loads(v) for v in values]
    return values, table.column("row").to_numpy()


def requests_at(path: Path, starts: Sequence[int]) -> list[tuple[int, dict[str, Any]]]:
    """The requests starting at these file rows of a Parquet file, each shaped as its JSON line was."""
    file = pq.ParquetFile(path)
    bounds = np.cumsum([0] + [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)])
    # A request (at most a batch's rows) lies in its first row's group and perhaps the next one.
    first = {int(np.searchsorted(bounds, start, "right")) - 1 for start in starts}
    groups = sorted({g for f in first for g in (f, f + 1) if 0 <= g < file.num_row_groups})
    if not groups:
        return []
    table = file.read_row_groups(groups)
    offset = np.concatenate([np.arange(bounds[g], bounds[g + 1]) for g in groups])
    rows = table.column("row").to_numpy()
    found = []
    for start in starts:
        at = int(np.searchsorted(offset, start))
        if at >= len(offset) or offset[at] != start or rows[at] != 0:
            continue
        end = at + 1
        while end < len(rows) and rows[end] == end - at:
            end += 1
        found.append((start, _as_line(table.slice(at, end - at))))
    return found


def _as_line(rows: pa.Table) -> dict[str, Any]:
    """One request's rows of a Parquet file as the JSON line the log wrote for it."""
    first = rows.slice(0, 1).to_pylist()[0]
    inputs = rows.schema.field("features").type
    unused = {f.name for f in inputs if is_unused(f)}
    features = {
        f.name: [json.loads(v) if f.name in unused and v is not None else v for v in column]
        for f, column in zip(
            inputs, (pc.struct_field(rows.column("features"), f.name).to_pylist() for f in inputs), strict=True
        )
    }
    every = rows.column("probabilities")
    return {
        "time": first["time"].isoformat(),
        "request_id": first["request_id"],
        "source": first["source"],
        "model": first["model"],
        "latency_ms": first["latency_ms"],
        "rows": rows.num_rows,
        "features": features,
        "class": rows.column("class").to_pylist(),
        "probability": rows.column("probability").to_pylist(),
        "probabilities": {f.name: pc.struct_field(every, f.name).to_pylist() for f in every.type},
    }


def parquet_records(path: Path, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    """A Parquet file's rows in the window as predlog.read_records gives them (time as ISO text, as logged)."""
    table = _in_window(pq.read_table(path), since, until)
    unused = {f.name for f in table.schema.field("features").type if is_unused(f)}
    records = table.to_pylist()
    for record in records:
        record["time"] = record["time"].isoformat()
        record["features"] = {
            name: json.loads(value) if name in unused and value is not None else value
            for name, value in record["features"].items()
        }
    return records
