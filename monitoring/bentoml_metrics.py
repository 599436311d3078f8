"""BentoML's own request metrics: labelled by route, and written for the requests the hot path answers.

Labels.
BentoML's RunnerTrafficMetricsMiddleware labels every request with its raw path, 401s and 404s included, so
10,000 made-up paths made 10,000 series: /metrics grew from 4 to 46 MB and one scrape took 9.2 s (Prometheus
gives up at 10 s), and the paths of other users' batch results were listed there for anyone to fetch. Here
each request is labelled by the route that serves it: an exact route by its path ("/prediction"), anything
under a mounted app by the mount ("/ui/*"), and everything else as "other". The middleware's own code is
unchanged; only the path it reads is the label (tests/test_endpoint_labels.py pins what this relies on).

The hot path's requests never reach that middleware: BentoRequestMetrics writes the very same series for
them (tests/test_hot_path.py pins BentoML's metric attributes it uses).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from monitoring.metrics import Pending

METRICS_MIDDLEWARE = "RunnerTrafficMetricsMiddleware"
OTHER = "other"
# Where the real path waits while the metrics middleware reads the label in its place.
_REAL_PATH = "model_service.real_path"


def find_middleware(app: Any, cls_name: str) -> Any | None:
    """The instance of the middleware class named `cls_name` (or a subclass) inside a Starlette app's stack."""
    if getattr(app, "middleware_stack", None) is None and hasattr(app, "build_middleware_stack"):
        app.middleware_stack = app.build_middleware_stack()
    layer = getattr(app, "middleware_stack", app)
    while layer is not None:
        if any(cls.__name__ == cls_name for cls in type(layer).__mro__):
            return layer
        layer = getattr(layer, "app", None)
    return None


class EndpointLabels:
    """The label of a path: itself for a known route, its mount's "<path>/*" under a mount, else OTHER."""

    def __init__(self, routes: Iterable[str], mounts: Iterable[str] = ()) -> None:
        self.routes = frozenset(routes)
        self.mounts = tuple(sorted({m.rstrip("/") for m in mounts if m.strip("/")}, key=len, reverse=True))

    def __call__(self, path: str) -> str:
        if path in self.routes:
            return path
        for mount in self.mounts:
            if path == mount or path.startswith(f"{mount}/"):
                return f"{mount}/*"
        return OTHER

    @classmethod
    def of_app(cls, app: Any, extra_routes: Iterable[str] = ()) -> EndpointLabels:
        """The plain routes and mounts of a Starlette app (mounts at "/" looked into), plus `extra_routes`.

        A FastAPI app's routes declared on a service class sit in routers of FastAPI's own: name them in
        `extra_routes`.
        """
        routes, mounts = set(extra_routes), set[str]()
        for path, is_mount in _walk(app, ""):
            (mounts if is_mount else routes).add(path)
        return cls(routes, mounts)


def _walk(app: Any, prefix: str) -> Iterable[tuple[str, bool]]:
    """(path, is a mount) of every plain route and mount under `app`, with `prefix` before them."""
    for route in getattr(app, "routes", ()):
        if isinstance(route, Mount):
            path = f"{prefix}{route.path}"
            if route.path in ("", "/"):
                yield from _walk(route.app, prefix)
            else:
                yield path, True
        elif isinstance(route, Route) and not route.param_convertors:
            yield f"{prefix}{route.path}", False


def label_endpoints(app: ASGIApp, extra_routes: Iterable[str] = ()) -> ASGIApp:
    """Make BentoML's request metrics in `app` label requests by route; `app` itself is returned."""
    middleware = find_middleware(app, METRICS_MIDDLEWARE)
    if middleware is None:  # metrics are off
        return app
    extra_routes = tuple(extra_routes)
    labels: list[EndpointLabels] = []
    base = type(middleware)

    class LabelledByRoute(base):  # type: ignore[misc,valid-type]
        """BentoML's request metrics, reading a route's label where it read the raw path."""

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in ("http", "websocket"):
                if not labels:
                    # Read at the first request: a service's own routes and the UI's mount are added at its start.
                    labels.append(EndpointLabels.of_app(app, extra_routes))
                label = labels[0](scope["path"])
                if label != scope["path"]:
                    scope = {**scope, "path": label, _REAL_PATH: scope["path"]}
            await base.__call__(self, scope, receive, send)

    middleware.__class__ = LabelledByRoute
    middleware.app = _RealPath(middleware.app)
    return app


class _RealPath:
    """Inside the metrics middleware: the request's real path back before anything else sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _REAL_PATH in scope:
            real = scope[_REAL_PATH]
            scope = {key: value for key, value in scope.items() if key != _REAL_PATH}
            scope["path"] = real
        await self.app(scope, receive, send)


# The gauge of the last request's time is set at most this often: it is a timestamp, not a count.
LAST_REQUEST_EVERY_S = 1.0


class BentoRequestMetrics:
    """BentoML's per-request series (`<namespace>_request_total`, `_request_duration_seconds`) for hot requests.

    Uses the metric objects of BentoML's own RunnerTrafficMetricsMiddleware, so the series, names and labels
    are exactly those BentoML writes for every other request; increments wait in `Pending` like ours do.
    """

    def __init__(self, middleware: Any, pending: Callable[[], Pending], labels: Callable[[], dict[str, str]]) -> None:
        self.middleware = middleware
        self.pending = pending
        self.labels = labels
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._last_request: Any = None
        self._last_set = 0.0

    def _series(self, endpoint: str, status: int) -> tuple[Any, Any]:
        """The counter and histogram children of one endpoint and status, resolved once."""
        middleware = self.middleware
        if not middleware._is_setup:
            middleware._setup()
        labels = {**self.labels(), "endpoint": endpoint, "http_response_code": status}
        children = (
            middleware.metrics_request_total.labels(**labels),
            middleware.metrics_request_duration.labels(**labels),
        )
        self._children[endpoint, status] = children
        return children

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        total, duration = self._children.get((endpoint, status)) or self._series(endpoint, status)
        pending = self.pending()
        with pending.lock:
            pending.add(total._value)
            pending.observe(duration, seconds)
        now = time.time()
        if now - self._last_set >= LAST_REQUEST_EVERY_S:
            if self._last_request is None:
                labels = self.labels()
                self._last_request = self.middleware.metrics_last_request_timestamp.labels(
                    service_name=labels["service_name"],
                    service_version=labels["service_version"],
                    runner_name=labels["runner_name"],
                )
            self._last_request.set(now)
            self._last_set = now


def request_metrics(pending: Callable[[], Pending]) -> Callable[[ASGIApp], BentoRequestMetrics | None]:
    """A factory of BentoRequestMetrics for BentoML's app, or None when its metrics are off."""

    def labels() -> dict[str, str]:
        from bentoml._internal.context import server_context

        return {
            "service_name": server_context.bento_name,
            "service_version": server_context.bento_version,
            "runner_name": server_context.service_name or "",
        }

    def make(app: ASGIApp) -> BentoRequestMetrics | None:
        middleware = find_middleware(app, "RunnerTrafficMetricsMiddleware")
        return None if middleware is None else BentoRequestMetrics(middleware, pending, labels)

    return make
