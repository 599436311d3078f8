"""The prediction log at rest: finished JSON-lines segments compacted into Parquet, and reads over both kinds.

A Parquet file holds one row per predicted row: time (timestamp, UTC), request_id, row (within its request),
source, model, latency_ms, class, probability, `probabilities` (a struct of every class's probability) and
`features` (a struct of the inputs, typed by the card: number float64, integer int64, boolean, category a
dictionary string, text a string, unused the JSON text of the value, so 42 and "42" stay apart). Pandas,
DuckDB and Spark read it as it is (`SELECT features.tenure FROM 'predictions-*.parquet'`).

Readers take the window's batches of only the columns they ask for, from the Parquet files and from the JSON
segments still being written; a segment whose Parquet file exists is read from that (docs/monitoring.md).

Usage: python -m monitoring.logstore convert DIR [--model TAG]: compact every finished JSON segment in DIR.
"""

from __future__ import annotations

import argparse
import json
import logging
import mmap
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq
from pydantic_core import from_json

from modelcard.card import FeatureKind, FeatureSpec
from monitoring.retention import FILE_NAME, closed, log_files

logger = logging.getLogger(__name__)

# A Parquet file's row groups: large enough for zstd and dictionaries to pay, small enough to read one at a time.
ROW_GROUP_ROWS = 65_536
PREFIX = "predictions"
FIXED = ["time", "request_id", "row", "source", "model", "latency_ms", "class", "probability"]
_CATEGORY = pa.dictionary(pa.int32(), pa.string())
_TYPES = {
    FeatureKind.NUMBER: pa.float64(),
    FeatureKind.INTEGER: pa.int64(),
    FeatureKind.BOOLEAN: pa.bool_(),
    FeatureKind.CATEGORY: _CATEGORY,
    FeatureKind.TEXT: pa.string(),
    FeatureKind.UNUSED: pa.string(),
}


def arrow_type(spec: FeatureSpec) -> pa.DataType:
    """The Parquet (Arrow) type of a feature's column."""
    return _TYPES[spec.kind]


def schema(features: Sequence[FeatureSpec], classes: Sequence[str]) -> pa.Schema:
    """The Parquet schema of a log whose model reads these features and answers these classes."""
    fields = [
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("request_id", pa.string()),
        pa.field("row", pa.int32()),
        pa.field("source", _CATEGORY),
        pa.field("model", _CATEGORY),
        pa.field("latency_ms", pa.float32()),
        pa.field("class", _CATEGORY),
        pa.field("probability", pa.float32()),
        pa.field("probabilities", pa.struct([pa.field(c, pa.float32()) for c in classes])),
        # Each input's kind in its field's metadata: an unused feature's JSON text is told from free text by it.
        pa.field(
            "features",
            pa.struct([pa.field(s.name, arrow_type(s), metadata={"kind": s.kind.value}) for s in features]),
        ),
    ]
    return pa.schema(fields)


