"""Run-time settings from SERVING_* environment variables, with clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.settings import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODEL_TAG", "SERVING_RUNTIME", "SERVING_WORKERS", "SERVING_FAST_PATH", "SERVING_ROOT_PATH"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    # No MODEL_TAG: the model a built bento carries, else iris_clf:latest (serving/store.py pinned_tag).
    assert (settings.model_tag, settings.runtime, settings.workers, settings.fast_path) == (
        None,
        "auto",
        "cpu_count",
        True,
    )


def test_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_TAG", "other:v2")
    monkeypatch.setenv("SERVING_WORKERS", "cpu_count")
    monkeypatch.setenv("SERVING_FAST_PATH", "off")
    monkeypatch.setenv("SERVING_ROOT_PATH", "/models/other/")
    settings = Settings.from_env()
    assert (settings.model_tag, settings.workers, settings.fast_path, settings.root_path) == (
        "other:v2",
        "cpu_count",
        False,
        "/models/other",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SERVING_RUNTIME", "tensorflow"),
        ("SERVING_WORKERS", "0"),
        ("SERVING_WORKERS", "two"),
        ("SERVING_PREDICTION_LOG_FORMAT", "csv"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        Settings.from_env()


def test_the_prediction_log_stays_json_lines_unless_parquet_is_asked_for() -> None:
    assert Settings.from_env({}).prediction_log_format == "jsonl"
    assert Settings.from_env({"SERVING_PREDICTION_LOG_FORMAT": "parquet"}).prediction_log_format == "parquet"


def test_the_prediction_log_folder_is_named_after_the_model(tmp_path) -> None:
    settings = Settings.from_env({"BENTOML_HOME": str(tmp_path)})
    assert settings.prediction_log_dir("churn_clf:abc", {"BENTOML_HOME": str(tmp_path)}) == (
        tmp_path / "prediction_logs" / "churn_clf"
    )
    assert Settings.from_env({"SERVING_PREDICTION_LOG": "off"}).prediction_log_dir("m:1") is None
    assert Settings.from_env({"SERVING_PREDICTION_LOG": "/srv/log"}).prediction_log_dir("m:1") == Path("/srv/log")


def test_flags_take_true_or_false_and_refuse_anything_else() -> None:
    assert Settings.from_env({}).trace_predictions is False
    assert Settings.from_env({"SERVING_TRACE_PREDICTIONS": "yes"}).trace_predictions is True
    assert Settings.from_env({"SERVING_FAST_PATH": "off"}).fast_path is False
    with pytest.raises(ValueError, match="SERVING_TRACE_PREDICTIONS"):
        Settings.from_env({"SERVING_TRACE_PREDICTIONS": "sometimes"})
