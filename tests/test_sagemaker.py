"""SageMaker's container contract in process: /ping, and /invocations in JSON and CSV with the API's own rules."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from pydantic import Field, RootModel, ValidationError
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from modelcard.schema import features_model
from monitoring.monitor import Monitor
from serving.codecs import CsvCodec, JsonListCodec, JsonObjectCodec
from serving.handler import PredictionHandler
from serving.jsoninput import MAX_ERRORS
from serving.sagemaker import CSV, JSON, InvocationCodecs, SageMakerRoutes
from tests.fakes import SETOSA, VIRGINICA

IRIS_ORDER = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def csv_row(row: dict[str, Any], names: list[str]) -> str:
    """One CSV line for a row of JSON values, as a SageMaker client writes it: blanks empty, booleans as words."""
    cells = ["" if row.get(n) is None else str(row[n]).lower() if isinstance(row[n], bool) else row[n] for n in names]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def invoke(client: TestClient, body: str | bytes, content_type: str, accept: str | None = None) -> Any:
    headers = {"content-type": content_type} | ({"accept": accept} if accept else {})
    return client.post("/invocations", content=body, headers=headers)


# --- the iris service, wired as service.py wires it ---------------------------------------------------------


@pytest.fixture
def client(http_client: TestClient) -> TestClient:
    return http_client


def test_ping_is_200_with_an_empty_body_once_ready(client: TestClient) -> None:
    response = client.get("/ping")
    assert (response.status_code, response.content) == (200, b"")


def test_json_object_answers_like_prediction(client: TestClient) -> None:
    response = invoke(client, json.dumps(SETOSA), JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert response.json() == client.post("/prediction", json=SETOSA).json()
    assert response.headers["x-request-id"]


def test_json_list_answers_like_predict_batch(client: TestClient) -> None:
    rows = [VIRGINICA, SETOSA]
    response = invoke(client, json.dumps(rows), "application/json; charset=utf-8")
    assert response.status_code == 200
    assert response.json() == client.post("/predict_batch", json=rows).json()


def test_csv_rows_in_feature_order_answer_csv_lines(client: TestClient, service_module) -> None:
    names = [spec.name for spec in service_module.model.card.features]
    assert names == IRIS_ORDER
    response = invoke(client, csv_row(VIRGINICA, names) + csv_row(SETOSA, names), CSV)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(CSV)
    lines = list(csv.reader(io.StringIO(response.text)))
    assert [line[0] for line in lines] == ["virginica", "setosa"]
    expected = client.post("/predict_batch", json=[VIRGINICA, SETOSA]).json()
    for line, answer in zip(lines, expected, strict=True):
        # The class, then each class's probability in the card's class order (GET /model lists it).
        assert [float(p) for p in line[1:]] == list(answer["probabilities"].values())


def test_accept_chooses_the_answer_format(client: TestClient) -> None:
    as_csv = invoke(client, json.dumps(SETOSA), JSON, accept=CSV)
    assert as_csv.headers["content-type"].startswith(CSV)
    assert as_csv.text.startswith("setosa,")
    as_json = invoke(client, csv_row(SETOSA, IRIS_ORDER), CSV, accept="application/json")
    assert as_json.headers["content-type"] == JSON
    assert [answer["class"] for answer in as_json.json()] == ["setosa"]  # CSV is rows: always a list
    for accept in ("*/*", "text/html, */*;q=0.8"):
        assert invoke(client, csv_row(SETOSA, IRIS_ORDER), CSV, accept=accept).text.startswith("setosa,")
    refused = invoke(client, json.dumps(SETOSA), JSON, accept="application/x-recordio-protobuf")
    assert refused.status_code == 406 and refused.json()["detail"][0]["loc"] == ["header", "accept"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "loc", "kind"),
    [
        (json.dumps({**SETOSA, "stem_length": 1.0}), JSON, 400, ["stem_length"], "extra_forbidden"),
        (json.dumps({**SETOSA, "petal_width": "wide"}), JSON, 400, ["petal_width"], "float_type"),
        (json.dumps([SETOSA, {**SETOSA, "sepal_length": -99.0}]), JSON, 400, [1, "sepal_length"], "greater_than_equal"),
        ("{nope", JSON, 400, [], "json_invalid"),
        ("5.1,3.5,1.4\n", CSV, 400, [0], "csv_columns"),
        ("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3,9\n", CSV, 400, [1], "csv_columns"),
        ("5.1,3.5,wide,0.2\n", CSV, 400, [0, "petal_length"], "float_parsing"),
        ("5.1,3.5,1.4,nan\n", CSV, 400, [0, "petal_width"], "finite_number"),
        ("5.1,3.5,,0.2\n", CSV, 400, [0, "petal_length"], "missing"),
        (",".join(IRIS_ORDER) + "\n5.1,3.5,1.4,0.2\n", CSV, 400, [0], "csv_header"),
        (b"\xff\xfe5.1", CSV, 400, ["body"], "csv_invalid"),
        ("", CSV, 400, ["body"], "missing"),
        (" \n", JSON, 400, ["body"], "missing"),
        ("5.1,3.5,1.4,0.2", "text/plain", 415, ["header", "content-type"], "unsupported_media_type"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_row_and_column(
    client: TestClient, body: str | bytes, content_type: str, status: int, loc: list, kind: str
) -> None:
    response = invoke(client, body, content_type)
    assert response.status_code == status, response.text
    first = response.json()["detail"][0]
    assert (first["loc"], first["type"]) == (loc, kind)
    assert response.headers["x-request-id"]


def test_wrong_methods_and_other_routes(client: TestClient) -> None:
    assert client.get("/invocations").status_code == 405
    assert client.post("/ping").status_code == 405
    assert client.get("/livez").status_code == 200  # everything else passes on


def test_a_body_over_the_limit_is_413(client: TestClient, service_module) -> None:
    rows = csv_row(SETOSA, IRIS_ORDER) * (service_module.settings.max_body_bytes // 15 + 1)
    assert invoke(client, rows, CSV).status_code == 413


def test_more_rows_than_a_batch_takes_are_refused(client: TestClient, service_module) -> None:
    rows = csv_row(SETOSA, IRIS_ORDER) * (service_module.settings.max_batch_rows + 1)
    response = invoke(client, rows, CSV)
    assert response.status_code == 400 and response.json()["detail"][0]["type"] == "too_long"


def test_a_megabyte_of_bad_csv_answers_a_small_error(client: TestClient, service_module) -> None:
    """The row count is checked before any row: 1 MiB of two-cell rows answered 161 MB of errors before."""
    body = b"a,b\n" * (service_module.settings.max_body_bytes // 4)
    response = invoke(client, body, CSV)
    assert response.status_code == 400 and len(response.content) < 1_000
    assert response.json()["detail"][0]["type"] == "too_long"


def test_every_row_bad_lists_the_first_errors_and_their_number(client: TestClient) -> None:
    rows = "1,2\n" * 1000  # 1,000 rows of the wrong shape, each an error
    response = invoke(client, rows, CSV)
    detail = response.json()["detail"]
    assert response.status_code == 400 and len(response.content) < 10_000
    assert len(detail) == MAX_ERRORS + 1 and [d["loc"] for d in detail[:2]] == [[0], [1]]
    assert detail[-1]["type"] == "too_many_errors" and "1000 errors" in detail[-1]["msg"]
    cells = ",".join(["wide"] * len(IRIS_ORDER)) + "\n"
    detail = invoke(client, cells * 1000, CSV).json()["detail"]
    assert len(detail) == MAX_ERRORS + 1 and detail[0]["loc"] == [0, IRIS_ORDER[0]]


# --- the churn model: categories, a boolean, blanks -------------------------------------------------------


def sagemaker_app(inner: Any, predictor: Any, refused: list[ValidationError]) -> SageMakerRoutes:
    """SageMakerRoutes around `inner` for the model, its codecs built as serving/stack.py builds them."""
    Features = features_model(predictor.card)
    Rows = RootModel[Annotated[list[Features], Field(min_length=1, max_length=1000)]]  # service.py's FeatureRows
    codecs = InvocationCodecs(
        JsonObjectCodec(Features, "churn_clf:test", rows_located=True),
        JsonListCodec(Rows, "churn_clf:test", rows_located=True),
        CsvCodec(Rows, Features, predictor.card, 1000, refused.append),
    )
    handler = PredictionHandler(predictor, Monitor(predictor.card, "churn_clf:test", predictor.runtime.name, None))
    return SageMakerRoutes(inner, handler, codecs, max_body_bytes=1_048_576, server_name="test")


@pytest.fixture(scope="module")
def churn(churn_tag: str) -> Iterator[tuple[TestClient, Any, list[Any]]]:
    """SageMakerRoutes around the real churn model: (client, predictor, refused bodies)."""
    import bentoml

    from runtime.predictor import load_predictor

    predictor = load_predictor(bentoml.models.get(churn_tag), "auto")
    refused: list[ValidationError] = []
    ready = Starlette(routes=[Route("/readyz", lambda request: PlainTextResponse("\n"))])
    with TestClient(sagemaker_app(ready, predictor, refused)) as client:
        yield client, predictor, refused


@pytest.fixture(scope="module")
def churn_example(churn: tuple[TestClient, Any, list[Any]]) -> dict[str, Any]:
    card = churn[1].card
    return {spec.name: card.examples[0].get(spec.name) for spec in card.features}


def churn_names(churn: tuple[TestClient, Any, list[Any]]) -> list[str]:
    return [spec.name for spec in churn[1].card.features]


def test_churn_csv_with_categories_and_blanks_answers_as_json_does(
    churn: tuple[TestClient, Any, list[Any]], churn_example: dict[str, Any]
) -> None:
    client, predictor, _ = churn
    names = churn_names(churn)
    blank = {**churn_example, "totalcharges": None}
    as_csv = invoke(client, csv_row(churn_example, names) + csv_row(blank, names), CSV, accept=JSON)
    as_json = invoke(client, json.dumps([churn_example, blank]), JSON)
    assert as_csv.status_code == as_json.status_code == 200, as_csv.text
    assert as_csv.json() == as_json.json()
    lines = invoke(client, csv_row(blank, names), CSV).text.splitlines()
    assert len(lines) == 1
    klass, *probabilities = next(csv.reader(lines))
    assert klass in predictor.card.class_names and len(probabilities) == len(predictor.card.class_names)
    assert math.isclose(sum(map(float, probabilities)), 1.0, abs_tol=1e-4)


def test_churn_booleans_as_words_and_quoted_cells(
    churn: tuple[TestClient, Any, list[Any]], churn_example: dict[str, Any]
) -> None:
    client, _, _ = churn
    names = churn_names(churn)
    line = csv_row(churn_example, names)
    flag = names.index("seniorcitizen")
    for word in ("yes", "TRUE", "1", "no"):
        cells = next(csv.reader([line]))
        cells[flag] = word
        quoted = ",".join(f'"{c}"' for c in cells) + "\r\n"
        assert invoke(client, quoted, CSV).status_code == 200, (word, quoted)


@pytest.mark.parametrize(
    ("change", "loc", "kind"),
    [
        ({"contract": "weekly"}, "contract", "literal_error"),
        ({"seniorcitizen": "maybe"}, "seniorcitizen", "bool_parsing"),
        ({"tenure": "12.5"}, "tenure", "int_from_float"),
        ({"tenure": "twelve"}, "tenure", "float_parsing"),
        ({"contract": ""}, "contract", "missing"),
    ],
)
def test_churn_bad_cells_name_the_row_and_column(
    churn: tuple[TestClient, Any, list[Any]],
    churn_example: dict[str, Any],
    change: dict[str, str],
    loc: str,
    kind: str,
) -> None:
    client, _, refused = churn
    names = churn_names(churn)
    cells = next(csv.reader([csv_row(churn_example, names)]))
    for name, text in change.items():
        cells[names.index(name)] = text
    before = len(refused)
    response = invoke(client, csv_row(churn_example, names) + ",".join(cells) + "\n", CSV)
    assert response.status_code == 400
    first = response.json()["detail"][0]
    assert (first["loc"], first["type"]) == ([1, loc], kind)
    assert len(refused) == before + 1  # the service counts unseen categories from these
    if kind == "literal_error":
        assert "'month-to-month'" in first["msg"]  # the allowed values are listed, as for JSON


def test_churn_json_unseen_category_is_refused_by_the_same_model(
    churn: tuple[TestClient, Any, list[Any]], churn_example: dict[str, Any]
) -> None:
    client, _, _ = churn
    response = invoke(client, json.dumps({**churn_example, "contract": "weekly"}), JSON)
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["contract"]


def test_ping_follows_readiness(churn: tuple[TestClient, Any, list[Any]]) -> None:
    """While /readyz refuses (the worker still starting, or stopping), /ping does too."""
    not_ready = Starlette(routes=[Route("/readyz", lambda request: PlainTextResponse("", status_code=503))])
    app = sagemaker_app(not_ready, churn[1], [])
    with TestClient(app) as client:
        response = client.get("/ping")
    assert (response.status_code, response.content) == (503, b"")