class _Columns:
    """Parsed JSON lines gathered column by column until they become one record batch."""

    def __init__(self, features: Sequence[FeatureSpec], classes: Sequence[str]) -> None:
        self.features, self.classes = list(features), list(classes)
        self.schema = schema(features, classes)
        self.fixed: dict[str, list[Any]] = {name: [] for name in FIXED}
        self.inputs: dict[str, list[Any]] = {spec.name: [] for spec in features}
        self.every: dict[str, list[Any]] = {c: [] for c in classes}
        self._unused = {spec.name for spec in features if spec.kind is FeatureKind.UNUSED}
        self.rows = 0

    def add(self, line: dict[str, Any]) -> None:
        """Add one logged request's rows; KeyError/TypeError/ValueError (nothing added) when it is not one."""
        count = line["rows"]
        stamp = datetime.fromisoformat(line["time"])
        classes, probabilities = line["class"], line["probability"]
        features = line["features"]
        columns = [features.get(name) or [None] * count for name in self.inputs]
        every = line.get("probabilities") or {}
        if len(classes) != count or len(probabilities) != count or any(len(c) != count for c in columns):
            raise ValueError("columns of another length than the rows")
        fixed = self.fixed
        fixed["time"] += [stamp] * count
        fixed["request_id"] += [line["request_id"]] * count
        fixed["row"] += range(count)
        fixed["source"] += [line["source"]] * count
        fixed["model"] += [line["model"]] * count
        fixed["latency_ms"] += [line["latency_ms"]] * count
        fixed["class"] += classes
        fixed["probability"] += probabilities
        for name, column in zip(self.inputs, columns, strict=True):
            if name in self._unused:
                column = [None if v is None else json.dumps(v, ensure_ascii=False) for v in column]
            self.inputs[name] += column
        for c in self.classes:
            self.every[c] += every.get(c) or [None] * count
        self.rows += count

    def batch(self) -> pa.RecordBatch:
        """What was gathered as one record batch of `schema`, and start again."""
        arrays: list[pa.Array] = [pa.array(self.fixed[f.name], f.type) for f in self.schema if f.name in self.fixed]
        every, inputs = self.schema.field("probabilities").type, self.schema.field("features").type
        arrays.append(_struct([pa.array(self.every[f.name], f.type) for f in every], every, self.rows))
        arrays.append(_struct([pa.array(self.inputs[f.name], f.type) for f in inputs], inputs, self.rows))
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        self.__init__(self.features, self.classes)  # type: ignore[misc]
        return batch


def _struct(children: list[pa.Array], kind: pa.StructType, rows: int) -> pa.Array:
    """A struct column of these children; a struct of no fields still has `rows` rows."""
    if not children:
        return pa.array([{}] * rows, kind)
    return pa.StructArray.from_arrays(children, fields=list(kind))


def json_batches(
    path: Path, features: Sequence[FeatureSpec], classes: Sequence[str], rows: int = ROW_GROUP_ROWS
) -> Iterator[pa.RecordBatch]:
    """A JSON-lines segment's requests as record batches of about `rows` rows; unreadable lines are skipped.

    Arrow's JSON reader parses the segment's whole lines in C++, about 2.5 times faster than line by line in
    Python (docs/monitoring.md#compaction); a segment it refuses (a torn line inside it, a line of another
    shape, an unused feature whose values it cannot write back as their JSON text) is read line by line.
    """
    try:
        table = _arrow_json(path, features, classes)
    except pa.ArrowInvalid:
        yield from _python_json(path, features, classes, rows)
    else:
        yield from table.to_batches(max_chunksize=rows)


def _as_list(kind: pa.DataType) -> pa.DataType:
    """The type of a JSON line's column of values of this type (Arrow's JSON reader makes no dictionaries)."""
    return pa.list_(kind.value_type if pa.types.is_dictionary(kind) else kind)


