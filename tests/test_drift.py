"""The drift check: quiet on logs made from the training data, loud on shifted logs, honest when it cannot run."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pytest

from modelcard.card import FeatureKind, ModelCard, NumericStats, read_card
from monitoring.drift import CANNOT_CHECK, DRIFT, NO_DRIFT, check, count_tests, main
from monitoring.logstore import compact
from monitoring.predlog import PredictionLog
from monitoring.stats import binned_shares, category_drift, class_mix_drift, new_word_drift, psi, quantile_edges
from runtime.predictor import Prediction, load_predictor
from tests.fakes import make_churn_card, number, table_of, text_feature, unused_feature


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


def test_a_log_compacted_into_parquet_gives_the_same_check_as_its_json_lines(trained_tag: str, tmp_path: Path) -> None:
    card, rows = _training_rows(trained_tag, 400)
    shifted = [{**row, "petal_length": row["petal_length"] * 1.5} for row in rows]
    _log_predictions(tmp_path / "json", trained_tag, shifted)
    shutil.copytree(tmp_path / "json", tmp_path / "parquet")
    for path in (tmp_path / "parquet").glob("*.jsonl"):
        compact(path, card.features)
    reports = {}
    for kind in ("json", "parquet"):
        args = ["--log-dir", str(tmp_path / kind), "--report", str(tmp_path / f"report-{kind}"), "--source", "batch"]
        assert main(args) == DRIFT
        report = json.loads((tmp_path / f"report-{kind}" / "report.json").read_text())
        reports[kind] = {key: value for key, value in report.items() if not key.startswith("window_")}
    assert reports["json"] == reports["parquet"] and reports["parquet"]["live_rows"] == 400
    assert main(["--log-dir", str(tmp_path / "parquet"), "--source", "ui", "--report", ""]) == CANNOT_CHECK


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
    read = [spec for spec in card.features if spec.kind is not FeatureKind.UNUSED]  # customer_id is not checked
    assert html.count("data:image/png;base64,") == len(read) + 1  # bars for categories, too
    assert report["skipped"] == ["customer_id"]


def test_new_words_drift_only_when_they_rise_clearly() -> None:
    steady = new_word_drift("review (new words)", 0.05, 2000, 104, 0.01)
    assert not steady.drifted and steady.test == "binomial" and steady.live_shares["new"] == 0.052
    jump = new_word_drift("review (new words)", 0.05, 2000, 400, 0.01)
    assert jump.drifted and jump.pvalue < 1e-50 and jump.statistic > 0.3
    assert (jump.reference_summary, jump.live_summary) == ("new words 5.0%", "new words 20.0%")
    # Ten million words make a rise of a tenth of a point significant; it is still too small to be drift.
    tiny = new_word_drift("review (new words)", 0.05, 10_000_000, 510_000, 0.01)
    assert tiny.pvalue < 1e-10 and not tiny.drifted
    # Fewer new words than the test rows had (live text like training's own) is no drift, however large its PSI.
    fewer = new_word_drift("review (new words)", 0.05, 2000, 0, 0.01)
    assert not fewer.drifted and fewer.pvalue == 1.0 and fewer.psi > 0.2
    assert not new_word_drift("review (new words)", 0.05, 0, 0, 0.01).drifted


VOCABULARY = [f"w{i:03d}" for i in range(200)]


def _review(rng: np.random.Generator, new_share: float, most_words: int = 30) -> str:
    """A value of 3 to `most_words` words, each of four characters; `new_share` of them not in VOCABULARY."""
    words = [
        f"n{rng.integers(1000):03d}" if rng.random() < new_share else VOCABULARY[rng.integers(len(VOCABULARY))]
        for _ in range(rng.integers(3, most_words + 1))
    ]
    return " ".join(words)


def _review_rows(count: int, seed: int, new_share: float = 0.0, most_words: int = 30) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "stars": int(rng.integers(1, 6)),
            "review": None if rng.random() < 0.05 else _review(rng, new_share, most_words),
            "customer_id": f"c-{seed}-{i}" if i % 3 else i,
        }
        for i in range(count)
    ]


def _review_card() -> ModelCard:
    """Reviews with a number, a text (training's words: VOCABULARY) and an id: 1,000 training rows, 5 % new words."""
    reference = [{**row, "label": "yes" if row["stars"] < 3 else "no"} for row in _review_rows(1000, seed=1)]
    lengths = np.array([len(row["review"]) for row in reference if row["review"] is not None], dtype=float)
    quantiles = np.quantile(lengths, np.linspace(0, 1, 11)).tolist()
    chars = NumericStats(
        min=lengths.min(), max=lengths.max(), mean=lengths.mean(), std=lengths.std(), quantiles=quantiles
    )
    features = [
        number("stars", 1, 5, integer=True),
        text_feature("review", VOCABULARY, chars, 0.05),
        unused_feature("customer_id"),
    ]
    return make_churn_card().model_copy(update={"features": features, "reference": reference})


def _check_rows(card: ModelCard, rows: list[dict[str, Any]]) -> dict[str, bool]:
    """Check rows predicted 'no' against the card: each test's name and whether it drifted."""
    records = [{"features": row, "class": "yes" if row["stars"] < 3 else "no"} for row in rows]
    now = datetime(2026, 11, 25, tzinfo=UTC)
    args = argparse.Namespace(start=now, end=now, alpha=0.01, psi_threshold=0.2)
    result, reference, live = check(records, card, "reviews:test", args)
    assert result.skipped == ["customer_id"]
    assert set(reference) == set(live) == {"stars", "review (length)"}
    return {f.feature: f.drifted for f in result.features}


def test_text_drawn_like_the_reference_does_not_drift() -> None:
    card = _review_card()
    assert count_tests(card.features) == 3  # stars, the review's lengths and its new words; never the id
    for seed in range(100, 120):
        # New words at the card's baseline rate, or none at all (rows like training's own): neither is drift.
        for new_share in (0.05, 0.0):
            verdicts = _check_rows(card, _review_rows(400, seed, new_share))
            assert verdicts == {"stars": False, "review (length)": False, "review (new words)": False}, seed


def test_longer_text_drifts_in_length_only() -> None:
    verdicts = _check_rows(_review_card(), _review_rows(400, seed=2, new_share=0.05, most_words=60))
    assert verdicts == {"stars": False, "review (length)": True, "review (new words)": False}


def test_a_jump_in_new_words_drifts_in_new_words_only() -> None:
    verdicts = _check_rows(_review_card(), _review_rows(400, seed=3, new_share=0.2))
    assert verdicts == {"stars": False, "review (length)": False, "review (new words)": True}


def test_text_report_names_both_tests_and_skips_the_unused_column_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    card = _review_card()
    monkeypatch.setattr("monitoring.drift.load_card", lambda tag: card)
    log = PredictionLog(tmp_path / "logs", "reviews:test", card.features)
    rows = _review_rows(200, seed=4, new_share=0.3)
    for start in range(0, len(rows), 50):
        chunk = rows[start : start + 50]
        log.record(f"req-{start}", "batch", table_of(card.features, chunk), [Prediction("no", 0.7, {})] * 50, 0.001)
    log.close()
    with caplog.at_level(logging.INFO, logger="monitoring.drift"):
        status = main(["--log-dir", str(tmp_path / "logs"), "--report", str(tmp_path / "report")])
    assert status == DRIFT
    out = capsys.readouterr().out
    assert "alpha 0.01 over 3 tests" in out and out.count("customer_id") == 1
    assert "Not checked (the model never reads them): customer_id" in out
    assert [r.getMessage() for r in caplog.records if "customer_id" in r.getMessage()] == [
        "Not checked, the model never reads them: customer_id"
    ]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["skipped"] == ["customer_id"]
    tests = {f["feature"]: (f["test"], f["drifted"]) for f in report["features"]}
    assert tests == {
        "stars": ("KS", False),
        "review (length)": ("KS", False),
        "review (new words)": ("binomial", True),
    }
    assert {p.name for p in (tmp_path / "report").glob("*.png")} == {
        "feature-stars.png",
        "feature-review-length.png",
        "feature-review-new-words.png",
        "classes.png",
    }
