"""The HTTP floor: bare starlette + uvicorn parsing the same JSON and answering the same shape, no model.

Run: uvicorn benchmarks.floor_starlette:app --workers 1
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ANSWER = json.dumps(
    {
        "class": "setosa",
        "probability": 1.0,
        "probabilities": {"setosa": 1.0, "versicolor": 0.0, "virginica": 0.0},
        "model": "floor",
    }
).encode()


async def prediction(request: Request) -> Response:
    """Parse the body like a real endpoint would, then answer a constant."""
    row = json.loads(await request.body())
    assert len(row) == 4
    return Response(ANSWER, media_type="application/json")


app = Starlette(routes=[Route("/prediction", prediction, methods=["POST"])])
