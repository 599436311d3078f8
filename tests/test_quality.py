"""The live quality check: outcomes joined with their logged predictions, measured as training measured the test set."""

from __future__ import annotations

import json
from pathlib import Path

import bentoml
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss, roc_auc_score

from modelcard.card import read_card
from monitoring.outcomes import Outcome, OutcomeLog, PredictionIndex, read_outcomes
from monitoring.predlog import PredictionLog
from monitoring.quality import BELOW_GATE, CANNOT_CHECK, GATES_HOLD, LiveFigures, main
from runtime.predictor import load_predictor
from tests.fakes import table_of


def _log_with_outcomes(directory: Path, tag: str, count: int, shift: bool = False, seed: int = 3) -> dict:
    """Predict `count` of the card's reference rows with the real model, log them, report their true labels.

    `shift`: report every label as another class (a model gone wrong). The figures sklearn computes by hand from
    the same rows come back, to compare with the check's.
    """
    predictor = load_predictor(bentoml.models.get(tag), "auto")
    card = read_card(Path(bentoml.models.get(tag).path))
    picked = np.random.default_rng(seed).integers(0, len(card.reference), count)
    rows = [card.reference[i] for i in picked]
    log = PredictionLog(directory, tag, predictor.card.features)
    outcomes = OutcomeLog(directory, tag)
    probabilities, truth = [], []
    for start in range(0, count, 10):
        batch = rows[start : start + 10]
        table = table_of(predictor.card.features, [{k: v for k, v in r.items() if k != "label"} for r in batch])
        predictions = predictor.predict(table)
        log.record(f"req-{start}", "batch", table, predictions, 0.001)
        labels = [r["label"] for r in batch]
        if shift:
            labels = [card.class_names[(card.class_names.index(label) + 1) % len(card.class_names)] for label in labels]
        outcomes.record(f"feedback-{start}", [Outcome(f"req-{start}", i, label) for i, label in enumerate(labels)])
        probabilities += [[p.probabilities[name] for name in card.class_names] for p in predictions]
        truth += labels
    log.close()
    outcomes.close()
    proba, names = np.array(probabilities), card.class_names
    proba /= proba.sum(axis=1, keepdims=True)  # ONNX's float32 rows, made to sum to 1 as the check does
    predicted = np.asarray(names)[proba.argmax(axis=1)]
    return {
        "accuracy": accuracy_score(truth, predicted),
        "balanced_accuracy": balanced_accuracy_score(truth, predicted),
        "f1_macro": f1_score(truth, predicted, average="macro", labels=names),
        "log_loss": log_loss(truth, proba, labels=names),
        "roc_auc": roc_auc_score(truth, proba, multi_class="ovr", labels=names)
        if len(names) > 2
        else roc_auc_score(np.asarray(truth) == names[1], proba[:, 1]),
    }


def test_the_live_figures_are_the_ones_computed_by_hand_and_the_gates_hold(trained_tag: str, tmp_path: Path) -> None:
    by_hand = _log_with_outcomes(tmp_path / "logs", trained_tag, 300)
    status = main(["--log-dir", str(tmp_path / "logs"), "--report", str(tmp_path / "report")])
    assert status == GATES_HOLD
    report = json.loads((tmp_path / "report" / "quality.json").read_text())
    assert report["model"] == trained_tag and report["live"]["n_test"] == 300 and report["missed"] == []
    for name, value in by_hand.items():
        assert report["live"][name] == pytest.approx(value, abs=1e-9), name
    assert sum(day["n_test"] for day in report["per_day"].values()) == 300


