"""The drift check: quiet on logs made from the training data, loud on shifted logs, honest when it cannot run."""

from __future__ import annotations

import json
from pathlib import Path

import bentoml
import numpy as np
import pytest

from modelcard.card import ModelCard, read_card
from monitoring.drift import CANNOT_CHECK, DRIFT, NO_DRIFT, main
from monitoring.predlog import PredictionLog
from monitoring.stats import binned_shares, category_drift, class_mix_drift, psi, quantile_edges
from runtime.predictor import load_predictor
from tests.fakes import table_of


def test_psi_is_zero_for_identical_shares_and_grows_with_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=2000)
    edges = quantile_edges(reference)
    same = psi(binned_shares(reference, edges), binned_shares(reference, edges))
    small = psi(binned_shares(reference, edges), binned_shares(reference + 0.1, edges))
    large = psi(binned_shares(reference, edges), binned_shares(reference + 1.0, edges))
    assert same == 0.0
    assert 0 < small < 0.1 < 0.2 < large


def test_class_mix_drift_sees_one_class_taking_over() -> None:
    classes = ["a", "b", "c"]
    balanced = ["a", "b", "c"] * 50
    assert not class_mix_drift(balanced, ["a", "b", "c"] * 20, classes, 0.2).drifted
    assert class_mix_drift(balanced, ["a"] * 90 + ["b"] * 5 + ["c"] * 5, classes, 0.2).drifted


def test_category_drift_sees_one_value_taking_over_and_ignores_noise() -> None:
    training = {"month-to-month": 550, "one_year": 250, "two_year": 200}
    rng = np.random.default_rng(0)
    like_training = list(rng.choice(list(training), 400, p=[0.55, 0.25, 0.2]))
    steady = category_drift("contract", training, like_training, 0.2, 0.01)
    assert not steady.drifted and steady.psi < 0.05 and steady.test == "chi-squared"
    moved = category_drift("contract", training, ["month-to-month"] * 400, 0.2, 0.01)
    assert moved.drifted and moved.pvalue < 1e-10 and moved.live_shares["month-to-month"] == 1.0
    assert moved.reference_summary == "month-to-month 55%"


def _log_predictions(directory: Path, tag: str, rows: list[dict]) -> None:
    """Predict the rows with the real model and log them, as the service does."""
    predictor = load_predictor(bentoml.models.get(tag), "auto")
    log = PredictionLog(directory, tag, predictor.card.features)
    for start in range(0, len(rows), 10):
        table = table_of(predictor.card.features, rows[start : start + 10])
        log.record(f"req-{start}", "batch", table, predictor.predict(table), 0.001)
    log.close()


def _training_rows(tag: str, count: int, seed: int = 7) -> tuple[ModelCard, list[dict]]:
    """`count` rows drawn from the model's training reference, without their labels."""
    card = read_card(Path(bentoml.models.get(tag).path))
    rows = [{k: v for k, v in row.items() if k != "label"} for row in card.reference]
    return card, [rows[i] for i in np.random.default_rng(seed).integers(0, len(rows), count)]


def test_logs_made_from_training_data_show_no_drift(trained_tag: str, tmp_path: Path) -> None:
    _, rows = _training_rows(trained_tag, 400)
    _log_predictions(tmp_path / "logs", trained_tag, rows)
    status = main(["--log-dir", str(tmp_path / "logs"), "--report", str(tmp_path / "report")])
    assert status == NO_DRIFT
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["drifted"] is False and report["live_rows"] == 400 and report["model"] == trained_tag
    assert all(f["psi"] < 0.1 for f in report["features"])


