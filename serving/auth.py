"""Optional API key for the prediction routes: `Authorization: Bearer <key>`, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi import send_error

CHALLENGE = (b"www-authenticate", b'Bearer realm="iris_classifier"')


def bearer_token(scope: Scope) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = bytes(value).partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
    return None


class ApiKeyGuard:
    """ASGI middleware: 401 on the given paths unless the request carries the key; other paths stay open."""

    def __init__(self, app: ASGIApp, paths: Iterable[str], api_key: str) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self._key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A CORS preflight (OPTIONS) never carries credentials, by the Fetch standard: it must pass.
        if scope["type"] != "http" or scope["path"] not in self.paths or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        # compare_digest takes the same time wherever the first differing byte is, so timing leaks nothing.
        if token is None or not hmac.compare_digest(token, self._key):
            message = "missing or wrong API key: send the header Authorization: Bearer <key>"
            await send_error(send, 401, message, ["header", "authorization"], "unauthorized", [CHALLENGE])
            return
        await self.app(scope, receive, send)
