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

    @classmethod
    def from_env(cls) -> Settings:
        """Defaults, overridden by IRIS_MODEL_TAG, IRIS_RUNTIME and IRIS_MAX_BATCH_ROWS."""
        env = os.environ
        runtime = env.get("IRIS_RUNTIME", cls.runtime)
        if runtime not in ("auto", "onnx", "sklearn"):
            raise ValueError(f"IRIS_RUNTIME={runtime!r}: use auto, onnx or sklearn")
        return cls(
            model_tag=env.get("IRIS_MODEL_TAG", cls.model_tag),
            runtime=runtime,
            max_batch_rows=int(env.get("IRIS_MAX_BATCH_ROWS", cls.max_batch_rows)),
        )
