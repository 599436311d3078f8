"""The prediction log at rest: finished segments compacted into Parquet, read back by window with the live JSON."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelcard.card import FeatureKind, FeatureSpec
from monitoring import logstore
from monitoring.logread import models_in_window, prediction_files, read_window
from monitoring.logstore import compact, convert
from monitoring.outcomes import Outcome, PredictionIndex
from monitoring.predlog import PredictionLog, read_records
from monitoring.retention import Retention, log_files, next_segment, to_delete
from runtime.predictor import Prediction
from tests.fakes import CHURN_ROW, make_churn_card, table_of, unused_feature

CARD = make_churn_card()
FEATURES = [*CARD.features, unused_feature("customer_id")]
YES = Prediction("yes", 0.75, {"no": 0.25, "yes": 0.75})
NOON = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _log(
    directory: Path, rows: list[dict], compact_segments: bool, clock: list[float] | None = None, keep_days: float = 30
) -> None:
    """Log each row as one request (ids req-0, req-1, ...) through the real writer, then close it."""
    stamps = list(clock or [])
    log = PredictionLog(
        directory,
        "churn_clf:v1",
        FEATURES,
        compact=compact_segments,
        retention=Retention(max_age_days=keep_days),
        clock=lambda: stamps.pop(0) if stamps else NOON.timestamp(),
    )
    for i, row in enumerate(rows):
        log.record(f"req-{i}", "api", table_of(FEATURES, [row]), [YES], 0.002)
    log.close()


def _rows(count: int) -> list[dict]:
    return [{**CHURN_ROW, "tenure": i, "customer_id": 42 if i % 2 else "42"} for i in range(count)]


def _read(directory: Path, columns: list[str], **window: datetime) -> dict[str, list]:
    tables = list(read_window(directory, columns, features=FEATURES, **window))
    return {c: [v for t in tables for v in t.column(c).to_pylist()] for c in ["time", *columns]}


def test_a_finished_segment_becomes_parquet_with_the_same_rows_typed_by_the_card(tmp_path: Path) -> None:
    _log(tmp_path, _rows(5), compact_segments=True)
    (path,) = tmp_path.iterdir()
    assert path.suffix == ".parquet" and path.name.startswith("predictions-2026-11-20-")
    table = pq.read_table(path)
    features = table.schema.field("features").type
    assert str(features.field("tenure").type) == "int64"
    assert str(features.field("monthlycharges").type) == "double"
    assert str(features.field("seniorcitizen").type) == "bool"
    assert str(features.field("contract").type).startswith("dictionary<values=string")
    assert str(table.schema.field("time").type) == "timestamp[us, tz=UTC]"
    rows = table.to_pylist()
    assert [r["request_id"] for r in rows] == [f"req-{i}" for i in range(5)]
    assert rows[1]["features"] == {**CHURN_ROW, "tenure": 1, "customer_id": "42"}  # 42 as its JSON text
    assert rows[0]["features"]["customer_id"] == '"42"'  # the string "42", kept apart from the number
    assert rows[0]["class"] == "yes" and rows[0]["probabilities"] == {"no": 0.25, "yes": 0.75}
    assert rows[0]["time"] == NOON and rows[0]["row"] == 0 and rows[0]["source"] == "api"


def test_without_compaction_the_segment_stays_json_and_reads_the_same(tmp_path: Path) -> None:
    _log(tmp_path / "json", _rows(5), compact_segments=False)
    _log(tmp_path / "parquet", _rows(5), compact_segments=True)
    (path,) = (tmp_path / "json").iterdir()
    assert path.suffix == ".jsonl"
    columns = ["request_id", "class", "probabilities.yes", "features.tenure", "features.contract"]
    assert _read(tmp_path / "json", columns) == _read(tmp_path / "parquet", columns)


def test_a_torn_json_tail_is_left_out_of_the_parquet_file(tmp_path: Path) -> None:
    _log(tmp_path, _rows(3), compact_segments=False)
    (path,) = tmp_path.iterdir()
    with path.open("ab") as file:
        file.write(b'{"time":"2026-11-20T12:00:00+00:00","request_id":"torn","sou')
    compact(path, FEATURES)
    assert not path.exists()
    assert pq.read_table(logstore.parquet_path(path)).column("request_id").to_pylist() == ["req-0", "req-1", "req-2"]


def test_the_temporary_file_is_never_read_and_a_json_segment_with_its_parquet_is_read_once(tmp_path: Path) -> None:
    _log(tmp_path, _rows(3), compact_segments=False)
    (path,) = tmp_path.iterdir()
    (tmp_path / f".{path.stem}.parquet.123.tmp").write_bytes(b"half a file")
    assert prediction_files(tmp_path) == [path]
    copy = path.read_bytes()
    compact(path, FEATURES)
    path.write_bytes(copy)  # as between the rename and the JSON's deletion
    assert prediction_files(tmp_path) == [logstore.parquet_path(path)]
    assert len(_read(tmp_path, ["request_id"])["request_id"]) == 3


def test_a_window_is_read_across_parquet_and_live_json_segments(tmp_path: Path) -> None:
    hour = 3600.0
    _log(tmp_path, _rows(3), True, [NOON.timestamp() - 2 * hour, NOON.timestamp() - hour, NOON.timestamp()])
    _log(tmp_path, _rows(2), False, [NOON.timestamp() + hour, NOON.timestamp() + 2 * hour])
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".jsonl", ".parquet"]
    window = _read(
        tmp_path,
        ["request_id", "features.tenure"],
        since=NOON - timedelta(hours=1),
        until=NOON + 2 * timedelta(hours=1),
    )
    assert window["request_id"] == ["req-1", "req-2", "req-0"]
    assert window["features.tenure"] == [1, 2, 0]
    assert _read(tmp_path, ["features.no_such_feature"])["features.no_such_feature"] == [None] * 5


def test_a_crashed_writers_finished_json_segment_is_compacted_by_the_next_writer(tmp_path: Path) -> None:
    day_before = (NOON - timedelta(days=1)).timestamp()
    _log(tmp_path, _rows(2), False, [day_before, day_before])
    (left,) = tmp_path.iterdir()
    _log(tmp_path, _rows(1), True)  # its first sweep finds yesterday's segment closed
    assert not left.exists() and logstore.parquet_path(left).exists()
    older = [(NOON - timedelta(days=d)).timestamp() for d in (3, 2)]
    for stamp in older:
        _log(tmp_path / "many", _rows(1), False, [stamp])
    assert logstore.compact_finished(tmp_path / "many", "churn_clf:v1", FEATURES, NOON, "w") == 1  # one a sweep
    assert sorted(p.suffix for p in (tmp_path / "many").iterdir()) == [".jsonl", ".parquet"]


def test_retention_counts_and_deletes_parquet_files_like_json_ones(tmp_path: Path) -> None:
    old = (NOON - timedelta(days=40)).timestamp()
    _log(tmp_path, _rows(2), True, [old, old], keep_days=100)
    _log(tmp_path, _rows(2), False, keep_days=100)
    files = log_files(tmp_path)
    assert sorted(f.path.suffix for f in files) == [".jsonl", ".parquet"]
    doomed, _ = to_delete(files, Retention(max_age_days=30), NOON)
    assert [f.path.suffix for f in doomed] == [".parquet"]
    (parquet,) = [f for f in files if f.path.suffix == ".parquet"]
    day = parquet.day.strftime("%Y-%m-%d")
    assert next_segment(tmp_path, day, parquet.writer) == parquet.segment + 1  # a compacted segment still counts


def test_the_conversion_command_compacts_old_segments_by_each_models_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = (NOON - timedelta(days=2)).timestamp()
    _log(tmp_path, _rows(4), False, [old] * 4)
    (path,) = tmp_path.iterdir()
    asked: list[str] = []

    def card_of(tag: str) -> object:
        asked.append(tag)
        return type("Card", (), {"features": FEATURES})()

    monkeypatch.setattr("monitoring.drift.load_card", card_of)
    assert logstore.main(["convert", str(tmp_path)]) == 0
    assert asked == ["churn_clf:v1"] and not path.exists()
    assert pq.read_table(logstore.parquet_path(path)).num_rows == 4
    assert convert(tmp_path) == 0  # nothing left to convert


def test_every_kind_has_a_parquet_type() -> None:
    specs = [FeatureSpec.model_construct(name=kind.value, kind=kind) for kind in FeatureKind]
    assert {f.name for f in logstore.schema(specs, ["a"]).field("features").type} == {k.value for k in FeatureKind}


def test_an_unused_key_column_in_parquet_is_matched_by_its_logged_value(tmp_path: Path) -> None:
    _log(tmp_path, [{**CHURN_ROW, "customer_id": f"c-{i}"} for i in range(3)] + [{**CHURN_ROW, "customer_id": 7}], True)
    index = PredictionIndex(tmp_path)
    by_text, by_number, unknown = index.find_keys(
        [
            Outcome(None, 0, "yes", {"customer_id": "c-1"}),
            Outcome(None, 0, "yes", {"customer_id": "7"}),
            Outcome(None, 0, "yes", {"customer_id": "c-9"}),
        ]
    )
    assert by_text is not None and by_text.request_id == "req-1"
    assert by_number is not None and by_number.request_id == "req-3" and by_number.class_name == "yes"
    assert unknown is None


def test_arrows_reader_and_the_line_by_line_one_give_the_same_batches(tmp_path: Path) -> None:
    stamps = [NOON.timestamp() + i for i in range(4)]
    log = PredictionLog(tmp_path, "churn_clf:v1", FEATURES, clock=lambda: stamps.pop(0) if stamps else 0.0)
    log.record("one", "api", table_of(FEATURES, [{**CHURN_ROW, "customer_id": "c-é"}]), [YES], 0.002)
    rows = [
        {**CHURN_ROW, "tenure": 3, "totalcharges": 99.5, "customer_id": None},
        {**CHURN_ROW, "contract": "two_year"},
    ]
    log.record("batch", "batch", table_of(FEATURES, rows), [YES, YES], 0.003)
    log.close()
    (path,) = tmp_path.iterdir()
    with path.open("ab") as file:
        file.write(b'{"time":"2026-11-20T12:00:09+00:00","request_id":"torn","sou')
    fast = pa.concat_tables(logstore._arrow_json(path, FEATURES, CARD.class_names))
    slow = pa.Table.from_batches(list(logstore._python_json(path, FEATURES, CARD.class_names, 100)))
    assert fast.to_pylist() == slow.to_pylist()
    assert fast.schema == slow.schema == logstore.schema(FEATURES, CARD.class_names)
    assert fast.column("row").to_pylist() == [0, 0, 1] and fast.column("request_id").to_pylist()[1:] == ["batch"] * 2
    assert fast.to_pylist()[0]["features"]["customer_id"] == '"c-é"'


def test_values_arrow_cannot_write_back_as_their_json_text_are_read_line_by_line(tmp_path: Path) -> None:
    _log(tmp_path, _rows(4), compact_segments=False)  # customer_id 42 and "42": Arrow would make both one type
    (path,) = tmp_path.iterdir()
    with pytest.raises(pa.ArrowInvalid):
        list(logstore._arrow_json(path, FEATURES, CARD.class_names))
    batches = list(logstore.json_batches(path, FEATURES, CARD.class_names))
    assert [r["features"]["customer_id"] for b in batches for r in b.to_pylist()] == ['"42"', "42", '"42"', "42"]


def test_read_records_gives_compacted_rows_as_it_gives_json_ones(tmp_path: Path) -> None:
    _log(tmp_path / "json", _rows(3), compact_segments=False)
    _log(tmp_path / "parquet", _rows(3), compact_segments=True)
    from_json, from_parquet = read_records(tmp_path / "json"), read_records(tmp_path / "parquet")
    assert [r["features"] for r in from_parquet] == [r["features"] for r in from_json]
    assert [(r["time"], r["request_id"], r["row"], r["class"]) for r in from_parquet] == [
        (r["time"], r["request_id"], r["row"], r["class"]) for r in from_json
    ]
    assert from_parquet[0]["probabilities"] == {"no": 0.25, "yes": 0.75}
    assert read_records(tmp_path / "parquet", since=NOON + timedelta(seconds=1)) == []


def test_rows_per_model_come_from_statistics_or_rows_as_the_window_and_sources_ask(tmp_path: Path) -> None:
    hour = 3600.0
    _log(tmp_path, _rows(3), True, [NOON.timestamp() - 2 * hour, NOON.timestamp() - hour, NOON.timestamp()])
    log = PredictionLog(tmp_path, "churn_clf:v2", FEATURES, compact=True, clock=lambda: NOON.timestamp() + hour)
    log.record("other", "ui", table_of(FEATURES, [CHURN_ROW]), [YES], 0.002)
    log.close()
    assert models_in_window(tmp_path, None, None) == (Counter({"churn_clf:v1": 3, "churn_clf:v2": 1}), "churn_clf:v2")
    part = models_in_window(tmp_path, NOON - timedelta(minutes=90), NOON + timedelta(minutes=30))
    assert part == (Counter({"churn_clf:v1": 2}), "churn_clf:v1")  # a row group only partly in the window is read
    assert models_in_window(tmp_path, None, None, ["api"]) == (Counter({"churn_clf:v1": 3}), "churn_clf:v1")
