"""Wrap the ASGI app each BentoML worker serves: the one hook outside BentoML's own middlewares.

BentoML places `add_asgi_middleware` middlewares inside its own (metrics, tracing, timeout, context) and has no
hook outside them, so `wrap_worker_app` swaps the service object's class for a subclass whose `to_asgi` wraps
BentoML's app. The hot path (serving/hotpath.py) and the bounded metrics labels (monitoring/bentoml_metrics.py) use
it; tests/test_hot_path.py fails when BentoML changes what this relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp

Wrapper = Callable[[ASGIApp], ASGIApp]


def wrap_worker_app(service: Any, wrap: Wrapper) -> None:
    """Make `service.to_asgi()` return `wrap(app)` around BentoML's app; a later wrapper wraps the earlier ones."""
    current = type(service)
    found: list[Wrapper] | None = current.__dict__.get("_worker_app_wrappers")
    wrappers: list[Wrapper] = [] if found is None else found
    if found is None:
        bentoml_service = current

        class WrappedService(bentoml_service):  # type: ignore[misc,valid-type]
            """BentoML's Service, its worker's ASGI app wrapped."""

            __slots__ = ()
            _worker_app_wrappers = wrappers

            def to_asgi(self, is_main: bool = True) -> ASGIApp:
                app = bentoml_service.to_asgi(self, is_main)
                for wrapper in self._worker_app_wrappers:
                    app = wrapper(app)
                return app

        service.__class__ = WrappedService
    wrappers.append(wrap)
