"""Any classifier trained from a notebook, as a BentoML service: JSON API, model card, and the Gradio UI at /ui.

The model to serve is MODEL_TAG (default iris_clf:latest); everything about its features comes from its card.
"""

from __future__ import annotations

from serving import startup

# First, before the imports below: the web UI's worker starts after the API's (serving/startup.py).
startup.start_ui_worker_after_api()

import gc
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import bentoml
from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import Field, ValidationError
from pydantic_core import to_json
from starlette.middleware.cors import CORSMiddleware

from modelcard.files import EXECUTED_NOTEBOOK_FILE
from modelcard.schema import features_model
from monitoring.bentoml_metrics import label_endpoints
from monitoring.context import current_request_id, new_request_id
from monitoring.logs import follow_bentoml_log_level, use_json_logs, use_text_logs
from monitoring.middleware import RequestTelemetry
from monitoring.monitor import Monitor
from monitoring.retention import Retention
from runtime import DEFAULT_MODEL_TAG
from runtime.predictor import ModelLoadError, Prediction, load_predictor
from runtime.table import FeatureTable
from serving.auth import ApiKeyGuard
from serving.deadline import BodyDeadline
from serving.fastpath import FastJSONRoutes, validation_error_body
from serving.guard import RequestGuard
from serving.headers import SecurityHeaders
from serving.hotpath import serve_hot_path
from serving.jsoninput import harden
from serving.microbatch import MicroBatcher, Waiting
from serving.offload import Offload
from serving.openapi import CorrectedOpenAPI, corrected
from serving.sagemaker import INVOCATIONS_PATH, PING_PATH, Invocations, SageMakerRoutes
from serving.schemas import (
    ModelInfo,
    PredictionResult,
    fields_to_table,
    row_values,
    rows_to_table,
    unseen_categories,
)
from serving.settings import Settings
from serving.shutdown import DrainingConnections, GracefulStop
from serving.store import ModelNotAvailable, pinned_tag, require_stored_model
from serving.uiproxy import UiProxy
from serving.workerapp import wrap_worker_app

if TYPE_CHECKING:
    import gradio as gr

logger = logging.getLogger(__name__)

settings = Settings.from_env()
# Declared at module scope so `bentoml build` packs this model into the bento.
model_ref = bentoml.models.BentoModel(
    pinned_tag(settings.model_tag, Path(__file__).resolve().parent, default=DEFAULT_MODEL_TAG)
)
try:
    stored_model = require_stored_model(model_ref)
    # Loaded here, in every process, so broken model files stop `bentoml serve` at once, not in a worker loop.
    predictor = load_predictor(stored_model, settings.runtime)
except (ModelNotAvailable, ModelLoadError) as error:
    # One line an operator can act on, instead of a traceback: the fix is in the message.
    raise SystemExit(f"The model service cannot start: {error}") from None
card = predictor.card
# Without an API key anyone who reaches the service reads /model: the training rows stay out of it (and so does
# the executed notebook, whose outputs can show rows) unless the operator shares them (docs/security.md).
SHARE_TRAINING_ROWS = settings.api_key is not None or settings.share_training_rows
WITHHELD = [] if SHARE_TRAINING_ROWS else ["card.reference", "/model/notebook"]
public_card = card if SHARE_TRAINING_ROWS else card.model_copy(update={"reference": []})
MODEL_TAG = str(stored_model.tag)
# Named after its model, so `MODEL_TAG=churn_clf:latest bentoml build` makes the bento churn_clf_service.
SERVICE_NAME = f"{stored_model.tag.name}_service"
# Metrics and the prediction log; each worker starts its own in Classifier.__init__.
retention = Retention(
    max_age_days=settings.prediction_log_max_age_days, max_bytes=int(settings.prediction_log_max_mib * 2**20)
)
monitor = Monitor(card, MODEL_TAG, predictor.runtime.name, settings.prediction_log_dir(MODEL_TAG), retention)
if settings.log_format == "json":
    use_json_logs()
