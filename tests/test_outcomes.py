"""Outcomes: the outcome log's lines, read back last-wins, and the index that matches them with logged predictions."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitoring.logstore import compact
from monitoring.monitor import Monitor, OutcomesOff
from monitoring.outcomes import Logged, Outcome, OutcomeLog, PredictionIndex, ReportedOutcome, read_outcomes
from monitoring.predlog import PredictionLog
from runtime.predictor import Prediction
from runtime.table import FeatureTable
from tests.fakes import CLASSES, FEATURES, make_card, table_of

ROW = [5.1, 3.5, 1.4, 0.2]
SPECS = make_card().features
SETOSA = Prediction("setosa", 0.9, dict(zip(CLASSES, [0.9, 0.05, 0.05], strict=True)))
VIRGINICA = Prediction("virginica", 0.8, dict(zip(CLASSES, [0.1, 0.1, 0.8], strict=True)))


def rows(count: int = 1) -> FeatureTable:
    return table_of(SPECS, [dict(zip(FEATURES, ROW, strict=True))] * count)


def _lines(directory: Path, pattern: str = "outcomes-*.jsonl") -> list[dict]:
    return [json.loads(line) for path in sorted(directory.glob(pattern)) for line in path.read_text().splitlines()]


def _predictions(directory: Path, *requests: tuple[str, list[Prediction]]) -> None:
    """Log these requests' predictions, written and closed before the test reads them."""
    log = PredictionLog(directory, "iris_clf:v1", SPECS)
    for request_id, predictions in requests:
        log.record(request_id, "batch" if len(predictions) > 1 else "api", rows(len(predictions)), predictions, 0.001)
    log.close()


def test_each_report_is_one_columnar_line(tmp_path: Path) -> None:
    log = OutcomeLog(tmp_path, "iris_clf:v1", flush_every_s=0.02)
    log.record("fb-1", [Outcome("req-1", 0, "setosa"), Outcome("req-2", 3, "virginica")])
    log.record("fb-2", [Outcome("req-3", 0, "versicolor")])
    log.record("fb-3", [])  # nothing reported, nothing written
    log.close()
    first, second = _lines(tmp_path)
    assert first == {
        "time": first["time"],
        "feedback_id": "fb-1",
        "model": "iris_clf:v1",
        "rows": 2,
        "request_id": ["req-1", "req-2"],
        "row": [0, 3],
        "label": ["setosa", "virginica"],
    }
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert second["rows"] == 1
    (path,) = tmp_path.glob("*.jsonl")
    assert path.name.startswith(f"outcomes-{datetime.now(UTC):%Y-%m-%d}-")


def test_close_writes_what_is_queued(tmp_path: Path) -> None:
    log = OutcomeLog(tmp_path, "m", flush_every_s=3600)
    for index in range(200):
        log.record(f"fb-{index}", [Outcome(f"req-{index}", 0, "setosa")])
    log.close()  # what SIGTERM leads to (Monitor.close), long before the next flush was due
    assert len(read_outcomes(tmp_path)) == 200


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    dropped: list[int] = []
    log = OutcomeLog(tmp_path, "m", max_pending=0, on_drop=dropped.append)
    log.record("fb-1", [Outcome("a", 0, "setosa"), Outcome("b", 0, "setosa")])
    log.close()
    assert dropped == [2] and log.dropped == 2
    assert read_outcomes(tmp_path) == []


def test_an_unwritable_folder_drops_counts_logs_once_and_recovers(tmp_path: Path, caplog) -> None:
    blocked = tmp_path / "log"
    blocked.write_text("a file where the folder should be")
    dropped: list[int] = []
    log = OutcomeLog(blocked, "m", on_drop=dropped.append, flush_every_s=0.02)
    with caplog.at_level("ERROR", logger="monitoring.predlog"):
        for index in range(4):
            log.record(f"fb-{index}", [Outcome(f"lost-{index}", 0, "setosa")])
            time.sleep(0.05)
    assert sum(dropped) == 4 and log.failing
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].startswith("Outcome log cannot write to")
    blocked.unlink()  # space is back
    log.record("fb-kept", [Outcome("kept", 0, "setosa")])
    log.close()
    assert [o.request_id for o in read_outcomes(blocked)] == ["kept"]
    assert not log.failing


