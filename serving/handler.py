"""Predict rows and record them: the one object every entry point calls (the JSON routes, BentoML's @api
methods, SageMaker's routes and the web UI).

A request is decoded once by its codec (serving/codecs.py) into rows, made one FeatureTable here, predicted
by the predictor, reported to monitoring (metrics and the prediction log), and encoded once by a codec.
Single rows are micro-batched with the other single rows of the same event-loop turn (serving/microbatch.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from modelcard.card import FeatureKind
from modelcard.schema import accepts_unseen
from monitoring.context import current_request_id, new_request_id
from monitoring.monitor import Monitor
from runtime.predictor import Prediction, Predictor
from serving.codecs import JSON, Codec, Row
from serving.microbatch import MicroBatcher, Waiting
from serving.offload import Offload

logger = logging.getLogger(__name__)

# An answer on the wire: status, body, media type.
Answer = tuple[int, bytes, str]
# The whole answer to a failure: details go to the log (with the request id), never to the client.
INTERNAL_ERROR = json.dumps(
    {"error": "internal error while predicting; the service log has the details under this request's X-Request-ID"}
).encode()


class PredictionHandler:
    """Rows → one table → the model → monitoring: every prediction the service makes goes through `predict`."""

    def __init__(self, predictor: Predictor, monitor: Monitor, accept_unseen: bool = False) -> None:
        self.predictor = predictor
        self.monitor = monitor
        # Where the schema takes category values training never saw: (position, name, the values it saw).
        self._unseen_checks = [
            (index, spec.name, frozenset(spec.categories or {}))
            for index, spec in enumerate(predictor.card.features)
            if spec.kind is FeatureKind.CATEGORY and accepts_unseen(spec, accept_unseen)
        ]
        # A scikit-learn model takes milliseconds a call: its predictions run in a thread, off the event loop;
        # so does decoding any large body (serving/offload.py).
        self.offload = Offload(model_in_thread=predictor.runtime.name != "onnx")
        self._single_rows = MicroBatcher(self._predict_waiting, in_thread=self.offload.model_in_thread)

    def predict(self, source: str, rows: Sequence[Row], started: float) -> list[Prediction]:
        """Predict the rows and report them (source: api, batch or ui); `started` is when the request began."""
        table = self.predictor.tables.from_rows(rows)
        predictions = self._flag_unseen(rows, self.predictor.predict(table))
        self.monitor.record(source, table, predictions, time.perf_counter() - started)
        return predictions

    def explore(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict rows nobody asked for as requests (the UI's what-if picture): neither logged nor counted."""
        return self.predictor.predict(self.predictor.tables.from_rows(rows))

    async def predict_one(self, row: Row, started: float) -> Prediction:
        """One request's row, predicted in one model call with the other single rows of this loop turn."""
        return await self._single_rows.predict(row, current_request_id() or new_request_id(), started)

    async def answer(self, body: bytes, decoder: Codec, encoder: Codec | None = None) -> Answer:
        """A request body decoded by `decoder`, predicted and recorded, and encoded by `encoder` (the decoder's).

        Never raises: a failure is logged and answered 500 here (one escaping to BentoML's middlewares left the
        client with no answer at all).
        """
        try:
            return await self._answer(body, decoder, encoder or decoder)
        except Exception:
            logger.exception("Prediction failed")
            return 500, INTERNAL_ERROR, JSON

    async def _answer(self, body: bytes, decoder: Codec, encoder: Codec) -> Answer:
        started = time.perf_counter()
        if not decoder.single:
            # Decoded and predicted in one go: one hop to a thread for a scikit-learn model or a large body.
            return await self.offload(self._answer_rows, body, decoder, encoder, started)
        try:
            (row,) = await self.offload(decoder.decode, body, predicts=False)
        except ValidationError as error:
            return 400, decoder.refusal(error), JSON
        prediction = await self.predict_one(row, started)
        return 200, encoder.encode([prediction]), encoder.content_type

    def _answer_rows(self, body: bytes, decoder: Codec, encoder: Codec, started: float) -> Answer:
        try:
            rows = decoder.decode(body)
        except ValidationError as error:
            return 400, decoder.refusal(error), JSON
        return 200, encoder.encode(self.predict("batch", rows, started)), encoder.content_type

    def _predict_waiting(self, batch: list[Waiting]) -> list[Prediction]:
        """Predict the single-row requests of one loop turn as one table; report each as its own request."""
        rows = [waiting.row for waiting in batch]
        table = self.predictor.tables.from_rows(rows)
        predictions = self._flag_unseen(rows, self.predictor.predict(table))
        done = time.perf_counter()
        request_ids = [waiting.request_id for waiting in batch]
        latencies = [done - waiting.started for waiting in batch]
        self.monitor.record_requests("api", table, predictions, request_ids, latencies)
        return predictions

    def _flag_unseen(self, rows: Sequence[Sequence[Any]], predictions: list[Prediction]) -> list[Prediction]:
        """Each prediction named with the features whose value training never saw (accepted ones), counted."""
        if not self._unseen_checks:
            return predictions
        flagged = []
        for row, prediction in zip(rows, predictions, strict=True):
            unseen = tuple(name for i, name, seen in self._unseen_checks if row[i] is not None and row[i] not in seen)
            if unseen:
                self.monitor.count_unseen(unseen)
                prediction = dataclasses.replace(prediction, unseen=unseen)
            flagged.append(prediction)
        return flagged
