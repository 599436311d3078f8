"""Run-time options of the service, read once from the environment: MODEL_TAG and the SERVING_* variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from monitoring.predlog import default_prediction_log

# Every run-time option but the model's tag is SERVING_<NAME>; docs/api.md lists them.
PREFIX = "SERVING_"
# A key shorter than this is guessable; `openssl rand -hex 32` makes a good one.
MIN_API_KEY_LENGTH = 16


@dataclass(frozen=True)
class Settings:
    """Everything an operator may change without rebuilding the bento."""

    # None (MODEL_TAG unset): the model a built bento carries, or DEFAULT_MODEL_TAG from the source tree.
    model_tag: str | None = None
    runtime: str = "auto"
    max_batch_rows: int = 1000
    # Largest request body (and UI upload) accepted: a 1,000-row batch of four numbers is ~85 KB.
    max_body_bytes: int = 1_048_576
    fast_path: bool = True
    # The API's workers: one per core by default. The web UI has one worker of its own whatever this says.
    workers: int | str = "cpu_count"
    # The public path prefix when a reverse proxy serves this under a sub-path, e.g. "/models/churn".
    root_path: str = ""
    # Where the prediction log goes (one JSON line per request): a folder, "" for the default one beside the
    # model store ($BENTOML_HOME/prediction_logs/<model name>), or "off".
    prediction_log: str = ""
    # Prediction-log retention, applied by the service while it runs: files older than this many days, and the
    # oldest files while the folder holds more than this many MiB, are deleted (never a file still being written).
    prediction_log_max_age_days: float = 30.0
    prediction_log_max_mib: float = 1024.0
    # "jsonl": the log's segments stay JSON lines; "parquet": each finished segment is compacted into Parquet in
    # the log's writer thread, ~20x smaller and read by the checks column by column (docs/monitoring.md#compaction).
    prediction_log_format: str = "jsonl"
    # "text" (BentoML's format) or "json" (one object per line, with the request id).
    log_format: str = "text"
    # When set, predictions, /model and the web UI need it (docs/security.md); health, metrics and docs stay open.
    api_key: str | None = field(default=None, repr=False)
    # Browser origins allowed to call the API from their pages (CORS); none by default.
    cors_origins: tuple[str, ...] = ()
    # Trace /prediction and /predict_batch with OpenTelemetry like every other route when BentoML's tracing is
    # set up. Off by default: each traced request creates three spans, a cost measured in docs/performance.md.
    trace_predictions: bool = False
    # After SIGTERM, the longest a worker keeps answering requests it accepted before it exits. Below the
    # Deployment's terminationGracePeriodSeconds (30) minus its preStop pause (5), so nothing is killed mid-answer.
    shutdown_grace_s: float = 20.0
    # The longest a client may take to send a request's body once its headers arrived: then 408, connection closed.
    # Below BentoML's traffic timeout (30 s), which would answer a 504 first on its routes.
    body_timeout_s: float = 20.0
    # Per API worker, the web UI's event streams (a page holds one or two) and its other requests in flight: past
    # the first, a new stream is answered 503; the second is a connection pool, kept apart so streams never fill it.
    ui_max_streams: int = 500
    ui_connections: int = 50
    # Files uploaded to the web UI and the results it made are deleted this long after they were written.
    ui_files_max_age_s: float = 3600.0
    # Without an API key, /model and the executed notebook are open to anyone who reaches the service: they hold
    # no training row (the card's statistics instead) unless this says they may (docs/security.md).
    share_training_rows: bool = False
    # "accept": a category value training never saw is answered, counted and flagged in the answer's warnings, for
    # the features whose model answered one in training (the card's unseen_answered); "refuse": always a 400.
    unseen_categories: str = "refuse"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Defaults, overridden by MODEL_TAG and the SERVING_* variables of the same names."""
        env = os.environ if env is None else env
        runtime = _choice(env, "RUNTIME", cls.runtime, ("auto", "onnx", "sklearn"))
        log_format = _choice(env, "LOG_FORMAT", cls.log_format, ("text", "json"))
        api_key = env.get(f"{PREFIX}API_KEY") or None
        if api_key is not None and len(api_key) < MIN_API_KEY_LENGTH:
            raise ValueError(f"{PREFIX}API_KEY is too short: use at least {MIN_API_KEY_LENGTH} random characters")
        model_tag = env.get("MODEL_TAG") or None
        origins = env.get(f"{PREFIX}CORS_ORIGINS", "").split(",")
        return cls(
            model_tag=model_tag,
            runtime=runtime,
            max_batch_rows=int(env.get(f"{PREFIX}MAX_BATCH_ROWS", cls.max_batch_rows)),
            max_body_bytes=int(env.get(f"{PREFIX}MAX_BODY_BYTES", cls.max_body_bytes)),
            fast_path=_flag(env, "FAST_PATH", cls.fast_path),
            trace_predictions=_flag(env, "TRACE_PREDICTIONS", cls.trace_predictions),
            workers=_workers(env.get(f"{PREFIX}WORKERS", str(cls.workers))),
            root_path=env.get(f"{PREFIX}ROOT_PATH", cls.root_path).rstrip("/"),
            prediction_log=env.get(f"{PREFIX}PREDICTION_LOG", cls.prediction_log),
            prediction_log_max_age_days=_positive_float(
                env, "PREDICTION_LOG_MAX_AGE_DAYS", cls.prediction_log_max_age_days
            ),
            prediction_log_max_mib=_positive_float(env, "PREDICTION_LOG_MAX_MIB", cls.prediction_log_max_mib),
            prediction_log_format=_choice(
                env, "PREDICTION_LOG_FORMAT", cls.prediction_log_format, ("jsonl", "parquet")
            ),
            log_format=log_format,
            api_key=api_key,
            cors_origins=tuple(o.strip().rstrip("/") for o in origins if o.strip()),
            shutdown_grace_s=_positive_float(env, "SHUTDOWN_GRACE_S", cls.shutdown_grace_s),
            body_timeout_s=_positive_float(env, "BODY_TIMEOUT_S", cls.body_timeout_s),
            ui_max_streams=_positive_int(env, "UI_MAX_STREAMS", cls.ui_max_streams),
            ui_connections=_positive_int(env, "UI_CONNECTIONS", cls.ui_connections),
            ui_files_max_age_s=_positive_float(env, "UI_FILES_MAX_AGE_S", cls.ui_files_max_age_s),
            share_training_rows=_flag(env, "SHARE_TRAINING_ROWS", cls.share_training_rows),
            unseen_categories=_choice(env, "UNSEEN_CATEGORIES", cls.unseen_categories, ("refuse", "accept")),
        )

    @property
    def accept_unseen(self) -> bool:
        """Category values training never saw are answered where the model answers them (SERVING_UNSEEN_CATEGORIES)."""
        return self.unseen_categories == "accept"

    def prediction_log_dir(self, model_tag: str, env: Mapping[str, str] | None = None) -> Path | None:
        """The prediction log's folder for the model being served, or None when it is off."""
        if self.prediction_log.lower() in ("off", "false", "0", "no"):
            return None
        return (
            Path(self.prediction_log) if self.prediction_log else default_prediction_log(env or os.environ, model_tag)
        )

    def cors(self) -> dict[str, object] | None:
        """Options for Starlette's CORSMiddleware, or None (CORS off) unless SERVING_CORS_ORIGINS names origins."""
        if not self.cors_origins:
            return None
        return {
            "allow_origins": list(self.cors_origins),
            "allow_methods": ["GET", "POST"],
            "allow_headers": ["content-type", "authorization", "x-request-id"],
            "expose_headers": ["x-request-id"],
            "max_age": 600,
        }


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    """One of `allowed` from SERVING_<name>, or the default."""
    value = env.get(f"{PREFIX}{name}", default)
    if value not in allowed:
        raise ValueError(f"{PREFIX}{name}={value!r}: use {', '.join(allowed[:-1])} or {allowed[-1]}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """SERVING_<name> as true/false (1/0, yes/no, on/off); the default when unset."""
    value = env.get(f"{PREFIX}{name}")
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{PREFIX}{name}={value!r}: use true or false")


def _workers(value: str) -> int | str:
    """A positive worker count, or "cpu_count" for one worker per core."""
    if value == "cpu_count":
        return value
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{PREFIX}WORKERS={value!r}: use a positive whole number or cpu_count")
    return int(value)


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    """A positive whole number from SERVING_<name>, or the default when unset."""
    value = env.get(f"{PREFIX}{name}")
    if value is None or value == "":
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{PREFIX}{name}={value!r}: use a positive whole number")
    return int(value)


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number from SERVING_<name>, or the default when unset."""
    value = env.get(f"{PREFIX}{name}")
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise ValueError(f"{PREFIX}{name}={value!r}: use a positive number")
    return number