def test_read_outcomes_keeps_the_last_per_row_and_the_window(tmp_path: Path) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def line(hours_ago: float, request_ids: list[str], row: list[int], label: list[str]) -> str:
        stamp = (now - timedelta(hours=hours_ago)).isoformat()
        record = {"time": stamp, "feedback_id": "f", "model": "m", "rows": len(row)}
        return json.dumps({**record, "request_id": request_ids, "row": row, "label": label}) + "\n"

    (tmp_path / "outcomes-2026-11-25-a-1-0000.jsonl").write_text(
        line(3, ["a", "a", "b"], [0, 1, 0], ["setosa", "setosa", "setosa"])
        + line(1, ["a"], [0], ["virginica"])  # corrects a's row 0
        + line(2, ["b"], [0], ["versicolor"])  # corrects b's report in the other file, which is older
        + '{"time": "x"}\n'  # not an outcome line
        + '{"time": "2026-'  # a torn last line
    )
    (tmp_path / "outcomes-2026-11-25-b-2-0000.jsonl").write_text(
        line(3, ["b"], [0], ["setosa"])  # older than the correction in the other file: it loses
    )
    (tmp_path / "outcomes-2026-11-23-a-1-0000.jsonl").write_text(line(40, ["old"], [0], ["setosa"]))
    (tmp_path / "outcomes-2026-10-01-a-1-0000.jsonl").write_text(line(55 * 24, ["ancient"], [0], ["setosa"]))
    reported = read_outcomes(tmp_path, since=now - timedelta(hours=24))
    assert [(o.request_id, o.row, o.label) for o in reported] == [
        ("a", 1, "setosa"),
        ("b", 0, "versicolor"),
        ("a", 0, "virginica"),
    ]
    assert reported[0] == ReportedOutcome(now - timedelta(hours=3), "a", 1, "setosa")
    assert {o.request_id for o in read_outcomes(tmp_path)} == {"a", "b", "old", "ancient"}
    assert [o.request_id for o in read_outcomes(tmp_path, until=now - timedelta(hours=30))] == ["ancient", "old"]


def test_read_outcomes_breaks_a_tie_in_time_by_file_order(tmp_path: Path) -> None:
    stamp = "2026-11-25T12:00:00+00:00"
    for name, label in (("outcomes-2026-11-25-a-1-0000.jsonl", "setosa"), ("outcomes-2026-11-25-a-1-0001.jsonl", "x")):
        record = {"time": stamp, "feedback_id": "f", "model": "m", "rows": 1, "request_id": ["a"], "row": [0]}
        (tmp_path / name).write_text(json.dumps({**record, "label": [label]}) + "\n")
    assert [o.label for o in read_outcomes(tmp_path)] == ["x"]


def test_the_index_finds_single_and_batch_rows(tmp_path: Path) -> None:
    _predictions(tmp_path, ("single", [SETOSA]), ("batch", [SETOSA, VIRGINICA, SETOSA]))
    index = PredictionIndex(tmp_path)
    single, batch_row, past_the_rows, unknown = index.find([("single", 0), ("batch", 1), ("batch", 3), ("nope", 0)])
    assert isinstance(single, Logged) and isinstance(batch_row, Logged)
    assert (single.request_id, single.row, single.class_name, single.source) == ("single", 0, "setosa", "api")
    assert (batch_row.row, batch_row.class_name, batch_row.probability) == (1, "virginica", 0.8)
    assert batch_row.probabilities == {"setosa": 0.1, "versicolor": 0.1, "virginica": 0.8}
    assert batch_row.model == "iris_clf:v1" and batch_row.time.tzinfo is not None
    assert past_the_rows is None and unknown is None
    assert index.find([("single", 1)]) == [None] and index.find([]) == []


