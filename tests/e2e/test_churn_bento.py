"""The churn example (categories, integers, a yes/no flag, blanks) built into its own bento and served for real.

Reached the ways a user would: raw HTTP, `bentoml.SyncHTTPClient` with the features as keyword arguments,
`gradio_client` on the web UI; with the table of bad inputs extended by categorical and nullable cases.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bentoml
import httpx
import pytest
from gradio_client import Client
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import roc_auc_score

from modelcard.card import read_card
from tests.conftest import ROOT
from tests.e2e.server import Server
from tests.loops import run_async
from tests.test_bad_input import Case, check_bad_request

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def card(served_churn_bento: Server) -> dict[str, Any]:
    return httpx.get(f"{served_churn_bento.url}/model").json()["card"]


@pytest.fixture(scope="module")
def row(card: dict[str, Any]) -> dict[str, Any]:
    """A real test row from the card, with every field filled in and a blank total (as for a new customer)."""
    example = {k: v for k, v in card["examples"][0].items() if k != "label"}
    return {**example, "totalcharges": None}


def test_the_bento_is_named_after_its_model_and_serves_it_without_model_tag(
    served_churn_bento: Server, churn_bento_tag: str, churn_tag: str
) -> None:
    assert churn_bento_tag.startswith("churn_clf_service:")
    info = httpx.get(f"{served_churn_bento.url}/model").json()
    assert info["tag"] == churn_tag
    assert info["runtime"] == info["card"]["runtime"]


def test_raw_http_with_categories_and_a_blank(served_churn_bento: Server, row: dict[str, Any], churn_tag: str) -> None:
    answer = httpx.post(f"{served_churn_bento.url}/prediction", json=row)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["probabilities"]) == {"no", "yes"} and body["class"] in ("no", "yes")
    assert body["model"] == churn_tag
    left_out = {k: v for k, v in row.items() if k != "totalcharges"}
    assert httpx.post(f"{served_churn_bento.url}/prediction", json=left_out).json() == body


def test_python_client_takes_the_features_as_keyword_arguments(served_churn_bento: Server, row: dict) -> None:
    with bentoml.SyncHTTPClient(served_churn_bento.url) as client:
        single = client.prediction(**row)
        two_year = client.prediction(**{**row, "contract": "two_year", "tenure": 60, "totalcharges": 4200.0})
        batch = client.predict_batch([row, {**row, "contract": "two_year"}])
    assert single["class"] in ("no", "yes") and [r["class"] for r in batch][0] == single["class"]
    # Direction: a long two-year customer is less likely to leave than a new month-to-month one.
    month = client_probability(served_churn_bento, {**row, "contract": "month-to-month", "tenure": 1})
    assert two_year["probabilities"]["yes"] < month


def client_probability(server: Server, features: dict[str, Any]) -> float:
    return float(httpx.post(f"{server.url}/prediction", json=features).json()["probabilities"]["yes"])


def test_unseen_category_is_400_listing_the_allowed_values(served_churn_bento: Server, row: dict, card: dict) -> None:
    answer = httpx.post(f"{served_churn_bento.url}/prediction", json={**row, "contract": "weekly"})
    assert answer.status_code == 400
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["contract"]
    allowed = next(f for f in card["features"] if f["name"] == "contract")["categories"]
    assert all(value in error["msg"] for value in allowed)
    metrics = httpx.get(f"{served_churn_bento.url}/metrics").text
    refused = re.search(r'classifier_input_unseen_category_total\{feature="contract"\} (\S+)', metrics)
    assert refused and float(refused.group(1)) >= 1


def _cases(row: dict[str, Any]) -> dict[str, Case]:
    def body(**changes: Any) -> bytes:
        return json.dumps({**row, **changes}).encode()

    missing = json.dumps({k: v for k, v in row.items() if k != "tenure"}).encode()
    return {
        "unseen category": Case("/prediction", body(contract="weekly"), 400, ["contract"], message="month-to-month"),
        "category as a number": Case("/prediction", body(contract=1), 400, ["contract"]),
        "null for a category that had no blanks": Case("/prediction", body(contract=None), 400, ["contract"]),
        "integer with a fraction": Case("/prediction", body(tenure=12.5), 400, ["tenure"]),
        "integer as text": Case("/prediction", body(tenure="12"), 400, ["tenure"]),
        "integer out of its bounds": Case("/prediction", body(tenure=100_000), 400, ["tenure"]),
        "flag as yes": Case("/prediction", body(seniorcitizen="yes"), 400, ["seniorcitizen"]),
        "flag as 1": Case("/prediction", body(seniorcitizen=1), 400, ["seniorcitizen"]),
        "nullable number as empty text": Case("/prediction", body(totalcharges=""), 400, ["totalcharges"]),
        "nullable number as NaN literal": Case(
            "/prediction", body(totalcharges=0.5).replace(b"0.5", b"NaN"), 400, ["totalcharges"]
        ),
        "required integer left out": Case("/prediction", missing, 400, ["tenure"]),
        "extra field": Case("/prediction", body(customerid="7590-VHVEG"), 400, ["customerid"]),
        "batch row with an unseen category": Case(
            "/predict_batch",
            json.dumps([row, {**row, "paymentmethod": "bitcoin"}]).encode(),
            400,
            ["root", 1, "paymentmethod"],
            message="electronic_check",
        ),
    }


CASE_NAMES = list(_cases({"tenure": 1}))


@pytest.mark.parametrize("route", ["fast path", "BentoML handler"])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_mixed_input_gets_400_naming_the_field(
    served_churn_bento: Server, row: dict, name: str, route: str
) -> None:
    with httpx.Client(base_url=served_churn_bento.url) as client:
        check_bad_request(client, _cases(row)[name], route)


def test_openapi_shows_enums_nulls_and_a_real_example(served_churn_bento: Server, card: dict) -> None:
    spec = httpx.get(f"{served_churn_bento.url}/docs.json").json()
    schema = spec["paths"]["/prediction"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = _resolve(spec, schema)
    properties = schema["properties"]
    assert properties["contract"]["enum"] == list(
        next(f for f in card["features"] if f["name"] == "contract")["categories"]
    )
    assert properties["tenure"]["type"] == "integer" and properties["seniorcitizen"]["type"] == "boolean"
    assert "totalcharges" not in schema["required"]
    total = properties["totalcharges"]
    assert total["nullable"] is True and total["type"] == "number"  # OpenAPI 3.0: a blank may be null
    assert schema["example"] == {k: v for k, v in card["examples"][0].items() if k != "label"}


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_the_ui_predicts_through_gradio_client(served_churn_bento: Server, row: dict, card: dict) -> None:
    client = Client(f"{served_churn_bento.url}/ui/", verbose=False)
    names = [f["name"] for f in card["features"]]
    shown = {**row, "totalcharges": None, "seniorcitizen": bool(row["seniorcitizen"])}
    bars, verdict, _picture = client.predict(*(shown[name] for name in names), api_name="/predict")
    assert bars["label"] in ("no", "yes") and {c["label"] for c in bars["confidences"]} == {"no", "yes"}
    assert "probability" in verdict


def test_metrics_count_categories_and_blanks(served_churn_bento: Server, row: dict) -> None:
    httpx.post(f"{served_churn_bento.url}/prediction", json={**row, "contract": "one_year"})
    metrics = httpx.get(f"{served_churn_bento.url}/metrics").text
    assert 'classifier_input_category_total{feature="contract",value="one_year"}' in metrics
    assert re.search(r'classifier_input_missing_total\{feature="totalcharges"\} [1-9]', metrics)
    assert 'classifier_input_decile_bucket{feature="tenure"' in metrics


def test_outcomes_reported_with_the_python_client_are_matched_and_counted(
    served_churn_bento: Server, row: dict
) -> None:
    """A warehouse job's outcome for an earlier answer, by its X-Request-ID: matched, counted, kept (two workers)."""
    url = served_churn_bento.url
    answer = httpx.post(f"{url}/prediction", json=row, headers={"x-request-id": "crm-0042"}).json()
    truth = "yes" if answer["class"] == "no" else "no"
    with bentoml.SyncHTTPClient(url) as client:
        deadline = time.monotonic() + 10  # the prediction reaches its log file within about a second
        while (reported := client.feedback([{"request_id": "crm-0042", "label": truth}]))["matched"] == 0:
            assert time.monotonic() < deadline, reported
            time.sleep(0.2)
    assert reported["received"] == 1 and reported["unmatched"] == 0
    pair = {"predicted": answer["class"], "actual": truth, "correct": "false"}
    deadline = time.monotonic() + 10  # either API worker may answer /metrics: both see the multiprocess counters
    while outcome_count(url, pair) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    refused = httpx.post(f"{url}/feedback", json=[{"request_id": "crm-0042", "label": "maybe"}])
    assert refused.status_code == 400 and "label" in refused.text