def test_shifted_outcomes_miss_the_gate(churn_tag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    by_hand = _log_with_outcomes(tmp_path / "logs", churn_tag, 300, shift=True)
    assert main(["--log-dir", str(tmp_path / "logs"), "--report", ""]) == BELOW_GATE
    out = capsys.readouterr().out
    assert "| roc_auc |" in out and "MISSED" in out and f"{by_hand['roc_auc']:.4f}" in out


def test_a_later_outcome_replaces_the_earlier_one(trained_tag: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    _log_with_outcomes(logs, trained_tag, 150)
    names = read_card(Path(bentoml.models.get(trained_tag).path)).class_names
    corrections = OutcomeLog(logs, trained_tag)  # every outcome reported again, later, as another class
    for reported in read_outcomes(logs):
        other = names[(names.index(reported.label) + 1) % len(names)]
        corrections.record("correction", [Outcome(reported.request_id, reported.row, other)])
    corrections.close()
    status = main(["--log-dir", str(logs), "--report", str(tmp_path / "report")])
    report = json.loads((tmp_path / "report" / "quality.json").read_text())
    assert report["live"]["n_test"] == 150 and report["live"]["accuracy"] < 0.1
    assert status == BELOW_GATE


def test_cannot_check_without_outcomes_or_with_too_few(trained_tag: str, tmp_path: Path) -> None:
    assert main(["--log-dir", str(tmp_path / "empty"), "--report", ""]) == CANNOT_CHECK
    _log_with_outcomes(tmp_path / "few", trained_tag, 20)
    assert main(["--log-dir", str(tmp_path / "few"), "--report", ""]) == CANNOT_CHECK
    assert main(["--log-dir", str(tmp_path / "few"), "--report", "", "--min-outcomes", "10"]) == GATES_HOLD
    later = "2999-01-01T00:00"
    assert main(["--log-dir", str(tmp_path / "few"), "--start", later, "--report", ""]) == CANNOT_CHECK


def test_an_outcome_reported_by_key_joins_later_and_replaces_the_one_by_id(trained_tag: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    _log_with_outcomes(logs, trained_tag, 20)
    before = json.loads(_report(logs, tmp_path / "before"))["live"]
    line = json.loads(next(logs.glob("predictions-*.jsonl")).read_text().splitlines()[0])
    key = {name: values[0] for name, values in line["features"].items()}
    names = read_card(Path(bentoml.models.get(trained_tag).path)).class_names
    (target,) = PredictionIndex(logs).find_keys([Outcome(None, 0, "x", key)])
    assert target is not None
    (earlier,) = [o for o in read_outcomes(logs) if (o.request_id, o.row) == (target.request_id, target.row)]
    other = names[(names.index(earlier.label) + 1) % len(names)]
    corrections = OutcomeLog(logs, trained_tag)  # as the monitor keeps a key that matched nothing yet
    corrections.record("by-key", [Outcome(None, 0, other, key)])
    corrections.close()
    after = json.loads(_report(logs, tmp_path / "after"))["live"]
    assert after["n_test"] == before["n_test"] == 20
    change = (target.class_name == other) - (target.class_name == earlier.label)
    assert after["accuracy"] == pytest.approx(before["accuracy"] + change / 20)


def _report(logs: Path, folder: Path) -> str:
    assert main(["--log-dir", str(logs), "--report", str(folder), "--min-outcomes", "10"]) == GATES_HOLD
    return (folder / "quality.json").read_text()


def test_the_report_holds_the_confusion_matrix_and_calibration_of_the_same_rows(churn_tag: str, tmp_path: Path) -> None:
    by_hand = _log_with_outcomes(tmp_path / "logs", churn_tag, 200)
    main(["--log-dir", str(tmp_path / "logs"), "--report", str(tmp_path / "report"), "--min-outcomes", "10"])
    report = json.loads((tmp_path / "report" / "quality.json").read_text())
    matrix = np.array(report["confusion_matrix"]["rows_actual_columns_predicted"])
    assert matrix.sum() == 200 and np.trace(matrix) / 200 == pytest.approx(by_hand["accuracy"])
    calibrated = report["calibration"]
    assert calibrated["about"] == "P(yes)" and sum(calibrated["counts"]) == 200
    assert all(0 <= p <= 1 for p in calibrated["predicted"] + calibrated["observed"])
    page = (tmp_path / "report" / "quality.html").read_text()
    assert "Confusion matrix" in page and page.count("data:image/png;base64,") == 3


def test_live_figures_for_the_ui_appear_with_the_first_outcomes_and_are_kept_a_while(
    trained_tag: str, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    card = read_card(Path(bentoml.models.get(trained_tag).path))
    live = LiveFigures(logs, trained_tag, card, ttl_s=3600)
    assert live() is None  # no outcomes: nothing indexed, nothing kept
    by_hand = _log_with_outcomes(logs, trained_tag, 30)
    figures = live()
    assert figures is not None and figures.n_test == 30
    assert figures.accuracy == pytest.approx(by_hand["accuracy"])
    _log_with_outcomes(logs, trained_tag, 10, seed=4)
    assert live() is figures  # within ttl_s: not joined again
