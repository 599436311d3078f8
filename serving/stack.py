"""Everything a request to the API crosses before and after the model, installed in one call.

The middlewares, outermost first (BentoML's own metrics, tracing and request context wrap them all, except
on the hot path, serving/hotpath.py):

1. `DrainingConnections`: requests are counted in flight and told to close their connection while the
   worker drains after SIGTERM (serving/shutdown.py);
2. `BodyDeadline`: a body that does not arrive in time is answered 408 (serving/deadline.py);
3. `SecurityHeaders`: every answer carries the browser-safety headers (serving/headers.py);
4. `CORSMiddleware`, when origins are allowed: here, so every answer (the JSON routes', a 401, a 413)
   carries its headers; BentoML's own http.cors option sits inside and would miss them;
5. `RequestTelemetry`: every answer, refusals included, carries a request id, is access-logged and its
   errors counted by kind (monitoring/middleware.py);
6. `CorrectedOpenAPI`: /docs.json as OpenAPI tools read it (serving/openapi.py);
7. `ApiKeyGuard`, with an API key set: every way to a prediction, to /model or to the UI needs it;
8. `RequestGuard`: nothing parses a posted body that is not JSON (or CSV outcomes) or is over the limit
   (serving/guard.py); `CsvOutcomes` then hands CSV outcomes on as JSON (serving/feedback_csv.py);
9. `JsonRoutes`: JSON POSTs to the prediction routes go to the handler through their codecs;
10. `ApiKeyGuard` for /invocations, then `SageMakerRoutes`: SageMaker's contract, innermost, so draining,
    CORS and request ids apply.

Whatever passes all of them (other routes, and the prediction routes when SERVING_FAST_PATH is off) reaches
BentoML's own handlers: its @api methods, the FastAPI routes and the UI pass-through.
"""

from __future__ import annotations

from typing import Any, get_args

from starlette.middleware.cors import CORSMiddleware

from monitoring.bentoml_metrics import label_endpoints
from monitoring.middleware import RequestTelemetry
from monitoring.monitor import Monitor
from serving import startup
from serving.auth import ApiKeyGuard
from serving.codecs import CsvCodec, JsonListCodec, JsonObjectCodec
from serving.deadline import BodyDeadline
from serving.feedback import FEEDBACK_PATH
from serving.feedback_csv import CsvOutcomes
from serving.guard import RequestGuard
from serving.handler import PredictionHandler
from serving.headers import SecurityHeaders
from serving.hotpath import serve_hot_path
from serving.jsoninput import harden
from serving.jsonroutes import JsonRoutes
from serving.model import ServedModel
from serving.openapi import CorrectedOpenAPI, corrected
from serving.sagemaker import INVOCATIONS_PATH, PING_PATH, InvocationCodecs, SageMakerRoutes
from serving.schemas import unseen_categories
from serving.settings import Settings
from serving.shutdown import DrainingConnections, GracefulStop
from serving.workerapp import wrap_worker_app

# Our prediction routes, with everything every request crosses, and the model's own GET routes.
PREDICTION_PATHS = ("/prediction", "/predict_batch")
MODEL_PATHS = ("/model", "/model/notebook")


def install_stack(
    api: Any,
    ui: Any,
    model: ServedModel,
    handler: PredictionHandler,
    monitor: Monitor,
    settings: Settings,
    graceful_stop: GracefulStop,
) -> None:
    """Add the middlewares above to the `api` service (a bentoml.Service), and label both services' metrics."""
    # BentoML's request metrics label each request by the route that serves it, never by its raw path (any client
    # could otherwise add a series per made-up path); the UI's worker labels everything under /ui as one.
    extra_routes = (*MODEL_PATHS, PING_PATH, INVOCATIONS_PATH)
    wrap_worker_app(api, lambda app: label_endpoints(app, extra_routes=extra_routes))
    wrap_worker_app(ui, label_endpoints)

    # The same input models BentoML built for the two APIs, on every path: invalid JSON and repeated keys refused,
    # errors capped, and refusals for a category value training never saw counted per feature.
    single_input = api.apis["prediction"].input_spec
    batch_input = api.apis["predict_batch"].input_spec

    def refused(error: Any) -> None:
        monitor.count_unseen(unseen_categories(error, model.card))

    for input_model in (single_input, batch_input):
        harden(input_model, single_input, refused)
    # /feedback's list of outcomes alike (BentoML's root model of list[Outcome]); its refusals count nothing.
    feedback_input = api.apis["feedback"].input_spec
    harden(feedback_input, get_args(feedback_input.model_fields["root"].annotation)[0], lambda _: None)
    server_name = f"BentoML Service/{api.name}"
    key_paths = (*PREDICTION_PATHS, FEEDBACK_PATH, *MODEL_PATHS)
    posted_paths = (*PREDICTION_PATHS, FEEDBACK_PATH)

    api.add_asgi_middleware(DrainingConnections, stop=graceful_stop)
    api.add_asgi_middleware(BodyDeadline, seconds=settings.body_timeout_s)
    api.add_asgi_middleware(SecurityHeaders)
    cors = settings.cors()
    if cors is not None:
        api.add_asgi_middleware(CORSMiddleware, **cors)
    api.add_asgi_middleware(RequestTelemetry, monitor=monitor, paths=PREDICTION_PATHS)
    api.add_asgi_middleware(
        CorrectedOpenAPI,
        build=lambda: corrected(api.openapi_spec.asdict(), posted_paths, key_paths if settings.api_key else ()),
    )
    if settings.api_key:
        api.add_asgi_middleware(
            ApiKeyGuard,
            api_key=settings.api_key,
            paths=key_paths,
            prefixes=("/ui",),
            ui_path="/ui",
            public_root=settings.root_path,
            revoked_folder=startup.run_folder(),  # this server's workers share signed-out sessions there
        )
    api.add_asgi_middleware(
        RequestGuard, paths=posted_paths, max_body_bytes=settings.max_body_bytes, csv_paths=(FEEDBACK_PATH,)
    )
    columns = [spec.name for spec in model.card.features]
    api.add_asgi_middleware(CsvOutcomes, path=FEEDBACK_PATH, columns=columns, max_body_bytes=settings.max_body_bytes)
    if settings.fast_path:
        routes = {
            "/prediction": JsonObjectCodec(single_input, model.tag),
            "/predict_batch": JsonListCodec(batch_input, model.tag),
        }
        api.add_asgi_middleware(JsonRoutes, handler=handler, codecs=routes, server_name=server_name)
        # ...and outside BentoML's own middlewares too, unless tracing needs them (serving/hotpath.py).
        if not settings.trace_predictions:
            serve_hot_path(api, PREDICTION_PATHS, pending=monitor.pending)

    if settings.api_key:
        api.add_asgi_middleware(ApiKeyGuard, api_key=settings.api_key, paths=(INVOCATIONS_PATH,))
    codecs = InvocationCodecs(
        JsonObjectCodec(single_input, model.tag, rows_located=True),
        JsonListCodec(batch_input, model.tag, rows_located=True),
        CsvCodec(batch_input, single_input, model.card, settings.max_batch_rows, refused),
    )
    api.add_asgi_middleware(
        SageMakerRoutes,
        handler=handler,
        codecs=codecs,
        max_body_bytes=settings.max_body_bytes,
        server_name=server_name,
    )