def test_shifted_inputs_are_found_and_plotted(
    trained_tag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card, rows = _training_rows(trained_tag, 400)
    # Petals measured in the wrong unit by a new data source: petal length 1.5x, everything else untouched.
    shifted = [{**row, "petal_length": row["petal_length"] * 1.5} for row in rows]
    _log_predictions(tmp_path / "logs", trained_tag, shifted)
    status = main(["--log-dir", str(tmp_path / "logs"), "--report", str(tmp_path / "report")])
    assert status == DRIFT
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    drifted = {f["feature"] for f in report["features"] if f["drifted"]}
    assert drifted == {"petal_length"}
    assert "DRIFT FOUND" in capsys.readouterr().out
    html = (tmp_path / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(card.feature_names) + 1
    assert {p.name for p in (tmp_path / "report").glob("*.png")} == {
        *(f"feature-{n}.png" for n in card.feature_names),
        "classes.png",
    }


def test_a_class_taking_over_is_drift(trained_tag: str, tmp_path: Path) -> None:
    card = read_card(Path(bentoml.models.get(trained_tag).path))
    setosa_rows = [{k: v for k, v in row.items() if k != "label"} for row in card.reference if row["label"] == "setosa"]
    _log_predictions(tmp_path / "logs", trained_tag, [setosa_rows[i % len(setosa_rows)] for i in range(200)])
    assert main(["--log-dir", str(tmp_path / "logs"), "--report", ""]) == DRIFT


def test_cannot_check_without_logs_or_with_too_few_rows(trained_tag: str, tmp_path: Path) -> None:
    assert main(["--log-dir", str(tmp_path / "empty"), "--report", ""]) == CANNOT_CHECK
    _, rows = _training_rows(trained_tag, 10)
    _log_predictions(tmp_path / "few", trained_tag, rows)
    assert main(["--log-dir", str(tmp_path / "few"), "--report", ""]) == CANNOT_CHECK


def test_window_excludes_older_predictions(trained_tag: str, tmp_path: Path) -> None:
    _, rows = _training_rows(trained_tag, 100)
    _log_predictions(tmp_path / "logs", trained_tag, rows)
    later = "2999-01-01T00:00"
    assert main(["--log-dir", str(tmp_path / "logs"), "--start", later, "--report", ""]) == CANNOT_CHECK


def test_command_line_runs_as_a_module(trained_tag: str, tmp_path: Path, bentoml_home: Path) -> None:
    import os
    import subprocess
    import sys

    _, rows = _training_rows(trained_tag, 100)
    _log_predictions(tmp_path / "logs", trained_tag, rows)
    result = subprocess.run(
        [sys.executable, "-m", "monitoring.drift", "--log-dir", str(tmp_path / "logs"), "--since", "1h", "--report="],
        capture_output=True,
        text=True,
        env={**os.environ, "BENTOML_HOME": str(bentoml_home)},
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == NO_DRIFT, result.stderr
    assert "No drift found" in result.stdout and "petal_length" in result.stdout


def test_churn_logs_like_training_show_no_drift(churn_tag: str, tmp_path: Path) -> None:
    _, rows = _training_rows(churn_tag, 400)
    _log_predictions(tmp_path / "logs", churn_tag, rows)
    status = main(["--log-dir", str(tmp_path / "logs"), "--report", str(tmp_path / "report")])
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert status == NO_DRIFT, [f for f in report["features"] if f["drifted"]]
    kinds = {f["feature"]: f["test"] for f in report["features"]}
    assert kinds["contract"] == "chi-squared" and kinds["tenure"] == "KS" and kinds["seniorcitizen"] == "chi-squared"


def test_churn_every_customer_on_month_to_month_flags_contract_only(churn_tag: str, tmp_path: Path) -> None:
    card, rows = _training_rows(churn_tag, 400)
    moved = [{**row, "contract": "month-to-month"} for row in rows]
    _log_predictions(tmp_path / "logs", churn_tag, moved)
    status = main(["--log-dir", str(tmp_path / "logs"), "--report", str(tmp_path / "report")])
    assert status == DRIFT
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert {f["feature"] for f in report["features"] if f["drifted"]} == {"contract"}
    contract = next(f for f in report["features"] if f["feature"] == "contract")
    assert contract["live_shares"]["month-to-month"] == 1.0
    html = (tmp_path / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(card.feature_names) + 1  # bars for categories, too