def test_outcomes_reported_by_customer_id_in_csv_are_matched_and_counted(served_churn_bento: Server, row: dict) -> None:
    """A warehouse's export weeks later: the customer id the model never reads, the label, the window of scoring."""
    url = served_churn_bento.url
    answer = httpx.post(f"{url}/prediction", json={**row, "customer_id": "WH-77001"}).json()
    truth = answer["class"]
    pair = {"predicted": truth, "actual": truth, "correct": "true"}
    before = outcome_count(url, pair)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    export = f"customer_id,since,label\nWH-77001,{since},{truth}\nWH-00000,{since},yes\n".encode()
    deadline = time.monotonic() + 10
    while True:
        reported = httpx.post(f"{url}/feedback", content=export, headers={"content-type": "text/csv"}).json()
        if reported.get("matched") == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (reported["received"], reported["matched"]) == (2, 1), reported
    assert reported["unmatched_keys"] == [{"customer_id": "WH-00000"}]
    deadline = time.monotonic() + 10
    while outcome_count(url, pair) < before + 1:  # at least: a retry may have counted it once more
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_the_quality_check_on_the_served_log_agrees_with_the_answers_and_fails_on_shifted_outcomes(
    served_churn_bento: Server, churn_tag: str, tmp_path: Path
) -> None:
    """Done as a user would: 200 customers scored, their outcomes reported by customer_id, the check run on the log."""
    url, card = served_churn_bento.url, read_card(Path(bentoml.models.get(churn_tag).path))
    rows = [{**row, "customer_id": f"QC-{i:04d}"} for i, row in enumerate(card.reference[:200])]
    start = datetime.now(UTC).isoformat()  # the window holds this test's predictions only
    answers = httpx.post(f"{url}/predict_batch", json=[{k: v for k, v in r.items() if k != "label"} for r in rows])
    truth = [row["label"] for row in rows]
    predicted = [answer["class"] for answer in answers.json()]
    p_yes = [answer["probabilities"]["yes"] for answer in answers.json()]
    log_dir = served_churn_bento.home / "prediction_logs" / churn_tag.split(":")[0]
    check = [sys.executable, "-m", "monitoring.quality", "--log-dir", str(log_dir), "--start", start,
             "--min-outcomes", "100", "--report", str(tmp_path)]  # fmt: skip

    def report(labels: list[str]) -> subprocess.CompletedProcess[str]:
        export = "customer_id,label\n" + "".join(
            f"{r['customer_id']},{label}\n" for r, label in zip(rows, labels, strict=True)
        )
        deadline = time.monotonic() + 10  # the batch reaches its log file within about a second
        while httpx.post(f"{url}/feedback", content=export, headers={"content-type": "text/csv"}).json()[
            "matched"
        ] < len(rows):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        return subprocess.run(check, capture_output=True, text=True, cwd=ROOT, timeout=120)

    held = report(truth)
    assert held.returncode == 0, held.stdout + held.stderr
    live = json.loads((tmp_path / "quality.json").read_text())["live"]
    assert live["n_test"] == 200
    assert live["accuracy"] == sum(p == t for p, t in zip(predicted, truth, strict=True)) / 200
    assert live["roc_auc"] == pytest.approx(roc_auc_score([t == "yes" for t in truth], p_yes), abs=1e-9)
    shifted = report(["no" if label == "yes" else "yes" for label in truth])  # the later outcome replaces it
    assert shifted.returncode == 1, shifted.stdout + shifted.stderr
    assert "MISSED" in shifted.stdout and (tmp_path / "quality.html").is_file()


