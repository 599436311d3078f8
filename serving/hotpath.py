"""The prediction routes' hot path: answered outside BentoML's per-request middlewares, minus none of their duties.

BentoML wraps every request in Starlette's error handler, its request metrics, OpenTelemetry, the traffic
timeout and its request context, all outside the middlewares a service adds; in one process that cost
~100 µs a request, four times a small model's prediction. POSTs to the prediction routes skip them: they go through
the very middlewares the service adds to BentoML's stack (the same classes and options, built a second
time: request id and access log, draining, CORS, API key, 413/415 guard, the fast JSON handlers), and
BentoML's request counter and latency histogram still count them, under their own names and labels,
gathered like our own metrics and applied every half second and before /metrics answers.

Left to BentoML's full stack: every other route, every other method, and the prediction routes too when
tracing is asked for (SERVING_TRACE_PREDICTIONS), so those requests get their spans.

BentoML has no hook outside its own middlewares (add_asgi_middleware places ours inside them), so the hot
path wraps BentoML's app with serving/workerapp.py. What this relies on (that hook, RunnerTrafficMetricsMiddleware
and its metric attributes) is pinned by tests/test_hot_path.py, which fails when BentoML changes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitoring.bentoml_metrics import BentoRequestMetrics, request_metrics
from monitoring.metrics import Pending
from serving.workerapp import wrap_worker_app


class HotPath:
    """Outermost ASGI app: POSTs to `paths` go through `build_chain(app)`; all else to BentoML's `app`.

    Any media type: the chain's request guard refuses what is not JSON, as it would inside BentoML's stack.
    """

    def __init__(
        self,
        app: ASGIApp,
        paths: Iterable[str],
        build_chain: Callable[[ASGIApp], ASGIApp],
        metrics: Callable[[ASGIApp], BentoRequestMetrics | None],
    ) -> None:
        self.app = app
        self.paths = frozenset(paths)
        # Whatever the chain passes on (it should not: the fast handlers answer every POST) gets BentoML's stack.
        self.chain = build_chain(app)
        self._make_metrics = metrics
        self._metrics: BentoRequestMetrics | None = None
        self._metrics_found = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        metrics = self._metrics if self._metrics_found else self._find_metrics()
        started = time.perf_counter()
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.chain(scope, receive, send_counted)
        finally:
            if metrics is not None:
                metrics.record(scope["path"], status, time.perf_counter() - started)

    def _find_metrics(self) -> BentoRequestMetrics | None:
        """BentoML's request metrics, found on the first request (its app builds its stack lazily)."""
        self._metrics, self._metrics_found = self._make_metrics(self.app), True
        return self._metrics


def serve_hot_path(service: Any, paths: Iterable[str], pending: Callable[[], Pending]) -> None:
    """Make `service.to_asgi()` (what each BentoML worker serves) answer `paths` on the hot path."""
    paths = tuple(paths)

    def chain(inner: ASGIApp) -> ASGIApp:
        """The service's own middlewares around `inner`, outermost first, as BentoML stacks them."""
        app = inner
        for middleware, options in reversed(service.middlewares):
            app = middleware(app, **options)
        return app

    wrap_worker_app(service, lambda app: HotPath(app, paths, chain, request_metrics(pending)))
