"""Headers every answer carries so a browser treats it safely: no sniffing, no framing by other sites, no caching
of a page built from the request's Host header.

Gradio's pages and BentoML's Swagger UI use inline scripts and styles, so the Content-Security-Policy allows
those; what it takes away is everything else: loading or sending anything to another origin, being framed
by another site, and forms or a <base> pointing elsewhere.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"referrer-policy", b"same-origin"),
)
PAGE_POLICY = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' data: blob:; worker-src 'self' blob:; "
    b"connect-src 'self'; frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)
NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """ASGI middleware: ALWAYS on every answer; on HTML pages the policy; on pages and redirects no caching."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_headers(message["status"], list(message.get("headers", ())))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _with_headers(status: int, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` plus ours; one the answer already has (any case) is left as it is.

    One pass over the names: this runs for every answer, predictions included.
    """
    page = False
    present: set[bytes] = set()
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in _OURS:
            present.add(name)
        elif name == b"content-type":
            page = value[:9].lower() == b"text/html"
    headers.extend(header for header in ALWAYS if header[0] not in present)
    if page and b"content-security-policy" not in present:
        headers.append((b"content-security-policy", PAGE_POLICY))
    if (page or 300 <= status < 400) and b"cache-control" not in present:
        headers.append(NO_STORE)  # built from the request's Host header: no shared cache may keep it for others
    return headers


_OURS = frozenset({name for name, _ in ALWAYS} | {b"content-security-policy", b"cache-control"})