def test_the_index_reads_on_finds_appended_lines_and_forgets_deleted_files(tmp_path: Path) -> None:
    _predictions(tmp_path, ("first", [SETOSA]))
    index = PredictionIndex(tmp_path)
    assert index.find([("second", 0)]) == [None]
    _predictions(tmp_path, ("second", [VIRGINICA]))  # a new writer: a new file
    path = min(tmp_path.glob("predictions-*.jsonl"))  # the first writer's
    with path.open("a") as file:  # and a line appended to the first file
        first = json.loads(path.read_text().splitlines()[0])
        file.write(json.dumps({**first, "request_id": "third"}, separators=(",", ":")) + "\n")
    found = index.find([("first", 0), ("second", 0), ("third", 0)])
    assert [f.class_name if f else None for f in found] == ["setosa", "virginica", "setosa"]
    for file_path in tmp_path.glob("predictions-*.jsonl"):
        file_path.unlink()
    assert index.find([("first", 0), ("second", 0)]) == [None, None]
    assert index._files == {}


def test_the_index_ignores_torn_tails_and_foreign_lines_until_they_are_whole(tmp_path: Path) -> None:
    _predictions(tmp_path, ("whole", [SETOSA]))
    path = next(tmp_path.glob("predictions-*.jsonl"))
    line = path.read_text().splitlines()[0]
    torn = line.replace('"whole"', '"torn"')
    with path.open("a") as file:
        file.write('{"time": "x"}\n{"time":"2026","request_id":"foreign"}\n' + torn[:120])
    index = PredictionIndex(tmp_path)
    assert index.find([("whole", 0), ("torn", 0), ("foreign", 0)])[1:] == [None, None]
    with path.open("a") as file:
        file.write(torn[120:] + "\n")  # the rest of the line arrives
    (found,) = index.find([("torn", 0)])
    assert found is not None and found.class_name == "setosa"


def test_a_file_cut_back_or_replaced_is_indexed_again(tmp_path: Path) -> None:
    _predictions(tmp_path, ("a", [SETOSA]), ("b", [SETOSA]))
    path = next(tmp_path.glob("predictions-*.jsonl"))
    index = PredictionIndex(tmp_path)
    assert None not in index.find([("a", 0), ("b", 0)])
    first = path.read_text().splitlines()[0]
    path.write_text(first + "\n")  # smaller than what was indexed
    assert [f is not None for f in index.find([("a", 0), ("b", 0)])] == [True, False]


def test_a_reused_request_id_takes_the_newest_line(tmp_path: Path) -> None:
    now = time.time()
    stamps = [now - 60, now]
    log = PredictionLog(tmp_path, "iris_clf:v1", SPECS, clock=lambda: stamps.pop(0) if stamps else now)
    log.record("reused", "api", rows(), [VIRGINICA], 0.001)  # an older line, written first
    log.record("reused", "api", rows(), [SETOSA], 0.001)
    log.close()
    (found,) = PredictionIndex(tmp_path).find([("reused", 0)])
    assert found is not None and found.class_name == "setosa"
    # by time, not by where the line is: the older line written to a later file still loses
    old = json.loads(next(tmp_path.glob("predictions-*.jsonl")).read_text().splitlines()[0])
    later = tmp_path / "predictions-2099-01-01-z-9-0000.jsonl"
    later.write_text(json.dumps({**old, "class": ["versicolor"]}, separators=(",", ":")) + "\n")
    (found,) = PredictionIndex(tmp_path).find([("reused", 0)])
    assert found is not None and found.class_name == "setosa"


def test_an_odd_request_id_is_found_as_it_was_logged(tmp_path: Path) -> None:
    odd = 'quo"te\\back ü'  # the route refuses such ids; PredictionLog.record takes any string
    _predictions(tmp_path, (odd, [VIRGINICA]))
    (found,) = PredictionIndex(tmp_path).find([(odd, 0)])
    assert found is not None and found.request_id == odd