def _arrow_json(path: Path, features: Sequence[FeatureSpec], classes: Sequence[str]) -> pa.Table:
    """A segment's whole lines parsed by Arrow and unnested to one row per predicted row, typed as `schema`."""
    target = schema(features, classes)
    typed = [spec for spec in features if spec.kind is not FeatureKind.UNUSED]
    lines = pa.schema(
        [
            pa.field("time", pa.timestamp("us", tz="UTC")),
            *(pa.field(name, pa.string()) for name in ("request_id", "source", "model")),
            pa.field("latency_ms", pa.float64()),
            pa.field("class", pa.list_(pa.string())),
            pa.field("probability", pa.list_(pa.float64())),
            pa.field("probabilities", pa.struct([pa.field(c, pa.list_(pa.float64())) for c in classes])),
            pa.field("features", pa.struct([pa.field(s.name, _as_list(arrow_type(s))) for s in typed])),
        ]
    )
    # An unused feature's values are any JSON scalars: Arrow infers their type, _json_text writes them back.
    options = pj.ParseOptions(explicit_schema=lines, unexpected_field_behavior="infer")
    parsed = lines.empty_table()
    with path.open("rb") as file:
        if os.fstat(file.fileno()).st_size:
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                cut = data.rfind(b"\n") + 1  # a torn last line is left out, as the index leaves it
                if cut:
                    whole = pa.py_buffer(data).slice(0, cut)
                    try:
                        # One thread: in a service worker the requests' threads need the other cores.
                        reading = pj.ReadOptions(use_threads=False)
                        parsed = pj.read_json(pa.BufferReader(whole), read_options=reading, parse_options=options)
                    finally:
                        whole = None  # the map cannot close while Arrow holds a view of it
    classes_column = parsed.column("class").combine_chunks()
    parents = pc.list_parent_indices(classes_column)
    starts = np.asarray(classes_column.offsets)[:-1]
    columns: list[pa.Array] = [pc.take(parsed.column(name), parents) for name in ("time", "request_id")]
    columns.append(pa.array(np.arange(len(parents)) - starts[np.asarray(parents)], pa.int32()))
    columns += [pc.take(parsed.column(name), parents) for name in ("source", "model", "latency_ms")]
    columns += [pc.list_flatten(classes_column), pc.list_flatten(parsed.column("probability"))]
    for top in ("probabilities", "features"):
        struct = parsed.column(top)
        present = {f.name for f in struct.type}
        children = [
            pc.list_flatten(pc.struct_field(struct, f.name)) if f.name in present else pa.nulls(len(parents))
            for f in target.field(top).type
        ]
        if top == "features":
            children = [
                _json_text(c) if s.kind is FeatureKind.UNUSED else c for s, c in zip(features, children, strict=True)
            ]
        if any(len(child) != len(parents) for child in children):
            raise pa.ArrowInvalid("a line's columns are not as long as its rows")
        arrays = [pa.chunked_array(c).combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in children]
        names = [f.name for f in target.field(top).type]
        columns.append(
            pa.StructArray.from_arrays(arrays, names=names)
            if names
            else pa.array([{}] * len(parents), target.field(top).type)
        )
    if any(len(column) != len(parents) for column in columns):
        raise pa.ArrowInvalid("a line's columns are not as long as its rows")
    return pa.table(columns, names=target.names).cast(target)