# On SIGTERM each worker stops accepting, answers what it accepted, then exits (serving/shutdown.py).
graceful_stop = GracefulStop(settings.shutdown_grace_s)

# The request schema is made from the model's card: its feature names, bounds and an example row.
Features = features_model(card)
FeatureRows = Annotated[list[Features], Field(min_length=1, max_length=settings.max_batch_rows)]  # type: ignore[valid-type]


def result_fields(prediction: Prediction) -> dict[str, object]:
    """The API's view of one prediction, as the JSON object PredictionResult serialises to."""
    return {
        "class": prediction.class_name,
        "probability": prediction.probability,
        "probabilities": prediction.probabilities,
        "model": MODEL_TAG,
    }


def predict_and_record(source: str, table: FeatureTable, started: float) -> list[Prediction]:
    """Predict the rows and report them to monitoring; `started` is when the request began (perf_counter)."""
    predictions = predictor.predict(table)
    monitor.record(source, table, predictions, time.perf_counter() - started)
    return predictions


def predict_records_for_ui(records: list[dict[str, Any]]) -> list[Prediction]:
    """The UI's predictions (records checked by the same schema): the same predictor, logged with source "ui"."""
    return predict_and_record("ui", predictor.table(records), time.perf_counter())


def to_result(prediction: Prediction) -> PredictionResult:
    """The API's view of one prediction, as the typed model BentoML documents and serialises."""
    return PredictionResult.model_validate(result_fields(prediction))


# FastAPI hosts what BentoML's @api cannot: GET endpoints, and the pass-through to the web UI. Its own docs
# are off; BentoML merges its routes into the service's OpenAPI document at /docs.json.
web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
# The web UI's own service mounts Gradio on this one.
ui_web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


def mount_ui() -> gr.Blocks:
    """Build the Gradio UI and mount it on `ui_web` at /ui, once per process; the Blocks.

    Called from WebUI.__init__, which BentoML runs in the UI's worker before it enters the mounted apps'
    lifespans (where Gradio starts its queue). Importing Gradio takes ~4 s: neither the `bentoml serve`
    parent, nor the API's workers, nor `bentoml build` pay for it.
    """
    if _mounted:
        return _mounted[0]
    from ui.files import UiFiles

    files = UiFiles.for_server(SERVICE_NAME, settings.ui_files_max_age_s)
    os.environ.update(files.gradio_environment())  # before Gradio is imported: its folder, and no analytics
    from ui.app import ModelSummary, build_ui
    from ui.mount import mount_blocks, on_queue_failure, shown_files

    created = stored_model.info.creation_time.isoformat(timespec="seconds")
    blocks = build_ui(
        card,
        ModelSummary(MODEL_TAG, created, predictor.runtime.name, notebook_shared=SHARE_TRAINING_ROWS),
        predict_records_for_ui,
        settings.max_batch_rows,
        files,
        # The what-if picture's extra rows are not predictions anyone asked for: not logged, not counted.
        explore=lambda records: predictor.predict(predictor.table(records)),
    )
    mount_blocks(ui_web, blocks, "/ui", public_prefix=settings.root_path, max_file_bytes=settings.max_body_bytes)
    files.start_sweeping(keep=lambda: shown_files(blocks))
    on_queue_failure(restart_ui_worker)
    _mounted.append(blocks)
    return blocks


_mounted: list[gr.Blocks] = []


def restart_ui_worker() -> None:
    """A failed Gradio queue answers no UI call again: exit (the log flushed) so BentoML starts a new worker."""
    monitor.close()
    os._exit(70)


def start_worker() -> None:
    """What every worker of either service does once, before it serves."""
    follow_bentoml_log_level()  # BentoML configured this worker's logging after the module was imported
    if settings.log_format == "json":
        use_json_logs()  # again, for the same reason
    else:
        use_text_logs()
    graceful_stop.install()
    monitor.start()


