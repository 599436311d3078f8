"""Each example notebook's model served from the source tree with `MODEL_TAG=... bentoml serve .`, answered three ways.

Raw HTTP with the card's own example row, `bentoml.SyncHTTPClient` with the features as keyword arguments,
and `gradio_client` on the web UI: the same answer each time, whatever the model's features are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bentoml
import httpx
import pytest
from gradio_client import Client

from tests.conftest import ROOT
from tests.e2e.server import serve, wait_for_ui

pytestmark = pytest.mark.slow


def _ui_value(feature: dict[str, Any], value: Any) -> Any:
    """A JSON value as the web form takes it (a blank category is the "(blank)" choice)."""
    if value is None and feature["kind"] == "category":
        return "(blank)"
    if feature["kind"] in ("text", "unused"):  # typed into a text box, left empty for a blank
        return "" if value is None else str(value)
    return value


EXAMPLES = ["trained_tag", "churn_tag", "bank_marketing_tag", "product_reviews_tag", "loan_default_tag"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_served_under_model_tag_and_answered_three_ways(
    example: str, request: pytest.FixtureRequest, tmp_path: Path, artifacts: Path
) -> None:
    tag = request.getfixturevalue(example)
    with serve(".", cwd=ROOT, log=artifacts / f"serve-source-{example}.log", env={"MODEL_TAG": tag}) as server:
        card = httpx.get(f"{server.url}/model").json()["card"]
        row = {k: v for k, v in card["examples"][0].items() if k != "label"}
        raw = httpx.post(f"{server.url}/prediction", json=row)
        assert raw.status_code == 200, raw.text
        answer = raw.json()
        assert answer["model"] == tag and answer["class"] in card["class_names"]
        with bentoml.SyncHTTPClient(server.url) as client:
            assert client.prediction(**row) == answer
        wait_for_ui(server.url)  # the UI's own worker starts after the API's
        ui = Client(f"{server.url}/ui/", verbose=False)
        values = [_ui_value(feature, row[feature["name"]]) for feature in card["features"]]
        bars, verdict, _picture = ui.predict(*values, api_name="/predict")
        assert bars["label"] == answer["class"] and answer["class"] in verdict
