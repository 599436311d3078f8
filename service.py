"""Any classifier trained from a notebook, as a BentoML service: JSON API, model card, and the Gradio UI at /ui.

The model to serve is MODEL_TAG (default iris_clf:latest); everything about its features comes from its card.
A request's way through, from the socket to the model and back: docs/architecture.md.
"""

from __future__ import annotations

from serving import startup

# First, before the imports below: the web UI's worker starts after the API's (serving/startup.py).
startup.start_ui_worker_after_api()

import time
from pathlib import Path
from typing import Annotated, Any, cast

import bentoml
from bentoml import Service
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import Field

from modelcard.schema import features_model
from runtime import DEFAULT_MODEL_TAG
from serving.bento_requirements import write_bento_requirements
from serving.codecs import field_row, model_rows, result
from serving.feedback import FEEDBACK_PATH, record_feedback
from serving.handler import PredictionHandler
from serving.model import load_served_model
from serving.schemas import FeedbackResult, ModelInfo, PredictionResult, outcome_model
from serving.settings import Settings
from serving.stack import PREDICTION_PATHS, install_stack
from serving.store import pinned_tag
from serving.uiproxy import UiProxy
from serving.webui import WebUiMount
from serving.worker import Worker, bentoml_config, make_monitor, settle_heap

settings = Settings.from_env()
# Declared at module scope so `bentoml build` packs this model into the bento.
model_ref = bentoml.models.BentoModel(
    pinned_tag(settings.model_tag, Path(__file__).resolve().parent, default=DEFAULT_MODEL_TAG)
)
model = load_served_model(model_ref, settings)
# What `bentoml build` installs into this model's bento: the serving packages plus the model's own (bentofile.yaml).
write_bento_requirements(model.card, model.tag, Path(__file__).resolve().parent)
monitor = make_monitor(settings, model)
worker = Worker(settings, monitor)
handler = PredictionHandler(model.predictor, monitor, accept_unseen=settings.accept_unseen)

# The request schema is made from the model's card: its feature names, bounds and an example row.
Features = features_model(model.card, accept_unseen=settings.accept_unseen)
FeatureRows = Annotated[list[Features], Field(min_length=1, max_length=settings.max_batch_rows)]  # type: ignore[valid-type]
# An outcome names one of the card's classes; a call carries as many as a batch of predictions.
Outcome = outcome_model(model.card)
Outcomes = Annotated[list[Outcome], Field(min_length=1, max_length=settings.max_batch_rows)]  # type: ignore[valid-type]

# FastAPI hosts what BentoML's @api cannot: GET endpoints, and the pass-through to the web UI. Its own docs
# are off; BentoML merges its routes into the service's OpenAPI document at /docs.json.
web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
# The web UI's own service mounts Gradio on this one.
ui_web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
web_ui = WebUiMount(ui_web, model, handler, settings, worker)
UI_SERVICE_NAME = f"{model.service_name}_ui"


@bentoml.service(name=UI_SERVICE_NAME, workers=1, **bentoml_config(settings, PREDICTION_PATHS, True))
@bentoml.asgi_app(ui_web, path="/")
class WebUI:
    """The Gradio web UI, in one worker of its own: Gradio keeps each session's queue in its process.

    `bentoml serve` starts it beside the API on a Unix socket; the API's workers pass /ui on to it.
    """

    def __init__(self) -> None:
        worker.start()
        web_ui.mount()
        settle_heap()

    def __is_ready__(self) -> bool:
        """Ready while Gradio's queue takes events (/readyz of the API reports it: Classifier.__is_ready__)."""
        return web_ui.running()

    @bentoml.on_shutdown
    def flush_prediction_log(self) -> None:
        """Write what the prediction log still holds before the worker exits."""
        worker.stop()


ui_proxy = UiProxy(
    lambda: startup.dependency_socket(UI_SERVICE_NAME),
    max_body_bytes=settings.max_body_bytes,
    max_streams=settings.ui_max_streams,
    connections=settings.ui_connections,
    allowed_origins=settings.cors_origins,
    # Once the UI has answered anyone, the API's readiness includes the UI's, in every API worker.
    ui_started=startup.ui_was_ready,
    ui_answered=startup.announce_ui_ready,
)
web.mount("/ui", ui_proxy, name="ui")


@bentoml.service(name=model.service_name, workers=settings.workers, **bentoml_config(settings, PREDICTION_PATHS, False))
@bentoml.asgi_app(web, path="/")
class Classifier:
    """A scikit-learn classifier trained from a notebook: predictions, its model card, and a web UI at /ui."""

    model = model_ref
    ui = bentoml.depends(WebUI)

    def __init__(self) -> None:
        worker.start()
        settle_heap()
        startup.announce_api_started()

    async def __is_ready__(self) -> bool:
        """Ready with the model loaded, unless the web UI, having started, no longer answers."""
        return await ui_proxy.healthy()

    @bentoml.on_shutdown
    def flush_prediction_log(self) -> None:
        """Write what the prediction log still holds before the worker exits."""
        worker.stop()

    # The features are the API's keyword arguments: one JSON object of them, and in Python
    # `bentoml.SyncHTTPClient(url).prediction(tenure=12, contract="two_year", ...)`. With SERVING_FAST_PATH on
    # (the default), JSON bodies are answered before BentoML's handler by the same handler and input models.
    @bentoml.api(route="/prediction", input_spec=Features)
    def prediction(self, **fields: Any) -> PredictionResult:
        """Predict the class of one row of features."""
        row = field_row(fields, len(model.card.features))
        (prediction,) = handler.predict("api", [row], time.perf_counter())
        return result(prediction, model.tag)

    @bentoml.api(route="/predict_batch")
    def predict_batch(self, rows: FeatureRows, /) -> list[PredictionResult]:
        """Predict many rows at once; answers come in the order of the rows."""
        predictions = handler.predict("batch", model_rows(rows), time.perf_counter())
        return [result(p, model.tag) for p in predictions]

    @bentoml.api(route=FEEDBACK_PATH)
    def feedback(self, outcomes: Outcomes, /) -> FeedbackResult:
        """Report what really happened to earlier predictions, by their answers' X-Request-ID (and row, for a batch)."""
        return record_feedback(monitor, outcomes, model.tag)

    @web.get("/model", response_model=ModelInfo, summary="The model this service runs", tags=["Model"])
    def model_info(self) -> ModelInfo:
        """Tag, creation time, runtime and the model card (metrics, features, classes)."""
        return model.info()

    @web.get("/model/notebook", summary="The executed training notebook, with its outputs", tags=["Model"])
    def model_notebook(self) -> Response:
        """The notebook as the training step ran it, plots included (open it in Jupyter)."""
        return model.notebook()


# mypy keeps a decorated class's own type (python/mypy#3135): these are the Service objects BentoML made.
api_service = cast("Service[Classifier]", Classifier)
ui_service = cast("Service[WebUI]", WebUI)
install_stack(api_service, ui_service, model, handler, monitor, settings, worker.graceful_stop)