def test_old_lines_without_every_probability_are_found_with_none(tmp_path: Path) -> None:
    stamp = datetime.now(UTC).isoformat()
    record = {"time": stamp, "request_id": "old", "source": "api", "model": "m", "latency_ms": 1.0, "rows": 1}
    line = {**record, "features": {"x": [1.0]}, "class": ["yes"], "probability": [0.7]}
    (tmp_path / f"predictions-{stamp[:10]}-1.jsonl").write_text(json.dumps(line, separators=(",", ":")) + "\n")
    (found,) = PredictionIndex(tmp_path).find([("old", 0)])
    assert found is not None and (found.class_name, found.probability, found.probabilities) == ("yes", 0.7, None)


def _monitor(directory: Path | None, registry: CollectorRegistry) -> Monitor:
    monitor = Monitor(make_card(), "iris_clf:v1", "onnx", directory)
    monitor.start(registry=registry)
    return monitor


def test_the_monitor_matches_counts_and_keeps_outcomes(tmp_path: Path) -> None:
    _predictions(tmp_path, ("seen", [VIRGINICA]))
    registry = CollectorRegistry()
    monitor = _monitor(tmp_path, registry)
    outcomes = [Outcome("seen", 0, "virginica"), Outcome("seen", 1, "setosa"), Outcome("later", 0, "setosa")]
    found = monitor.record_outcomes(outcomes, feedback_id="fb-1")
    monitor.close()
    assert [f.class_name if f else None for f in found] == ["virginica", None, None]
    labels = {"predicted": "virginica", "actual": "virginica", "correct": "true"}
    assert registry.get_sample_value("classifier_outcomes_total", labels) == 1
    assert registry.get_sample_value("classifier_outcomes_unmatched_total") == 2
    (line,) = _lines(tmp_path)
    assert (line["feedback_id"], line["request_id"]) == ("fb-1", ["seen", "seen", "later"])  # unmatched kept too


def test_the_monitor_refuses_outcomes_with_the_log_off() -> None:
    monitor = _monitor(None, CollectorRegistry())
    with pytest.raises(OutcomesOff, match="prediction log is off"):
        monitor.record_outcomes([Outcome("a", 0, "setosa")], feedback_id="fb")
    monitor.close()


def _keyed(directory: Path, *requests: tuple[str, list[float], float]) -> None:
    """Log one-row predictions of these rows, each at its own time (seconds ago)."""
    now = time.time()
    stamps = [now - ago for _, _, ago in requests]
    log = PredictionLog(directory, "iris_clf:v1", SPECS, clock=lambda: stamps.pop(0) if stamps else now)
    for request_id, row, _ in requests:
        table = table_of(SPECS, [dict(zip(FEATURES, row, strict=True))])
        log.record(request_id, "api", table, [SETOSA], 0.001)
    log.close()


def test_a_key_finds_the_newest_prediction_with_its_values_in_the_window(tmp_path: Path) -> None:
    _keyed(tmp_path, ("old", [5.0, 3.0, 1.0, 0.2], 7200), ("new", [5.0, 3.0, 1.0, 0.2], 60), ("other", ROW, 30))
    index = PredictionIndex(tmp_path)
    now = datetime.now(UTC)
    newest, windowed, both_columns, one_wrong, nothing = index.find_keys(
        [
            Outcome(None, 0, "setosa", {"sepal_length": 5.0}),
            Outcome(None, 0, "setosa", {"sepal_length": 5}, until=now - timedelta(hours=1)),
            Outcome(None, 0, "setosa", {"sepal_length": 5.1, "sepal_width": "3.5"}),  # a warehouse's text
            Outcome(None, 0, "setosa", {"sepal_length": 5.1, "sepal_width": 9.9}),
            Outcome(None, 0, "setosa", {"sepal_length": 5.0}, since=now - timedelta(seconds=10)),
        ]
    )
    assert newest is not None and newest.request_id == "new"
    assert windowed is not None and windowed.request_id == "old"
    assert both_columns is not None and both_columns.request_id == "other"
    assert one_wrong is None and nothing is None
    assert index.find_keys([Outcome("old", 0, "setosa")]) == [None]  # by id: not a key's to find


