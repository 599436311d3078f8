"""Small ASGI helpers shared by the request guard and the fast prediction path."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.types import Message, Receive, Scope, Send


def is_json(media_type: bytes) -> bool:
    """application/json, any application/*+json (RFC 6839), or no Content-Type at all (taken as JSON)."""
    return media_type in (b"", b"application/json") or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


def media_type(scope: Scope) -> bytes:
    """The request's Content-Type, lower-cased, without parameters; b"" when there is none."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value.split(b";")[0].strip().lower())
    return b""


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body, or None as soon as it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size > limit:
            return None
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(send: Send, status: int, body: bytes, extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Send a complete JSON response: status, Content-Type, Content-Length, then the body."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send, status: int, message: str, loc: list[Any], kind: str, extra_headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON error in the shape of the API's validation errors: {"error": ..., "detail": [{type, loc, msg}]}."""
    body = json.dumps({"error": message, "detail": [{"type": kind, "loc": loc, "msg": message}]}).encode()
    await send_json(send, status, body, extra_headers)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A receive that yields the already-read body once, then whatever comes next (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
