"""Call a running model service with BentoML's Python client: its own example row, then a batch of two.

Usage: python examples/client.py [URL]   (default http://localhost:3000)
Works for any model the project serves: the example rows come from the model's card (GET /model). With an
API key set, pass it as the token: bentoml.SyncHTTPClient(url, token=key).
"""

from __future__ import annotations

import json
import sys

import bentoml
import httpx


def main(url: str) -> None:
    """Print the model's title, one prediction (features as keyword arguments) and a batch's classes."""
    card = httpx.get(f"{url}/model").raise_for_status().json()["card"]
    rows = [{k: v for k, v in example.items() if k != "label"} for example in card["examples"]]
    with bentoml.SyncHTTPClient(url) as client:
        single = client.prediction(**rows[0])
        batch = client.predict_batch(rows[:2])
    print(card["title"])  # noqa: T201 - this script's output is its purpose
    print(json.dumps({"features": rows[0], "answer": single}, indent=2))  # noqa: T201
    print(json.dumps([row["class"] for row in batch]))  # noqa: T201


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://localhost:3000")
