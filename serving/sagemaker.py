"""SageMaker's container contract: GET /ping and POST /invocations, in JSON or CSV, beside the service's own API.

SageMaker starts the image as `<image> serve`, probes GET /ping, and forwards InvokeEndpoint calls to POST
/invocations with the caller's Content-Type and Accept. Requests are decoded by the codecs of /prediction and
/predict_batch, or by the CSV codec (rows in the card's feature order, without a header) (serving/codecs.py),
predicted and recorded by the same handler, and answered in the request's format or the one Accept asks for:

- JSON: a JSON object gets /prediction's object, a list (or CSV) gets /predict_batch's list;
- CSV: one line per row, `class,<probability of each class>`, the classes in the card's order (GET /model).

Mistakes get /prediction's 400 body, naming the row and the column.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.asgi import is_json, media_type, read_body, send_error
from serving.codecs import CSV, JSON, Codec, CsvCodec, JsonListCodec, JsonObjectCodec
from serving.handler import PredictionHandler

PING_PATH = "/ping"
INVOCATIONS_PATH = "/invocations"
# /ping answers what the service's own readiness probe answers.
READY_PATH = "/readyz"
# Accept's wildcards and what they get (None: the request's own format).
MEDIA_RANGES = {"*/*": None, "application/*": JSON, "text/*": CSV}


class InvocationCodecs:
    """Which codec reads an /invocations body and which writes its answer."""

    def __init__(self, single: JsonObjectCodec, batch: JsonListCodec, csv: CsvCodec) -> None:
        self.single, self.batch, self.csv = single, batch, csv

    def decoder(self, body: bytes, request_type: str) -> Codec:
        """CSV rows, a JSON list of rows, or one JSON object."""
        if request_type == CSV:
            return self.csv
        return self.batch if body.lstrip().startswith(b"[") else self.single

    def encoder(self, decoder: Codec, answer_type: str) -> Codec:
        """CSV lines when asked; else JSON: one object for one, a list for a list (or CSV rows)."""
        if answer_type == CSV:
            return self.csv
        return self.batch if decoder is self.csv else decoder


def answer_type(scope: Scope, request_type: str) -> str | None:
    """The answer's media type: the first one Accept lists that we write (none or */*: the request's); else None."""
    accept = next((bytes(value) for name, value in scope["headers"] if name == b"accept"), b"").decode("latin-1")
    if not accept.strip():
        return request_type
    for entry in accept.split(","):
        wanted = entry.split(";")[0].strip().lower()
        if wanted in (JSON, CSV):
            return wanted
        if wanted in MEDIA_RANGES:
            return MEDIA_RANGES[wanted] or request_type
    return None


class SageMakerRoutes:
    """ASGI middleware: GET /ping and POST /invocations, SageMaker's way; everything else passes on."""

    def __init__(
        self, app: ASGIApp, handler: PredictionHandler, codecs: InvocationCodecs, max_body_bytes: int, server_name: str
    ) -> None:
        self.app = app
        self.handler = handler
        self.codecs = codecs
        self.max_body_bytes = max_body_bytes
        self.server_header = (b"server", server_name.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path == PING_PATH and scope["method"] in ("GET", "HEAD"):
            await self._ping(scope, receive, send)
        elif path == INVOCATIONS_PATH and scope["method"] == "POST":
            await self._invoke(scope, receive, send)
        elif path in (PING_PATH, INVOCATIONS_PATH):
            allowed = "GET" if path == PING_PATH else "POST"
            await send_error(
                send, 405, f"{path} takes {allowed}", ["method"], "method_not_allowed", [(b"allow", allowed.encode())]
            )
        else:
            await self.app(scope, receive, send)

    async def _ping(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The status /readyz answers (200 once the worker has loaded the model), with an empty body."""
        status = 500

        async def keep_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app({**scope, "path": READY_PATH, "raw_path": READY_PATH.encode()}, receive, keep_status)
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def _invoke(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = media_type(scope)
        request_type = JSON if is_json(content_type) else CSV if content_type == CSV.encode() else None
        if request_type is None:
            message = f"Content-Type must be {JSON} or {CSV}, not {content_type.decode(errors='replace')}"
            await send_error(send, 415, message, ["header", "content-type"], "unsupported_media_type")
            return
        wanted = answer_type(scope, request_type)
        if wanted is None:
            await send_error(send, 406, f"Accept must allow {JSON} or {CSV}", ["header", "accept"], "not_acceptable")
            return
        body = await read_body(receive, limit=self.max_body_bytes)
        if body is None:
            message = f"request body is over {self.max_body_bytes:,} bytes; send fewer rows per call"
            await send_error(send, 413, message, ["body"], "too_large")
            return
        if not body.strip():
            await send_error(send, 400, "empty request body: send rows of features", ["body"], "missing")
            return
        decoder = self.codecs.decoder(body, request_type)
        status, payload, answer_media = await self.handler.answer(body, decoder, self.codecs.encoder(decoder, wanted))
        headers = [(b"content-type", answer_media.encode()), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": [*headers, self.server_header]})
        await send({"type": "http.response.body", "body": payload})
