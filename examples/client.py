"""Call a running iris service with BentoML's Python client: one flower, then a batch.

Usage: python examples/client.py [URL]   (default http://localhost:3000)
"""

from __future__ import annotations

import json
import sys

import bentoml

SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}


def main(url: str) -> None:
    """Print one prediction and a batch of two."""
    with bentoml.SyncHTTPClient(url) as client:
        single = client.prediction(SETOSA)
        batch = client.predict_batch([SETOSA, VIRGINICA])
    print(json.dumps(single, indent=2))  # noqa: T201 - this script's output is its purpose
    print(json.dumps([row["class"] for row in batch]))  # noqa: T201


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://localhost:3000")
