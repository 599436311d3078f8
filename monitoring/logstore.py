"""The prediction log at rest: finished JSON-lines segments compacted into Parquet files, typed by the card.

A Parquet file holds one row per predicted row: time (timestamp, UTC), request_id, row (within its request),
source, model, latency_ms, class, probability, `probabilities` (a struct of every class's probability) and
`features` (a struct of the inputs, typed by the card: number float64, integer int64, boolean, category a
dictionary string, text a string, unused the JSON text of the value, so 42 and "42" stay apart). Pandas,
DuckDB and Spark read it as it is (`SELECT features.tenure FROM 'predictions-*.parquet'`). Reading a window
of both kinds is monitoring/logread.py's (docs/monitoring.md#compaction).

Usage: python -m monitoring.logstore convert DIR [--model TAG]: compact every finished JSON segment in DIR.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
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
from monitoring.retention import closed, log_files

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


def is_unused(field: pa.Field) -> bool:
    """Whether a Parquet file's input column is an unused feature's (its values are JSON text)."""
    return (field.metadata or {}).get(b"kind") == FeatureKind.UNUSED.value.encode()


class _Columns:
    """Parsed JSON lines gathered column by column until they become one record batch."""

    def __init__(self, features: Sequence[FeatureSpec], classes: Sequence[str]) -> None:
        self.features, self.classes = list(features), list(classes)
        self.schema = schema(features, classes)
        self._unused = {spec.name for spec in features if spec.kind is FeatureKind.UNUSED}
        self._empty()

    def _empty(self) -> None:
        """Start gathering afresh."""
        self.fixed: dict[str, list[Any]] = {name: [] for name in FIXED}
        self.inputs: dict[str, list[Any]] = {spec.name: [] for spec in self.features}
        self.every: dict[str, list[Any]] = {c: [] for c in self.classes}
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
        self._empty()
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
    done = 0
    try:
        for table in _arrow_json(path, features, classes):
            for batch in table.to_batches(max_chunksize=rows):
                yield batch
                done += batch.num_rows
    except pa.ArrowInvalid:
        # The lines before the refused block gave the same rows either way: carry on after them.
        for batch in _python_json(path, features, classes, rows):
            skip = min(done, batch.num_rows)
            done -= skip
            if skip < batch.num_rows:
                yield batch.slice(skip)


def _as_list(kind: pa.DataType) -> pa.DataType:
    """The type of a JSON line's column of values of this type (Arrow's JSON reader makes no dictionaries)."""
    return pa.list_(kind.value_type if pa.types.is_dictionary(kind) else kind)


def _arrow_json(path: Path, features: Sequence[FeatureSpec], classes: Sequence[str]) -> Iterator[pa.Table]:
    """A segment's whole lines parsed by Arrow, a block at a time, unnested to one row per predicted row."""
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
    # One thread: in a service worker the requests' threads need the other cores. Blocks of 4 MiB, so the peak
    # does not grow with the segment: 160 MB for a 64 MiB one (65 MB of it its pages), 200 MB parsed whole.
    reading = pj.ReadOptions(use_threads=False, block_size=4 * 2**20)
    cut = _whole_lines_end(path)  # a torn last line is left out, as the index leaves it
    if cut:
        # Arrow's own map: its buffers keep it alive, so nothing has to be closed while a batch refers to it.
        whole = pa.memory_map(str(path)).read_at(cut, 0)
        for batch in pj.open_json(pa.BufferReader(whole), reading, options):
            yield _unnested(pa.Table.from_batches([batch]), lines, target, features)


def _whole_lines_end(path: Path) -> int:
    """The offset just past the last newline of a file: where its whole lines end."""
    with path.open("rb") as file:
        end = file.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - 2**16)
            file.seek(start)
            found = file.read(end - start).rfind(b"\n")
            if found >= 0:
                return start + found + 1
            end = start
    return 0


def _unnested(parsed: pa.Table, lines: pa.Schema, target: pa.Schema, features: Sequence[FeatureSpec]) -> pa.Table:
    """Parsed lines (one a request, its rows in lists) as one row per predicted row, typed as `target`."""
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
    rows, classes = 0, classes_of(path)
    try:
        with pq.ParquetWriter(temporary, schema(features, classes), compression="zstd", use_dictionary=True) as out:
            pending: list[pa.RecordBatch] = []
            for batch in json_batches(path, features, classes):
                pending.append(batch)
                rows += batch.num_rows
                table = pa.Table.from_batches(pending)
                if table.num_rows >= ROW_GROUP_ROWS:  # whole row groups (a parsed block is smaller), the rest kept
                    out.write_table(table.slice(0, ROW_GROUP_ROWS).combine_chunks(), row_group_size=ROW_GROUP_ROWS)
                    pending = table.slice(ROW_GROUP_ROWS).to_batches()
            if pending:
                out.write_table(pa.Table.from_batches(pending).combine_chunks(), row_group_size=ROW_GROUP_ROWS)
        if rows:
            with temporary.open("rb") as written:
                os.fsync(written.fileno())
            os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    logger.info("Compacted %s into %s (%d rows)", path.name, target.name if rows else "nothing", rows)
    return target if rows else None


def compact_finished(
    directory: Path, model: str, features: Sequence[FeatureSpec], now: datetime, writer: str, most: int = 1
) -> int:
    """Compact up to `most` of the folder's finished JSON segments of `model` (a crashed writer's); return how many.

    One a sweep by default: a folder of old JSON segments, met by a service just switched to Parquet, must not
    keep its writer thread from the new predictions for minutes (`convert` does a folder at once).
    """
    done = tried = 0
    for f in closed(log_files(directory), now):
        if tried >= most:
            break
        if f.kind != PREFIX or f.path.suffix != ".jsonl" or model_of(f.path) not in (model, None):
            continue
        tried += 1
        try:
            compact(f.path, features, writer)
            done += 1
        except (OSError, pa.ArrowException) as error:
            logger.warning("Could not compact %s (it is read as JSON meanwhile): %s", f.path.name, error)
    return done


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
