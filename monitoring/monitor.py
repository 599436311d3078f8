"""One place the service reports each prediction to: the Prometheus metrics and the prediction log."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelcard.card import ModelCard
from monitoring.context import current_request_id, new_request_id
from monitoring.metrics import Pending, PredictionMetrics
from monitoring.predlog import PredictionLog
from monitoring.retention import Retention
from runtime.predictor import Prediction
from runtime.table import FeatureTable

logger = logging.getLogger(__name__)
# How stale /metrics may be at most for a worker the scrape does not reach (the one it reaches flushes first).
METRICS_FLUSH_S = 0.5


class Monitor:
    """Created when the service module loads; `start` (in each worker) creates the metrics and the log writer."""

    def __init__(
        self,
        card: ModelCard,
        model_tag: str,
        runtime: str,
        log_directory: Path | None,
        retention: Retention | None = None,
    ) -> None:
        self.card = card
        self.model_tag = model_tag
        self.runtime = runtime
        self.log_directory = log_directory
        self.retention = retention or Retention()
        self.metrics: PredictionMetrics | None = None
        self.log: PredictionLog | None = None
        self._stop_flushing = threading.Event()

    def start(self, registry: Any = None) -> None:
        """Create this process's metrics (in `registry`, default prometheus_client's) and log writer (once)."""
        if self.metrics is not None:
            return
        self.metrics = PredictionMetrics(self.card, self.model_tag, self.runtime, registry=registry)
        threading.Thread(target=self._flush_forever, name="metrics-flush", daemon=True).start()
        if self.log_directory is not None:
            self.log = PredictionLog(
                self.log_directory,
                self.model_tag,
                self.card.features,
                on_drop=self.metrics.log_dropped.inc,
                retention=self.retention,
            )
            logger.info("Prediction log: %s", self.log_directory)

    def record(self, source: str, table: FeatureTable, predictions: Sequence[Prediction], latency_s: float) -> None:
        """Report one request's predictions (source: api, batch or ui)."""
        if self.metrics is not None:
            self.metrics.observe(source, table, predictions)
        if self.log is not None:
            self.log.record(current_request_id() or new_request_id(), source, table, predictions, latency_s)

    def record_requests(
        self,
        source: str,
        table: FeatureTable,
        predictions: Sequence[Prediction],
        request_ids: Sequence[str],
        latencies_s: Sequence[float],
    ) -> None:
        """Report single-row requests predicted together as one table: row i is the request request_ids[i]'s."""
        if self.metrics is not None:
            self.metrics.observe_later(source, table, predictions)
        if self.log is not None:
            self.log.record_rows(request_ids, source, table, predictions, latencies_s)

    def count_unseen(self, features: Sequence[str]) -> None:
        """Report a request refused for category values training never saw."""
        if self.metrics is not None:
            for feature in features:
                self.metrics.count_unseen(feature)

    def _flush_forever(self) -> None:
        """Apply the gathered metrics half a second after the first change: never older than that when scraped.

        Asleep while nothing is counted, so an idle worker does not wake (docs/performance.md).
        """
        due = self.pending().due
        while True:
            due.wait()
            if self._stop_flushing.wait(METRICS_FLUSH_S):
                return
            self.flush_metrics()

    def pending(self) -> Pending:
        """Where this worker gathers increments until the next flush (for other series, e.g. BentoML's)."""
        if self.metrics is None:
            raise RuntimeError("Monitor.start() has not run in this process")
        return self.metrics.pending

    def flush_metrics(self) -> None:
        """Bring the Prometheus values up to date (before /metrics answers)."""
        if self.metrics is not None:
            self.metrics.flush()

    def close(self) -> None:
        """Write what the prediction log holds, stop its writer, and bring the metrics up to date."""
        if self.log is not None:
            self.log.close()
        self._stop_flushing.set()
        if self.metrics is not None:
            self.metrics.pending.due.set()  # wakes the flush thread, which then stops
        self.flush_metrics()

    def count_error(self, status: int, endpoint: str) -> None:
        """Report a refused or failed prediction request."""
        if self.metrics is not None:
            self.metrics.count_error(status, endpoint)