def settle_heap() -> None:
    """Collect once, freeze what is loaded, then collect young objects less often.

    The garbage collector's passes over the long-lived start-up heap stalled every in-flight request for
    ~200 ms a few times a second under load. Frozen, the loaded objects are never scanned again. Measured on
    2 API workers at 32 clients (the example model): thresholds (50_000, 50, 1000) gave p99 20 ms,
    (5_000, 20, 100) 39 ms,
    the default (700, 10, 10) 29 ms, each at 149-154 MB a worker: without Gradio in the API's workers the
    high thresholds no longer cost memory (docs/performance.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)


# Our prediction routes, with everything every request crosses.
PREDICTION_PATHS = ("/prediction", "/predict_batch")
# BentoML's access log is replaced by monitoring/middleware.py's (the same lines, minus answered predictions,
# which the prediction log records), and the prediction routes are left out of OpenTelemetry's tracing unless
# asked (SERVING_TRACE_PREDICTIONS): each cost a share of the throughput measured in docs/performance.md.
# Both are BentoML's own service configuration; its request metrics stay.
BENTOML_CONFIG: dict[str, Any] = {
    "logging": {"access": {"enabled": False}},
    "tracing": {} if settings.trace_predictions else {"excluded_urls": list(PREDICTION_PATHS)},
}


@bentoml.service(name=f"{SERVICE_NAME}_ui", traffic={"timeout": 30}, workers=1, **BENTOML_CONFIG)
@bentoml.asgi_app(ui_web, path="/")
class WebUI:
    """The Gradio web UI, in one worker of its own: Gradio keeps each session's queue in its process.

    `bentoml serve` starts it beside the API on a Unix socket; the API's workers pass /ui on to it.
    """

    def __init__(self) -> None:
        start_worker()
        self.blocks = mount_ui()
        settle_heap()

    def __is_ready__(self) -> bool:
        """Ready while Gradio's queue takes events (/readyz of the API reports it: Classifier.__is_ready__)."""
        from ui.mount import queue_running

        return queue_running(self.blocks)

    @bentoml.on_shutdown
    def flush_prediction_log(self) -> None:
        """Write what the prediction log still holds before the worker exits."""
        monitor.close()


ui_proxy = UiProxy(
    lambda: startup.dependency_socket(WebUI.name),
    max_body_bytes=settings.max_body_bytes,
    max_streams=settings.ui_max_streams,
    connections=settings.ui_connections,
    allowed_origins=settings.cors_origins,
    # Once the UI has answered anyone, the API's readiness includes the UI's, in every API worker.
    ui_started=startup.ui_was_ready,
    ui_answered=startup.announce_ui_ready,
)
web.mount("/ui", ui_proxy, name="ui")


# /readyz answers for the API alone: the UI starts beside it (Gradio's import takes seconds) and its own
# health does not decide whether the API takes traffic. BentoML probes dependencies unless told not to.
API_CONFIG: dict[str, Any] = {**BENTOML_CONFIG, "runner_probe": {"enabled": False, "timeout": 1, "period": 10}}


