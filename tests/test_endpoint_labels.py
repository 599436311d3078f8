"""BentoML's request metrics get a bounded set of endpoint labels, and the routes still see the real path."""

from __future__ import annotations

import inspect

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from monitoring.bentoml_metrics import METRICS_MIDDLEWARE, OTHER, EndpointLabels, find_middleware, label_endpoints


async def _path(request: Request) -> PlainTextResponse:
    """Answer the path the route sees."""
    return PlainTextResponse(request.scope["path"])


class RunnerTrafficMetricsMiddleware:
    """Stands in for BentoML's: notes the path it labels a request with, then calls the app."""

    seen: list[str]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(scope["path"])
        await self.app(scope, receive, send)


class PassThrough:
    """Some other middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _service_app(*middleware: Middleware) -> Starlette:
    """Routes, a FastAPI app mounted at "" with its own routes and the UI's mount, static files, a parameter route."""
    inner = FastAPI()
    inner.add_api_route("/model", lambda: {"name": "iris"})
    inner.router.routes.append(Mount("/ui", app=Starlette(routes=[Route("/x", _path), Route("/", _path)])))
    routes = [
        Route("/prediction", _path, methods=["GET", "POST"]),
        Route("/livez", _path),
        Route("/results/{token}", _path),
        Mount("/static_content", app=Starlette(routes=[Route("/app.js", _path)])),
        Mount("", app=inner),
    ]
    return Starlette(routes=routes, middleware=list(middleware))


def test_exact_routes_keep_their_path_and_the_rest_is_bounded() -> None:
    labels = EndpointLabels(["/prediction", "/livez"], mounts=["/ui", "/ui/gradio_api/", "/static_content", "", "/"])
    assert labels("/prediction") == "/prediction"
    assert labels("/livez") == "/livez"
    assert labels("/ui") == "/ui/*"
    assert labels("/ui/") == "/ui/*"
    assert labels("/ui/theme.css") == "/ui/*"
    assert labels("/ui/gradio_api") == "/ui/gradio_api/*"
    assert labels("/ui/gradio_api/queue/join") == "/ui/gradio_api/*"  # the longest mount wins
    assert labels("/static_content/app.js") == "/static_content/*"
    assert labels("/uix") == OTHER  # not under /ui
    assert labels("/prediction/1") == OTHER
    assert labels("/") == OTHER
    assert labels("/nope/1") == OTHER


def test_labels_of_an_app() -> None:
    labels = EndpointLabels.of_app(_service_app(), extra_routes=["/classify"])
    assert {"/prediction", "/livez", "/model", "/classify", "/openapi.json"} <= labels.routes
    assert labels.mounts == ("/static_content", "/ui")
    assert labels("/model") == "/model"
    assert labels("/classify") == "/classify"
    assert labels("/ui/x") == "/ui/*"
    assert labels("/static_content/app.js") == "/static_content/*"
    # A parameterised route would make one label per value: it is no label of its own.
    assert not any("{" in route for route in labels.routes)
    assert labels("/results/0123abcd") == OTHER


def test_find_middleware_by_class_name_also_through_a_subclass() -> None:
    class Subclassed(RunnerTrafficMetricsMiddleware):
        pass

    app = _service_app(Middleware(PassThrough), Middleware(Subclassed), Middleware(PassThrough))
    assert type(find_middleware(app, METRICS_MIDDLEWARE)) is Subclassed
    assert type(find_middleware(app, "PassThrough")) is PassThrough
    assert find_middleware(_service_app(Middleware(PassThrough)), METRICS_MIDDLEWARE) is None


def test_the_metrics_read_the_label_and_the_routes_the_real_path() -> None:
    app = _service_app(Middleware(PassThrough), Middleware(RunnerTrafficMetricsMiddleware))
    assert label_endpoints(app, extra_routes=["/classify"]) is app
    middleware = find_middleware(app, METRICS_MIDDLEWARE)
    client = TestClient(app)
    answers = {path: client.get(path) for path in ("/prediction", "/model", "/ui/x", "/nope/1", "/results/abc")}
    assert middleware.seen == ["/prediction", "/model", "/ui/*", OTHER, OTHER]
    for path in ("/prediction", "/ui/x", "/results/abc"):  # each route sees its real path
        assert (answers[path].status_code, answers[path].text) == (200, path)
    assert answers["/model"].json() == {"name": "iris"}
    assert answers["/nope/1"].status_code == 404


def test_an_app_without_the_metrics_middleware_is_returned_unchanged() -> None:
    app = _service_app(Middleware(PassThrough))
    assert label_endpoints(app) is app
    client = TestClient(app)
    assert client.get("/ui/x").text == "/ui/x"
    assert client.get("/nope/1").status_code == 404


def test_bentomls_metrics_middleware_labels_by_the_path_it_reads() -> None:
    from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware as BentoMLs

    assert BentoMLs.__name__ == METRICS_MIDDLEWARE
    # label_endpoints hands the label in scope["path"]: a BentoML that labels by anything else breaks it.
    assert 'endpoint = scope["path"]' in inspect.getsource(BentoMLs.__call__)
