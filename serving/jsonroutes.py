"""Answer JSON POSTs to the prediction routes straight from ASGI, skipping BentoML's per-request handler.

BentoML's metrics, tracing and access-log middlewares sit outside this one, so these requests are still
counted, timed and logged. The routes' codecs validate with the very input models BentoML built for the same
APIs, and errors have the same JSON shape, so a client cannot tell the paths apart (tests run both).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi import is_json, media_type, read_body, send_json
from serving.codecs import Codec
from serving.handler import PredictionHandler


class JsonRoutes:
    """ASGI middleware: a JSON POST (any JSON media type) to a route with a codec goes to the handler, all else on."""

    def __init__(self, app: ASGIApp, handler: PredictionHandler, codecs: Mapping[str, Codec], server_name: str) -> None:
        self.app = app
        self.handler = handler
        self.codecs = dict(codecs)
        self.server_header = (b"server", server_name.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        codec = self.codecs.get(scope.get("path", "")) if scope["type"] == "http" else None
        if codec is None or scope["method"] != "POST" or not is_json(media_type(scope)):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive) or b""
        status, payload, _ = await self.handler.answer(body, codec)
        await send_json(send, status, payload, [self.server_header])
