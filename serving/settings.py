"""Run-time options of the service, read once from IRIS_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# A key shorter than this is guessable; `openssl rand -hex 32` makes a good one.
MIN_API_KEY_LENGTH = 16


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
    # Where the prediction log goes (one JSON line per predicted row); None turns it off (IRIS_PREDICTION_LOG=off).
    prediction_log: Path | None = None
    # Prediction-log retention, applied by the service while it runs: files older than this many days, and the
    # oldest files while the folder holds more than this many MiB, are deleted (never a file still being written).
    prediction_log_max_age_days: float = 30.0
    prediction_log_max_mib: float = 1024.0
    # "text" (BentoML's format) or "json" (one object per line, with the request id).
    log_format: str = "text"
    # When set, /prediction and /predict_batch need `Authorization: Bearer <api_key>`; health, metrics and UI stay open.
    api_key: str | None = field(default=None, repr=False)
    # Browser origins allowed to call the API from their pages (CORS); none by default.
    cors_origins: tuple[str, ...] = ()
    # After SIGTERM, the longest a worker keeps answering requests it accepted before it exits. Below the
    # Deployment's terminationGracePeriodSeconds (30) minus its preStop pause (5), so nothing is killed mid-answer.
    shutdown_grace_s: float = 20.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Defaults, overridden by the IRIS_* variables of the same names (README, "Serving and packaging")."""
        env = os.environ if env is None else env
        runtime = env.get("IRIS_RUNTIME", cls.runtime)
        if runtime not in ("auto", "onnx", "sklearn"):
            raise ValueError(f"IRIS_RUNTIME={runtime!r}: use auto, onnx or sklearn")
        log_format = env.get("IRIS_LOG_FORMAT", cls.log_format)
        if log_format not in ("text", "json"):
            raise ValueError(f"IRIS_LOG_FORMAT={log_format!r}: use text or json")
        api_key = env.get("IRIS_API_KEY") or None
        if api_key is not None and len(api_key) < MIN_API_KEY_LENGTH:
            raise ValueError(f"IRIS_API_KEY is too short: use at least {MIN_API_KEY_LENGTH} random characters")
        return cls(
            model_tag=env.get("IRIS_MODEL_TAG") or cls.model_tag,
            runtime=runtime,
            max_batch_rows=int(env.get("IRIS_MAX_BATCH_ROWS", cls.max_batch_rows)),
            max_body_bytes=int(env.get("IRIS_MAX_BODY_BYTES", cls.max_body_bytes)),
            fast_path=env.get("IRIS_FAST_PATH", "true").lower() not in ("0", "false", "no", "off"),
            workers=_workers(env.get("IRIS_WORKERS", str(cls.workers))),
            root_path=env.get("IRIS_ROOT_PATH", cls.root_path).rstrip("/"),
            prediction_log=_prediction_log(env.get("IRIS_PREDICTION_LOG", ""), env),
            prediction_log_max_age_days=_positive_float(
                env, "IRIS_PREDICTION_LOG_MAX_AGE_DAYS", cls.prediction_log_max_age_days
            ),
            prediction_log_max_mib=_positive_float(env, "IRIS_PREDICTION_LOG_MAX_MIB", cls.prediction_log_max_mib),
            log_format=log_format,
            api_key=api_key,
            cors_origins=tuple(o.strip().rstrip("/") for o in env.get("IRIS_CORS_ORIGINS", "").split(",") if o.strip()),
            shutdown_grace_s=_positive_float(env, "IRIS_SHUTDOWN_GRACE_S", cls.shutdown_grace_s),
        )

    def cors(self) -> dict[str, object] | None:
        """Options for Starlette's CORSMiddleware, or None (CORS off) unless IRIS_CORS_ORIGINS names origins."""
        if not self.cors_origins:
            return None
        return {
            "allow_origins": list(self.cors_origins),
            "allow_methods": ["GET", "POST"],
            "allow_headers": ["content-type", "authorization", "x-request-id"],
            "expose_headers": ["x-request-id"],
            "max_age": 600,
        }


def default_prediction_log(env: Mapping[str, str]) -> Path:
    """$BENTOML_HOME/prediction_logs/iris_classifier: beside the model store, writable in the container too."""
    home = Path(env.get("BENTOML_HOME") or Path.home() / "bentoml")
    return home / "prediction_logs" / "iris_classifier"


def _prediction_log(value: str, env: Mapping[str, str]) -> Path | None:
    """A folder for the prediction log, the default one when unset, or None for "off"."""
    if value.lower() in ("off", "false", "0", "no"):
        return None
    return Path(value) if value else default_prediction_log(env)


def _workers(value: str) -> int | str:
    """A positive worker count, or "cpu_count" for one worker per core (API only: the UI needs one worker)."""
    if value == "cpu_count":
        return value
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"IRIS_WORKERS={value!r}: use a positive whole number or cpu_count")
    return int(value)


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number from the environment, or the default when unset."""
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise ValueError(f"{name}={value!r}: use a positive number")
    return number
