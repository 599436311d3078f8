"""What every worker process of either service does: its logs, its graceful stop, its monitoring, its heap."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable
from typing import Any

from monitoring.logs import follow_bentoml_log_level, use_json_logs, use_text_logs
from monitoring.monitor import Monitor
from monitoring.retention import Retention
from serving.model import ServedModel
from serving.settings import Settings
from serving.shutdown import GracefulStop


def make_monitor(settings: Settings, model: ServedModel) -> Monitor:
    """Metrics and the prediction log for the model; each worker starts its own (Worker.start)."""
    retention = Retention(
        max_age_days=settings.prediction_log_max_age_days, max_bytes=int(settings.prediction_log_max_mib * 2**20)
    )
    log_dir = settings.prediction_log_dir(model.tag)
    compact = settings.prediction_log_format == "parquet"
    return Monitor(model.card, model.tag, model.predictor.runtime.name, log_dir, retention, compact)


def bentoml_config(settings: Settings, prediction_paths: Iterable[str], probe_dependencies: bool) -> dict[str, Any]:
    """BentoML's own service configuration for one of the two services.

    BentoML's access log is replaced by monitoring/middleware.py's (the same lines, minus answered predictions,
    which the prediction log records), and the prediction routes are left out of OpenTelemetry's tracing unless
    asked (SERVING_TRACE_PREDICTIONS): each cost a share of the throughput (docs/performance.md). Its request
    metrics stay. The API's /readyz answers for the API alone when `probe_dependencies` is off: the UI starts
    beside it (Gradio's import takes seconds) and its health does not decide whether the API takes traffic.
    """
    config: dict[str, Any] = {
        "traffic": {"timeout": 30},
        "logging": {"access": {"enabled": False}},
        "tracing": {} if settings.trace_predictions else {"excluded_urls": list(prediction_paths)},
    }
    if not probe_dependencies:
        config["runner_probe"] = {"enabled": False, "timeout": 1, "period": 10}
    return config


class Worker:
    """Created when the service module loads; `start` runs once in each worker of either service."""

    def __init__(self, settings: Settings, monitor: Monitor) -> None:
        self.settings = settings
        self.monitor = monitor
        # On SIGTERM each worker stops accepting, answers what it accepted, then exits (serving/shutdown.py).
        self.graceful_stop = GracefulStop(settings.shutdown_grace_s)
        if settings.log_format == "json":
            use_json_logs()

    def start(self) -> None:
        """What every worker does once, before it serves; ends by settling the heap."""
        follow_bentoml_log_level()  # BentoML configured this worker's logging after the module was imported
        self._use_logs()  # again, for the same reason
        self.graceful_stop.install()
        self.monitor.start()

    def stop(self) -> None:
        """Write what the prediction log still holds before the worker exits."""
        self.monitor.close()

    def exit_for_restart(self) -> None:
        """Exit at once (the log flushed), so BentoML starts a new worker: for a part that cannot recover."""
        self.monitor.close()
        os._exit(70)

    def _use_logs(self) -> None:
        if self.settings.log_format == "json":
            use_json_logs()
        else:
            use_text_logs()


def settle_heap() -> None:
    """Collect once, freeze what is loaded, then collect young objects less often.

    The garbage collector's passes over the long-lived start-up heap stalled every in-flight request for
    ~200 ms a few times a second under load; frozen, the loaded objects are never scanned again. The thresholds
    were measured on 2 API workers at 32 clients (docs/performance.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
