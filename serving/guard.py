"""Refuse prediction requests that are not JSON or are too large, before anything parses them."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi import is_json, media_type, read_body, replay_body, send_error


class RequestGuard:
    """ASGI middleware for the posted routes: 415 for a body of another type, 413 for a body over the limit."""

    def __init__(self, app: ASGIApp, paths: Iterable[str], max_body_bytes: int, csv_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.max_body_bytes = max_body_bytes
        self.csv_paths = frozenset(csv_paths)  # these take text/csv too (POST /feedback: serving/feedback_csv.py)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        content_type = media_type(scope)
        takes_csv = scope["path"] in self.csv_paths
        if not (is_json(content_type) or (takes_csv and content_type == b"text/csv")):
            wanted = "application/json or text/csv" if takes_csv else "application/json"
            message = f"Content-Type must be {wanted}, not {content_type.decode(errors='replace')}"
            await send_error(send, 415, message, ["header", "content-type"], "unsupported_media_type")
            return
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_body_bytes:
                await send_error(send, 413, self._too_large(int(declared)), ["body"], "too_large")
                return
            await self.app(scope, receive, send)
            return
        # No usable Content-Length (a chunked upload): read up to the limit here, then hand the body on.
        body = await read_body(receive, limit=self.max_body_bytes)
        if body is None:
            await send_error(send, 413, self._too_large(), ["body"], "too_large")
            return
        await self.app(scope, replay_body(body, receive), send)

    def _too_large(self, size: int | None = None) -> str:
        seen = f" ({size:,} declared)" if size is not None else ""
        return f"request body is over {self.max_body_bytes:,} bytes{seen}; send smaller batches"
