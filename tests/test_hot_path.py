"""The hot path outside BentoML's middlewares, and what it relies on inside BentoML (fails when BentoML changes)."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from monitoring.bentoml_metrics import find_middleware
from serving.hotpath import HotPath
from tests.fakes import SETOSA


def test_the_worker_app_is_the_hot_path_around_bentomls_own(http_client: TestClient, service_module: Any) -> None:
    app = http_client.app
    assert isinstance(app, HotPath)
    assert app.paths == frozenset({"/prediction", "/predict_batch"})
    # What BentoML's request metrics middleware must still look like for the hot path to write its series.
    middleware = find_middleware(app.app, "RunnerTrafficMetricsMiddleware")
    assert middleware is not None
    if not middleware._is_setup:
        middleware._setup()
    for name in ("metrics_request_total", "metrics_request_duration", "metrics_last_request_timestamp"):
        assert hasattr(getattr(middleware, name), "labels"), name
    # The class swap keeps it a BentoML Service (BentoML's loader and CLI check for one).
    from _bentoml_sdk import Service

    assert isinstance(service_module.Classifier, Service)


def test_bentomls_request_series_count_hot_path_requests(http_client: TestClient, service_module: Any) -> None:
    from prometheus_client import REGISTRY

    def count(name: str, status: str) -> float:
        service_module.monitor.flush_metrics()  # what /metrics does first
        labels = {"endpoint": "/prediction", "http_response_code": status}
        return sum(
            sample.value
            for metric in REGISTRY.collect()
            for sample in metric.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    total, duration = "bentoml_service_request_total", "bentoml_service_request_duration_seconds_count"
    before = {series: (count(series, "200"), count(series, "400")) for series in (total, duration)}
    for _ in range(3):
        assert http_client.post("/prediction", json=SETOSA).status_code == 200
    assert http_client.post("/prediction", json={**SETOSA, "sepal_length": "long"}).status_code == 400
    for series in (total, duration):
        assert (count(series, "200"), count(series, "400")) == (before[series][0] + 3, before[series][1] + 1)


def test_other_routes_take_bentomls_stack() -> None:
    seen: list[str] = []

    async def bentoml_app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(f"bentoml {scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def chain(inner: Any) -> Any:
        async def hot(scope: Any, receive: Any, send: Any) -> None:
            seen.append(f"hot {scope['method']} {scope['path']}")
            await inner(scope, receive, send)

        return hot

    client = TestClient(HotPath(bentoml_app, ["/prediction"], chain, lambda app: None))
    client.post("/prediction", json={})
    client.post("/prediction", content=b"{}", headers={"content-type": "application/vnd.x+json"})
    client.post("/prediction", content=b"a,b", headers={"content-type": "text/csv"})
    client.get("/prediction")
    client.post("/model", json={})
    assert seen == [
        "hot POST /prediction",
        "bentoml POST /prediction",  # the chain handed on (the fast handlers never do)
        # Any media type takes the chain: its request guard answers 415 for what is not JSON.
        "hot POST /prediction",
        "bentoml POST /prediction",
        "hot POST /prediction",
        "bentoml POST /prediction",
        "bentoml GET /prediction",
        "bentoml POST /model",
    ]