def outcome_count(url: str, labels: dict[str, str]) -> float:
    """classifier_outcomes_total for these labels, as /metrics says (labels in any order)."""
    families = text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
    samples = [s for f in families if f.name == "classifier_outcomes" for s in f.samples if s.labels == labels]
    return sum(sample.value for sample in samples if sample.name.endswith("_total"))


def test_concurrent_requests_predicted_together_each_get_their_own_rows_answer(
    served_churn_bento: Server, card: dict[str, Any]
) -> None:
    # Rows arriving in one event-loop turn are predicted in one model call (serving/microbatch.py). 800
    # requests of 40 different rows, 64 at a time over two API workers: each must get what its row gets alone.
    examples = [{k: v for k, v in example.items() if k != "label"} for example in card["examples"]]
    rows = [
        {
            **examples[i % len(examples)],
            "tenure": 1 + (3 * i) % 70,
            "totalcharges": None if i % 3 == 0 else 30.0 * (i + 1),
        }
        for i in range(40)
    ]
    alone = [httpx.post(f"{served_churn_bento.url}/prediction", json=row).json() for row in rows]

    async def together() -> list[tuple[int, str, dict[str, Any]]]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=served_churn_bento.url, limits=limits, timeout=30) as client:

            async def one(i: int) -> tuple[int, str, dict[str, Any]]:
                answer = await client.post("/prediction", json=rows[i % 40], headers={"x-request-id": f"together-{i}"})
                assert answer.status_code == 200, answer.text
                return i, answer.headers["x-request-id"], answer.json()

            return await asyncio.gather(*(one(i) for i in range(800)))

    for i, request_id, answer in run_async(together):
        expected = alone[i % 40]
        assert request_id == f"together-{i}" and answer["class"] == expected["class"]
        # float32 inside the graph: a row's probability may move in its last digits with its batch-mates.
        assert answer["probability"] == pytest.approx(expected["probability"], abs=1e-6)