@bentoml.service(name=SERVICE_NAME, traffic={"timeout": 30}, workers=settings.workers, **API_CONFIG)
@bentoml.asgi_app(web, path="/")
class Classifier:
    """A scikit-learn classifier trained from a notebook: predictions, its model card, and a web UI at /ui."""

    model = model_ref
    ui = bentoml.depends(WebUI)

    def __init__(self) -> None:
        self.predictor = predictor
        start_worker()
        settle_heap()
        startup.announce_api_started()

    async def __is_ready__(self) -> bool:
        """Ready with the model loaded, unless the web UI, having started, no longer answers."""
        return await ui_proxy.healthy()

    @bentoml.on_shutdown
    def flush_prediction_log(self) -> None:
        """Write what the prediction log still holds before the worker exits."""
        monitor.close()

    # The features are the API's keyword arguments: one JSON object of them, and in Python
    # `bentoml.SyncHTTPClient(url).prediction(tenure=12, contract="two_year", ...)`.
    @bentoml.api(route="/prediction", input_spec=Features)
    def prediction(self, **fields: Any) -> PredictionResult:
        """Predict the class of one row of features."""
        (result,) = predict_and_record("api", fields_to_table(predictor.tables, fields), time.perf_counter())
        return to_result(result)

    @bentoml.api(route="/predict_batch")
    def predict_batch(self, rows: FeatureRows, /) -> list[PredictionResult]:
        """Predict many rows at once; answers come in the order of the rows."""
        table = rows_to_table(predictor.tables, rows)
        return [to_result(p) for p in predict_and_record("batch", table, time.perf_counter())]

    @web.get("/model", response_model=ModelInfo, summary="The model this service runs", tags=["Model"])
    def model_info(self) -> ModelInfo:
        """Tag, creation time, runtime and the model card (metrics, features, classes)."""
        return ModelInfo(
            tag=MODEL_TAG,
            creation_time=stored_model.info.creation_time.isoformat(),
            runtime=self.predictor.runtime.name,
            card=public_card,
            withheld=WITHHELD,
        )

    @web.get("/model/notebook", summary="The executed training notebook, with its outputs", tags=["Model"])
    def model_notebook(self) -> Response:
        """The notebook as the training step ran it, plots included (open it in Jupyter)."""
        if not SHARE_TRAINING_ROWS:
            message = "the executed notebook can show training rows: set SERVING_API_KEY (then send it) or "
            message += "SERVING_SHARE_TRAINING_ROWS=true to serve it"
            body = {"error": message, "detail": [{"type": "withheld", "loc": ["path"], "msg": message}]}
            return JSONResponse(body, status_code=403)
        return FileResponse(
            Path(stored_model.path) / EXECUTED_NOTEBOOK_FILE,
            media_type="application/x-ipynb+json",
            filename=f"{stored_model.tag.name}-{stored_model.tag.version}.ipynb",
        )


# BentoML's request metrics label each request by the route that serves it, never by its raw path (any client
# could otherwise add a series per made-up path); the UI's worker labels everything under /ui as one.
MODEL_PATHS = ("/model", "/model/notebook")
wrap_worker_app(Classifier, lambda app: label_endpoints(app, extra_routes=(*MODEL_PATHS, PING_PATH, INVOCATIONS_PATH)))
wrap_worker_app(WebUI, label_endpoints)

# The hot path: the same input models BentoML built for the two APIs, the same predictor, the same JSON.
_single_input = Classifier.apis["prediction"].input_spec
_batch_input = Classifier.apis["predict_batch"].input_spec
for _input in (_single_input, _batch_input):
    # Invalid JSON and repeated keys refused, errors capped, and refusals for a category value training never
    # saw counted per feature, on every path (serving/jsoninput.py).
    harden(_input, _single_input, lambda error: monitor.count_unseen(unseen_categories(error, card)))


# A scikit-learn model takes milliseconds a call: its predictions run in a thread, off the event loop; so does
# reading any large body (serving/offload.py).
MODEL_IN_THREAD = predictor.runtime.name != "onnx"
offload = Offload(MODEL_IN_THREAD)


def predict_waiting_rows(batch: list[Waiting]) -> list[Prediction]:
    """Predict the single-row requests of one event-loop turn as one table; report each to monitoring."""
    table = predictor.tables.from_rows([waiting.row for waiting in batch])
    predictions = predictor.predict(table)
    done = time.perf_counter()
    request_ids = [waiting.request_id for waiting in batch]
    monitor.record_requests("api", table, predictions, request_ids, [done - waiting.started for waiting in batch])
    return predictions


single_rows = MicroBatcher(predict_waiting_rows, in_thread=MODEL_IN_THREAD)


async def _predict_json(body: bytes) -> tuple[int, bytes]:
    """POST /prediction on raw bytes: validated here, predicted with the other rows of this loop turn."""
    started = time.perf_counter()
    try:
        features = await offload(_single_input.model_validate_json, body or b"{}", predicts=False)
    except ValidationError as error:
        return 400, json.dumps(validation_error_body(error)).encode()
    request_id = current_request_id() or new_request_id()
    prediction = await single_rows.predict(row_values(features), request_id, started)
    return 200, to_json(result_fields(prediction))


