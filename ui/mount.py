"""Mount Gradio Blocks on a FastAPI app, also when a reverse proxy publishes the service under a path prefix."""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send


class PublicPathApp:
    """Present requests to Gradio at their public path (prefix included), as Gradio expects behind a proxy.

    The proxy strips the prefix, so Gradio would see /ui/... and build asset and API URLs without it.
    Gradio's own `root_path` makes its router expect the prefix in the path, so it is put back here.
    """

    def __init__(self, app: ASGIApp, public_root: str) -> None:
        self.app = app
        self.public_root = public_root

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            rest = scope["path"][len(scope.get("root_path", "")) :]
            scope = {**scope, "path": self.public_root + rest, "root_path": self.public_root}
        await self.app(scope, receive, send)


def mount_blocks(
    app: FastAPI, blocks: gr.Blocks, path: str, public_prefix: str = "", max_file_bytes: int | None = None
) -> None:
    """Mount `blocks` at `path`; with `public_prefix` (e.g. "/models/churn") URLs are built for prefix + path."""
    public_root = f"{public_prefix}{path}" if public_prefix else None
    gr.mount_gradio_app(app, blocks, path=path, root_path=public_root, max_file_size=max_file_bytes)
    if public_root is None:
        return
    for route in app.routes:
        if isinstance(route, Mount) and route.path == path:
            route.app = PublicPathApp(route.app, public_root)
