"""Answer the prediction routes straight from ASGI, skipping BentoML's per-request handler overhead.

BentoML's metrics, tracing and access-log middlewares sit outside this one, so these requests are still
counted, timed and logged. Validation uses the very input models BentoML built for the same APIs, and
errors have the same JSON shape, so a client cannot tell the paths apart (tests run both).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi import is_json, media_type, read_body, send_json

logger = logging.getLogger(__name__)
# The whole answer to a failure: details go to the log (with the request id), never to the client.
INTERNAL_ERROR = json.dumps(
    {"error": "internal error while predicting; the service log has the details under this request's X-Request-ID"}
).encode()

# A handler gets the raw request body and returns (status, JSON bytes); it runs on the event loop, and
# hands slow work (a scikit-learn model) to a thread itself.
Handler = Callable[[bytes], Awaitable[tuple[int, bytes]]]


def validation_error_body(error: ValidationError) -> dict[str, Any]:
    """The 400 body BentoML sends for a pydantic validation error."""
    return {
        "error": f"{error.error_count()} validation error for {error.title}",
        "detail": error.errors(include_context=False, include_input=False),
    }


class FastJSONRoutes:
    """ASGI middleware: a JSON POST (any JSON media type) to the given paths goes to a plain handler, all else on."""

    def __init__(self, app: ASGIApp, handlers: Mapping[str, Handler], server_name: str) -> None:
        self.app = app
        self.handlers = dict(handlers)
        self.server_header = (b"server", server_name.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get(scope.get("path", "")) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST" or not is_json(media_type(scope)):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive) or b""
        try:
            status, payload = await handler(body)
        except Exception:
            # Answered here: an exception escaping to BentoML's middlewares left the client with no answer at all.
            logger.exception("Prediction failed on %s", scope["path"])
            status, payload = 500, INTERNAL_ERROR
        await send_json(send, status, payload, [self.server_header])