def _answer_batch_json(body: bytes) -> tuple[int, bytes]:
    """POST /predict_batch on raw bytes."""
    started = time.perf_counter()
    try:
        rows = _batch_input.model_validate_json(body or b"{}").root
    except ValidationError as error:
        return 400, json.dumps(validation_error_body(error)).encode()
    # Plain dicts straight to JSON: building 1,000 PredictionResult models took longer than predicting.
    table = rows_to_table(predictor.tables, rows)
    return 200, to_json([result_fields(p) for p in predict_and_record("batch", table, started)])


async def _predict_batch_json(body: bytes) -> tuple[int, bytes]:
    """POST /predict_batch, in a thread for a scikit-learn model or a large body (the request's id goes along)."""
    return await offload(_answer_batch_json, body)


# Our middlewares, outermost first (BentoML's metrics and tracing wrap them all).
# With an API key set, every way to a prediction or to the training data needs it; health, metrics and docs stay open.
# Outermost: requests are counted in flight, and told to close their connection while the worker drains.
Classifier.add_asgi_middleware(DrainingConnections, stop=graceful_stop)
# A body that does not arrive in time is answered 408; every answer carries the browser-safety headers.
Classifier.add_asgi_middleware(BodyDeadline, seconds=settings.body_timeout_s)
Classifier.add_asgi_middleware(SecurityHeaders)
# CORS next, so every answer (the fast path's, a 401, a 413) carries its headers. BentoML's own http.cors
# option sits inside these middlewares and would miss the fast path's answers.
cors = settings.cors()
if cors is not None:
    Classifier.add_asgi_middleware(CORSMiddleware, **cors)
# Every answer, refusals included, carries a request id, and errors are counted by kind.
Classifier.add_asgi_middleware(RequestTelemetry, monitor=monitor, paths=PREDICTION_PATHS)
Classifier.add_asgi_middleware(
    CorrectedOpenAPI,
    build=lambda: corrected(
        Classifier.openapi_spec.asdict(),
        PREDICTION_PATHS,
        (*PREDICTION_PATHS, *MODEL_PATHS) if settings.api_key else (),
    ),
)
if settings.api_key:
    Classifier.add_asgi_middleware(
        ApiKeyGuard,
        api_key=settings.api_key,
        paths=(*PREDICTION_PATHS, *MODEL_PATHS),
        prefixes=("/ui",),
        ui_path="/ui",
        public_root=settings.root_path,
        revoked_folder=startup.run_folder(),  # this server's workers share signed-out sessions there
    )
# Nothing parses a body that is not JSON or is over the limit.
Classifier.add_asgi_middleware(RequestGuard, paths=PREDICTION_PATHS, max_body_bytes=settings.max_body_bytes)
if settings.fast_path:
    Classifier.add_asgi_middleware(
        FastJSONRoutes,
        handlers={"/prediction": _predict_json, "/predict_batch": _predict_batch_json},
        server_name=f"BentoML Service/{Classifier.name}",
    )
    # ...and outside BentoML's own middlewares too, unless tracing needs them (serving/hotpath.py).
    if not settings.trace_predictions:
        serve_hot_path(Classifier, PREDICTION_PATHS, pending=monitor.pending)

# SageMaker's container contract (serving/sagemaker.py): GET /ping answers as /readyz does; POST /invocations takes
# JSON or CSV and goes through the same input models, predictor, metrics and prediction log as the API. Added last
# (innermost), so draining, CORS and request ids apply; with an API key set, the key guards /invocations too.
if settings.api_key:
    Classifier.add_asgi_middleware(ApiKeyGuard, api_key=settings.api_key, paths=(INVOCATIONS_PATH,))
Classifier.add_asgi_middleware(
    SageMakerRoutes,
    invocations=Invocations(
        single=_single_input,
        batch=_batch_input,
        card=card,
        tables=predictor.tables,
        predict=predict_and_record,
        result=result_fields,
        max_rows=settings.max_batch_rows,
        refused=lambda error: monitor.count_unseen(unseen_categories(error, card)),
    ),
    max_body_bytes=settings.max_body_bytes,
    server_name=f"BentoML Service/{Classifier.name}",
    offload=offload,
)
