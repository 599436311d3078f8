"""One place the service reports each prediction (and each reported outcome) to: the metrics and the logs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelcard.card import ModelCard
from monitoring.context import current_request_id, new_request_id
from monitoring.metrics import Pending, PredictionMetrics
from monitoring.outcomes import Logged, Outcome, OutcomeLog, PredictionIndex
from monitoring.predlog import PredictionLog
from monitoring.retention import Retention
from runtime.predictor import Prediction
from runtime.table import FeatureTable

logger = logging.getLogger(__name__)
# How stale /metrics may be at most for a worker the scrape does not reach (the one it reaches flushes first).
METRICS_FLUSH_S = 0.5


class OutcomesOff(RuntimeError):
    """Outcomes cannot be taken: the prediction log is off, so there is nothing to match and nowhere to keep them."""


class Monitor:
    """Created when the service module loads; `start` (in each worker) creates the metrics and the log writer."""

    def __init__(
        self,
        card: ModelCard,
        model_tag: str,
        runtime: str,
        log_directory: Path | None,
        retention: Retention | None = None,
        compact: bool = False,
    ) -> None:
        self.card = card
        self.compact = compact  # finished log segments become Parquet (SERVING_PREDICTION_LOG_FORMAT=parquet)
        self.model_tag = model_tag
        self.runtime = runtime
        self.log_directory = log_directory
        self.retention = retention or Retention()
        self.metrics: PredictionMetrics | None = None
        self.log: PredictionLog | None = None
        self.outcome_log: OutcomeLog | None = None
        self.index: PredictionIndex | None = None
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
                compact=self.compact,
            )
            # Beside the prediction log, in its folder and under its limits (its writer sweeps both kinds).
            self.outcome_log = OutcomeLog(
                self.log_directory,
                self.model_tag,
                on_drop=self.metrics.outcome_log_dropped.inc,
                retention=self.retention,
            )
            self.index = PredictionIndex(self.log_directory)  # built on the first outcomes, not at start
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

    def record_outcomes(self, outcomes: Sequence[Outcome], feedback_id: str) -> list[Logged | None]:
        """Match outcomes (by request id, or by key and window) with their logged predictions, count and keep them.

        Returns each outcome's logged prediction row, None where it is not (or not yet) in the log: a prediction
        reaches its file up to a flush interval (0.1 s) after its answer. Unmatched outcomes are kept too.
        """
        if self.log_directory is None:
            raise OutcomesOff("the prediction log is off (SERVING_PREDICTION_LOG=off): outcomes cannot be matched")
        if self.index is None or self.outcome_log is None:
            raise RuntimeError("Monitor.start() has not run in this process")
        by_id = self.index.find([(o.request_id, o.row) for o in outcomes if o.key is None and o.request_id])
        by_key = iter(self.index.find_keys([o for o in outcomes if o.key is not None]))
        ids = iter(by_id)
        found = [next(by_key) if o.key is not None else next(ids) for o in outcomes]
        if self.metrics is not None:
            self.metrics.count_outcomes(
                [(f.class_name if f else None, o.label) for f, o in zip(found, outcomes, strict=True)]
            )
        # A keyed outcome is kept with the prediction it matched now: later readers need not search again.
        self.outcome_log.record(feedback_id, [o.matched_as(f) for o, f in zip(outcomes, found, strict=True)])
        return found

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
        """Write what the logs hold, stop their writers, and bring the metrics up to date."""
        if self.log is not None:
            self.log.close()
        if self.outcome_log is not None:
            self.outcome_log.close()
        self._stop_flushing.set()
        if self.metrics is not None:
            self.metrics.pending.due.set()  # wakes the flush thread, which then stops
        self.flush_metrics()

    def count_error(self, status: int, endpoint: str) -> None:
        """Report a refused or failed prediction request."""
        if self.metrics is not None:
            self.metrics.count_error(status, endpoint)