def test_unseen_categories_accepted_where_the_deployment_says_so(
    churn_bento_tag: str, row: dict[str, Any], tmp_path_factory: pytest.TempPathFactory, artifacts: Any
) -> None:
    from tests.e2e.server import serve

    env = {"SERVING_UNSEEN_CATEGORIES": "accept"}
    folder = tmp_path_factory.mktemp("churn-accepting")
    with serve(churn_bento_tag, cwd=folder, log=artifacts / "serve-churn-accepting.log", env=env) as server:
        card = httpx.get(f"{server.url}/model").json()["card"]
        contract = next(f for f in card["features"] if f["name"] == "contract")
        assert contract["unseen_answered"] is True  # the notebook's OneHotEncoder(handle_unknown="ignore")
        weekly = {**row, "contract": "weekly"}
        answer = httpx.post(f"{server.url}/prediction", json=weekly)
        assert answer.status_code == 200, answer.text
        assert [w["loc"] for w in answer.json()["warnings"]] == [["contract"]]
        assert "warnings" not in httpx.post(f"{server.url}/prediction", json=row).json()
        with bentoml.SyncHTTPClient(server.url) as client:
            assert client.prediction(**weekly)["warnings"][0]["type"] == "unseen_category"
            batch = client.predict_batch([row, weekly])
        assert ["warnings" in answer for answer in batch] == [False, True]
        too_long = httpx.post(f"{server.url}/prediction", json={**row, "contract": "x" * 201})
        assert too_long.status_code == 400 and too_long.json()["detail"][0]["loc"] == ["contract"]
        schema = httpx.get(f"{server.url}/docs.json").json()
        assert "any other value is answered" in json.dumps(schema)
        metrics = httpx.get(f"{server.url}/metrics").text
        counted = re.search(r'classifier_input_unseen_category_total\{feature="contract"\} (\S+)', metrics)
        assert counted is not None and float(counted.group(1)) >= 3
