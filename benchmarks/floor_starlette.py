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
    {"class": "no", "probability": 0.9, "probabilities": {"no": 0.9, "yes": 0.1}, "model": "floor"}
).encode()


async def prediction(request: Request) -> Response:
    """Parse the body like a real endpoint would, then answer a constant."""
    row = json.loads(await request.body())
    assert isinstance(row, dict)
    return Response(ANSWER, media_type="application/json")


app = Starlette(routes=[Route("/prediction", prediction, methods=["POST"])])
