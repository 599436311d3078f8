"""Run-time settings from IRIS_* environment variables, with clear errors for bad values."""

from __future__ import annotations

import pytest

from serving.settings import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("IRIS_MODEL_TAG", "IRIS_RUNTIME", "IRIS_WORKERS", "IRIS_FAST_PATH", "IRIS_ROOT_PATH"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert (settings.model_tag, settings.runtime, settings.workers, settings.fast_path) == (
        "iris_clf:latest",
        "auto",
        1,
        True,
    )


def test_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRIS_MODEL_TAG", "other:v2")
    monkeypatch.setenv("IRIS_WORKERS", "cpu_count")
    monkeypatch.setenv("IRIS_FAST_PATH", "off")
    monkeypatch.setenv("IRIS_ROOT_PATH", "/iris/")
    settings = Settings.from_env()
    assert (settings.model_tag, settings.workers, settings.fast_path, settings.root_path) == (
        "other:v2",
        "cpu_count",
        False,
        "/iris",
    )


@pytest.mark.parametrize(
    ("name", "value"), [("IRIS_RUNTIME", "tensorflow"), ("IRIS_WORKERS", "0"), ("IRIS_WORKERS", "two")]
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        Settings.from_env()
