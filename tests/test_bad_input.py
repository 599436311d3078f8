"""Hand-picked bad requests, each answered with a 4xx whose JSON body names what is wrong: never a 500, never a guess.

Every JSON case runs twice: through the fast path and through BentoML's own handler (the test media type
routes around the fast path), so both answer alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from serving.settings import Settings
from tests.fakes import SETOSA

LIMITS = Settings()
ROW = json.dumps(SETOSA)


@dataclass(frozen=True)
class Case:
    """One bad request and what the answer must say."""

    path: str
    body: bytes
    status: int
    loc: list[Any]  # the `loc` of one error in the answer's `detail`: the field, row or header at fault
    content_type: str = "application/json"
    message: str = ""  # a part of the error's msg, where the wording matters (the allowed values)


def _row(**changes: Any) -> bytes:
    return json.dumps({**SETOSA, **changes}).encode()


def _raw(field: str, literal: str) -> bytes:
    """A row whose `field` is written as a raw JSON token (NaN, Infinity, huge numbers)."""
    return ROW.replace(f'"{field}": {SETOSA[field]}', f'"{field}": {literal}').encode()


CASES = {
    "missing field": Case(
        "/prediction",
        json.dumps({k: v for k, v in SETOSA.items() if k != "sepal_width"}).encode(),
        400,
        ["sepal_width"],
    ),  # noqa: E501
    "extra field": Case("/prediction", _row(stem_length=3.0), 400, ["stem_length"]),
    "null": Case("/prediction", _row(petal_width=None), 400, ["petal_width"]),
    "NaN literal": Case("/prediction", _raw("sepal_length", "NaN"), 400, ["sepal_length"]),
    "Infinity literal": Case("/prediction", _raw("sepal_length", "Infinity"), 400, ["sepal_length"]),
    "-Infinity literal": Case("/prediction", _raw("petal_length", "-Infinity"), 400, ["petal_length"]),
    "string number": Case("/prediction", _row(petal_width="0.2"), 400, ["petal_width"]),
    "word": Case("/prediction", _row(petal_width="wide"), 400, ["petal_width"]),
    "boolean": Case("/prediction", _row(sepal_length=True), 400, ["sepal_length"]),
    "list": Case("/prediction", _row(sepal_length=[5.1]), 400, ["sepal_length"]),
    "below the accepted range": Case("/prediction", _row(petal_width=-50), 400, ["petal_width"]),
    "absurdly large": Case("/prediction", _row(petal_width=10_000), 400, ["petal_width"]),
    "larger than a double": Case("/prediction", _raw("petal_width", "1" + "0" * 400), 400, ["petal_width"]),
    "1e309": Case("/prediction", _raw("petal_width", "1e309"), 400, ["petal_width"]),
    "empty body": Case("/prediction", b"", 400, ["sepal_length"]),
    "invalid JSON": Case("/prediction", b'{"sepal_length": 5.1,', 400, []),
    "NUL byte": Case("/prediction", b"\x00", 400, []),
    "batch not JSON (NUL byte)": Case("/predict_batch", b"\x00", 400, []),
    "batch cut short": Case("/predict_batch", b'[{"sepal_length": 5.1', 400, []),
    "batch NaN literal": Case(
        "/predict_batch", b"[" + _raw("sepal_width", "NaN") + b"]", 400, ["root", 0, "sepal_width"]
    ),
    "array for one row": Case("/prediction", json.dumps([SETOSA]).encode(), 400, []),
    "wrong content type": Case("/prediction", ROW.encode(), 415, ["header", "content-type"], "text/plain"),
    "form content type": Case(
        "/prediction", b"sepal_length=5.1", 415, ["header", "content-type"], "application/x-www-form-urlencoded"
    ),
    "over the size limit": Case("/predict_batch", b"[" + b" " * LIMITS.max_body_bytes + b"]", 413, ["body"]),
    "batch over its maximum": Case(
        "/predict_batch", json.dumps([SETOSA] * (LIMITS.max_batch_rows + 1)).encode(), 400, ["root"]
    ),
    "batch with one bad row": Case(
        "/predict_batch",
        json.dumps([SETOSA, SETOSA, {**SETOSA, "sepal_length": "x"}]).encode(),
        400,
        ["root", 2, "sepal_length"],  # noqa: E501
    ),
    "batch row missing a field": Case(
        "/predict_batch", json.dumps([SETOSA, {"sepal_length": 5.0}]).encode(), 400, ["root", 1, "sepal_width"]
    ),
    "empty batch": Case("/predict_batch", b"[]", 400, ["root"]),
    "object for a batch": Case("/predict_batch", ROW.encode(), 400, ["root"]),
}


# A wrong content type is refused by the request guard before either path, so it runs once.
RUNS = [(name, "fast path") for name in CASES] + [
    (name, "BentoML handler") for name, case in CASES.items() if case.content_type == "application/json"
]


# A media type BentoML's handler parses as JSON but the fast path leaves alone: the request takes BentoML's path.
BENTOML_HANDLER_TYPE = "application/vnd.model-test+json"


def check_bad_request(client: Any, case: Case, route: str) -> None:
    """Send one bad request by one route; it must get the case's status and name its field, row or header."""
    content_type = BENTOML_HANDLER_TYPE if route == "BentoML handler" else case.content_type
    response = client.post(case.path, content=case.body, headers={"content-type": content_type})
    assert response.status_code == case.status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    locations = [error["loc"] for error in body["detail"]]
    assert all(error["msg"] for error in body["detail"])
    if case.loc:
        assert case.loc in locations, locations
    assert response.headers["x-request-id"]
    if case.message:
        assert any(case.message in error["msg"] for error in body["detail"]), body


@pytest.mark.parametrize(("name", "route"), RUNS)
def test_bad_request_gets_4xx_naming_the_problem(http_client: TestClient, name: str, route: str) -> None:
    check_bad_request(http_client, CASES[name], route)