def _json_text(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Values Arrow parsed from JSON as their JSON text again; ArrowInvalid where it could differ from json.dumps."""
    kind = values.type
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_integer(kind):
        return pc.cast(values, pa.string())
    if pa.types.is_boolean(kind):
        return pc.if_else(values, "true", "false")
    if pa.types.is_string(kind) and not pc.any(pc.match_substring_regex(values, r'["\\\x00-\x1f]')).as_py():
        return pc.binary_join_element_wise('"', values, '"', "")
    raise pa.ArrowInvalid(f"cannot write {kind} values back as their JSON text")


def _python_json(
    path: Path, features: Sequence[FeatureSpec], classes: Sequence[str], rows: int
) -> Iterator[pa.RecordBatch]:
    """A segment read line by line: any line that does not parse is skipped with a warning."""
    columns, skipped = _Columns(features, classes), 0
    with path.open("rb") as lines:
        for line in lines:
            try:
                columns.add(from_json(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                skipped += 1  # a torn last line (a process killed mid-write), or not a prediction line
            if columns.rows >= rows:
                yield columns.batch()
    if columns.rows:
        yield columns.batch()
    if skipped:
        logger.warning("Skipped %d unreadable lines in %s", skipped, path)


def classes_of(path: Path) -> list[str]:
    """The classes the first readable line of a JSON segment gives every probability of (in its order)."""
    with path.open("rb") as lines:
        for line in lines:
            try:
                return list(from_json(line).get("probabilities") or {})
            except (ValueError, AttributeError):
                continue
    return []


def model_of(path: Path) -> str | None:
    """The model tag of the first readable line of a JSON segment."""
    with path.open("rb") as lines:
        for line in lines:
            try:
                return str(from_json(line)["model"])
            except (ValueError, KeyError, TypeError):
                continue
    return None


def parquet_path(path: Path) -> Path:
    """The Parquet file a JSON segment is compacted into: same stem."""
    return path.with_suffix(".parquet")


def compact(path: Path, features: Sequence[FeatureSpec], writer: str = "") -> Path | None:
    """Write a finished JSON segment as Parquet beside it, then delete it; None when it held no prediction.

    The file is written under a hidden temporary name (no reader's pattern matches it) and renamed when whole,
    so a reader sees the JSON segment, or the Parquet file, never half of one; the JSON goes after the rename.
    """
    target = parquet_path(path)
    temporary = path.with_name(f".{target.name}.{writer or os.getpid()}.tmp")
    rows = 0
    try:
        with pq.ParquetWriter(
            temporary, schema(features, classes_of(path)), compression="zstd", use_dictionary=True
        ) as out:
            for batch in json_batches(path, features, classes_of(path)):
                out.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
                rows += batch.num_rows
        if rows:
            with temporary.open("rb") as written:
                os.fsync(written.fileno())
            os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    logger.info("Compacted %s into %s (%d rows)", path.name, target.name if rows else "nothing", rows)
    return target if rows else None


def compact_finished(directory: Path, model: str, features: Sequence[FeatureSpec], now: datetime, writer: str) -> int:
    """Compact the folder's finished JSON segments of `model` (a crashed writer's too); return how many."""
    done = 0
    for f in closed(log_files(directory), now):
        if f.kind != PREFIX or f.path.suffix != ".jsonl" or model_of(f.path) not in (model, None):
            continue
        try:
            compact(f.path, features, writer)
            done += 1
        except (OSError, pa.ArrowException) as error:
            logger.warning("Could not compact %s (it is read as JSON meanwhile): %s", f.path.name, error)
    return done


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


def convert(directory: Path, model: str | None = None, now: datetime | None = None) -> int:
    """Compact every finished JSON prediction segment in the folder, each by its model's card; return how many."""
    from monitoring.drift import load_card

    done = 0
    files = [f for f in closed(log_files(directory), now or datetime.now(UTC)) if f.kind == PREFIX]
    cards: dict[str, list[FeatureSpec]] = {}
    for f in files:
        if f.path.suffix != ".jsonl":
            continue
        tag = model or model_of(f.path)
        if tag is None:
            logger.warning("%s holds no prediction: left as it is", f.path.name)
            continue
        if tag not in cards:
            cards[tag] = load_card(tag).features
        compact(f.path, cards[tag])
        done += 1
    return done


def main(argv: list[str] | None = None) -> int:
    """Entry point: `convert DIR` compacts the finished JSON segments; 2 when a model's card cannot be read."""
    from monitoring.drift import CannotCheck

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m monitoring.logstore", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("convert", help="compact every finished JSON prediction segment into Parquet")
    command.add_argument("directory", type=Path, help="prediction-log folder")
    command.add_argument("--model", help="model tag whose card types the columns (default: each file's own)")
    args = parser.parse_args(argv)
    try:
        done = convert(args.directory, args.model)
    except CannotCheck as problem:
        logger.error("Cannot convert: %s", problem)
        return 2
    logger.info("Converted %d JSON segments in %s", done, args.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())


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
    if _is_unused(features.field(name)):
        values = [None if v is None else json.loads(v) for v in values]
    return values, table.column("row").to_numpy()


def _is_unused(field: pa.Field) -> bool:
    return (field.metadata or {}).get(b"kind") == FeatureKind.UNUSED.value.encode()


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
    unused = {f.name for f in inputs if _is_unused(f)}
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
    unused = {f.name for f in table.schema.field("features").type if _is_unused(f)}
    records = table.to_pylist()
    for record in records:
        record["time"] = record["time"].isoformat()
        record["features"] = {
            name: json.loads(value) if name in unused and value is not None else value
            for name, value in record["features"].items()
        }
    return records