def test_a_key_finds_a_batch_row_and_reads_appended_lines(tmp_path: Path) -> None:
    index = PredictionIndex(tmp_path)
    assert index.find_keys([Outcome(None, 0, "setosa", {"petal_length": 6.1})]) == [None]
    log = PredictionLog(tmp_path, "iris_clf:v1", SPECS)
    table = table_of(SPECS, [dict(zip(FEATURES, row, strict=True)) for row in (ROW, [6.3, 3.3, 6.1, 2.5])])
    log.record("batch", "batch", table, [SETOSA, VIRGINICA], 0.001)
    log.close()
    (found,) = index.find_keys([Outcome(None, 0, "setosa", {"petal_length": 6.1})])
    assert found is not None and (found.request_id, found.row, found.class_name) == ("batch", 1, "virginica")


def test_the_monitor_keeps_a_keyed_outcome_with_the_prediction_it_matched(tmp_path: Path) -> None:
    _keyed(tmp_path, ("keyed", ROW, 5))
    monitor = _monitor(tmp_path, CollectorRegistry())
    found = monitor.record_outcomes(
        [Outcome(None, 0, "virginica", {"sepal_length": 5.1}), Outcome(None, 0, "setosa", {"sepal_length": 1.0})],
        feedback_id="fb-key",
    )
    monitor.close()
    assert [f.request_id if f else None for f in found] == ["keyed", None]
    (line,) = _lines(tmp_path)
    assert line["request_id"] == ["keyed", None] and line["key"] == [{"sepal_length": 5.1}, {"sepal_length": 1.0}]
    first, unmatched = read_outcomes(tmp_path)
    assert (first.request_id, first.label, unmatched.request_id, unmatched.key) == (
        "keyed", "virginica", None, {"sepal_length": 1.0},
    )  # fmt: skip


def _compact_all(directory: Path) -> None:
    """Compact every prediction segment into Parquet, as the writer does when it leaves one."""
    for path in directory.glob("predictions-*.jsonl"):
        compact(path, SPECS)


def _same(found: list[Logged | None], expected: list[Logged | None]) -> None:
    """The same rows found; probabilities within float32's precision (Parquet keeps them so)."""
    assert [f and f._replace(probability=0.0, probabilities=None) for f in found] == [
        e and e._replace(probability=0.0, probabilities=None) for e in expected
    ]
    for f, e in zip(found, expected, strict=True):
        if f is not None and e is not None:
            assert f.probability == pytest.approx(e.probability, rel=1e-6)
            assert f.probabilities == pytest.approx(e.probabilities, rel=1e-6)


def test_the_index_finds_requests_and_keys_in_parquet_files_as_in_json_lines(tmp_path: Path) -> None:
    _predictions(tmp_path, ("single", [SETOSA]), ("batch", [SETOSA, VIRGINICA, SETOSA]))
    _keyed(tmp_path, ("keyed", [6.3, 3.3, 6.1, 2.5], 60))
    wanted = [("single", 0), ("batch", 1), ("batch", 2), ("batch", 3), ("keyed", 0), ("nope", 0)]
    keys = [Outcome(None, 0, "setosa", {"petal_length": 6.1}), Outcome(None, 0, "setosa", {"sepal_length": 5.1})]
    index = PredictionIndex(tmp_path)
    from_json, keyed_json = index.find(wanted), index.find_keys(keys)
    _compact_all(tmp_path)
    assert not list(tmp_path.glob("predictions-*.jsonl"))
    # The same index forgets the JSON segments and reads the Parquet files that replaced them; a new one too.
    _same(index.find(wanted), from_json)
    _same(PredictionIndex(tmp_path).find(wanted), from_json)
    _same(PredictionIndex(tmp_path).find_keys(keys), keyed_json)
    assert keyed_json[0] is not None and keyed_json[0].request_id == "keyed"
