"""The product-reviews example (free text, an identifier the model never reads) served for real from the source tree.

A new review is answered by its words; the identifier is optional, never validated and kept in the prediction
log; the OpenAPI document, the metrics, the drift check and the web UI in a real browser treat the text as
text, never as an enum of the training reviews.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bentoml
import httpx
import pytest
from playwright.sync_api import Browser, expect

from monitoring.predlog import read_records
from tests.conftest import ROOT
from tests.e2e.server import Server, serve, wait_for_ui
from tests.e2e.test_ui_browser import choose, open_ui

pytestmark = pytest.mark.slow

NEW_REVIEWS = [
    ("Amazing blender, highly recommend it. Works great every morning and looks fantastic on my counter!", "positive"),
    ("Flimsy and cheaply made: the lid fell apart after two days, total garbage. Returned it.", "negative"),
]


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reviews-log")


@pytest.fixture(scope="module")
def reviews(product_reviews_tag: str, log_dir: Path, artifacts: Path) -> Iterator[Server]:
    env = {"MODEL_TAG": product_reviews_tag, "SERVING_PREDICTION_LOG": str(log_dir)}
    with serve(".", cwd=ROOT, log=artifacts / "serve-product-reviews.log", env=env) as server:
        yield server


@pytest.fixture(scope="module")
def info(reviews: Server) -> dict[str, Any]:
    return httpx.get(f"{reviews.url}/model").json()


@pytest.fixture(scope="module")
def card(info: dict[str, Any]) -> dict[str, Any]:
    return info["card"]


def example_row(card: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in card["examples"][0].items() if k != "label"}


def test_the_card_describes_text_by_its_words_and_the_id_as_unused(info: dict[str, Any], card: dict[str, Any]) -> None:
    kinds = {f["name"]: f["kind"] for f in card["features"]}
    assert kinds["review"] == "text" and kinds["review_id"] == "unused"
    review = next(f for f in card["features"] if f["name"] == "review")
    assert review["categories"] is None
    # Training's own reviews and words stay with the key's holders, as its rows do.
    assert review["text"]["samples"] == [] == review["text"]["vocabulary"]
    assert "card.features[].text.samples" in info["withheld"]
    assert review["text"]["chars"]["max"] < review["text"]["max_chars"] == 10_000
    assert card["runtime"] == "onnx", card["runtime_note"]


def test_new_reviews_are_answered_without_their_id(reviews: Server, card: dict[str, Any]) -> None:
    row = example_row(card)
    del row["review_id"]
    for text, expected in NEW_REVIEWS:
        answer = httpx.post(f"{reviews.url}/prediction", json={**row, "review": text})
        assert answer.status_code == 200, answer.text
        assert answer.json()["class"] == expected
    with bentoml.SyncHTTPClient(reviews.url) as client:
        assert client.prediction(**{**row, "review": NEW_REVIEWS[0][0]})["class"] == "positive"


def test_a_bad_text_or_id_names_its_field(reviews: Server, card: dict[str, Any]) -> None:
    row = example_row(card)
    too_long = httpx.post(f"{reviews.url}/prediction", json={**row, "review": "word " * 2_001})
    assert too_long.status_code == 400 and too_long.json()["detail"][0]["loc"] == ["review"]
    assert len(too_long.content) < 2_000, "a refusal lists no training reviews"
    nested = httpx.post(f"{reviews.url}/prediction", json={**row, "review_id": {"id": 1}})
    assert nested.status_code == 400 and [e["loc"] for e in nested.json()["detail"]] == [["review_id"]]


def test_the_openapi_document_has_a_string_not_an_enum(reviews: Server) -> None:
    spec = httpx.get(f"{reviews.url}/docs.json")
    assert len(spec.content) < 100_000, "no training review is listed"
    features = spec.json()["components"]["schemas"]["Features"]
    review = features["properties"]["review"]
    assert review["type"] == "string" and review["maxLength"] == 10_000 and "enum" not in review
    assert "review_id" not in features.get("required", []) and "review" in features["required"]


def test_the_log_keeps_the_id_and_the_text_and_drift_reads_them(
    reviews: Server, card: dict[str, Any], log_dir: Path, product_reviews_tag: str, tmp_path: Path
) -> None:
    row = {**example_row(card), "review_id": "my-order-42", "review": NEW_REVIEWS[1][0]}
    answer = httpx.post(f"{reviews.url}/prediction", json=row)
    request_id = answer.headers["x-request-id"]
    logged = _eventually(lambda: [r for r in _rows(log_dir) if r["request_id"] == request_id])
    assert logged and logged[0]["features"]["review_id"] == "my-order-42"
    assert logged[0]["features"]["review"] == NEW_REVIEWS[1][0]
    batch = [{**example_row(card), "review_id": 1000 + i} for i in range(120)]
    assert httpx.post(f"{reviews.url}/predict_batch", json=batch).status_code == 200
    metrics = httpx.get(f"{reviews.url}/metrics").text
    assert 'classifier_input_text_words_total{feature="review"}' in metrics
    assert 'feature="review_id"' not in metrics
    report = tmp_path / "report"
    drift = subprocess.run(
        [sys.executable, "-m", "monitoring.drift", "--log-dir", str(log_dir), "--report", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert drift.returncode in (0, 1), drift.stderr
    checked = json.loads((report / "report.json").read_text())
    names = {feature["feature"] for feature in checked["features"]}
    assert {"review (length)", "review (new words)"} <= names and "review_id" not in str(names)


def test_the_web_ui_takes_a_new_review_in_a_text_area(browser: Browser, reviews: Server, artifacts: Path) -> None:
    wait_for_ui(reviews.url)
    page = open_ui(browser, reviews.url)
    area = page.locator("#input-review textarea")
    expect(area).to_be_visible()
    page.locator("#input-review_id input").fill("my-order-7")
    choose(page, "category", "home_kitchen")
    area.fill(NEW_REVIEWS[0][0])
    page.locator("#predict-button").click()
    expect(page.locator("#verdict")).to_contain_text("positive")
    page.screenshot(path=artifacts / "ui-product-reviews.png", full_page=True)
    area.fill(NEW_REVIEWS[1][0])
    page.locator("#predict-button").click()
    expect(page.locator("#verdict")).to_contain_text("negative")
    page.close()


def _rows(log_dir: Path) -> list[dict[str, Any]]:
    return read_records(log_dir)


def _eventually(probe: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    return probe()
