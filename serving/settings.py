"""Run-time options of the service, read once from IRIS_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Everything an operator may change without rebuilding the bento."""

    model_tag: str = "iris_clf:latest"
    runtime: str = "auto"
    max_batch_rows: int = 1000
    # Largest request body (and UI upload) accepted: a 1,000-row batch is ~85 KB.
    max_body_bytes: int = 1_048_576
    fast_path: bool = True
    # One worker by default: Gradio keeps per-process state (its queue), so the UI needs every request of a
    # session to reach the same process. More workers serve the API faster and switch the UI off.
    workers: int | str = 1
    # The public path prefix when a reverse proxy serves this under a sub-path, e.g. "/iris".
    root_path: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        """Defaults, overridden by the IRIS_* variables of the same names (README, "Serving and packaging")."""
        env = os.environ
        runtime = env.get("IRIS_RUNTIME", cls.runtime)
        if runtime not in ("auto", "onnx", "sklearn"):
            raise ValueError(f"IRIS_RUNTIME={runtime!r}: use auto, onnx or sklearn")
        return cls(
            model_tag=env.get("IRIS_MODEL_TAG") or cls.model_tag,
            runtime=runtime,
            max_batch_rows=int(env.get("IRIS_MAX_BATCH_ROWS", cls.max_batch_rows)),
            max_body_bytes=int(env.get("IRIS_MAX_BODY_BYTES", cls.max_body_bytes)),
            fast_path=env.get("IRIS_FAST_PATH", "true").lower() not in ("0", "false", "no", "off"),
            workers=_workers(env.get("IRIS_WORKERS", str(cls.workers))),
            root_path=env.get("IRIS_ROOT_PATH", cls.root_path).rstrip("/"),
        )


def _workers(value: str) -> int | str:
    """A positive worker count, or "cpu_count" for one worker per core (API only: the UI needs one worker)."""
    if value == "cpu_count":
        return value
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"IRIS_WORKERS={value!r}: use a positive whole number or cpu_count")
    return int(value)
