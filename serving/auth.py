"""The optional API key, guarding every way to a prediction: the JSON API, the model card and the web UI.

Programs send `Authorization: Bearer <key>` (curl, `bentoml.SyncHTTPClient(token=...)`,
`gradio_client.Client(..., headers=...)`). A browser cannot add that header to the web UI's own calls, so the
UI has a sign-in page: the key, typed once, becomes a signed session cookie that every later call carries.

Why not Gradio's own `auth=`: it keeps sessions in one process's memory, so a second worker would not know a
session the first one started, and its 401 differs from the API's. The cookie here is stateless (an expiry
signed with HMAC-SHA256 under the key), so any worker checks it, and rotating the key ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from collections.abc import Iterable
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi import read_body, send_error

SESSION_COOKIE = "ui_session"
# A signed-in browser stays signed in this long (12 hours), then is asked for the key again.
SESSION_SECONDS = 12 * 3600
_LOGIN_FORM_LIMIT = 4096


def bearer_token(scope: Scope) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = bytes(value).partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
    return None


def cookie(scope: Scope, name: str) -> str | None:
    """The value of one cookie of the request, or None."""
    for header, value in scope["headers"]:
        if header == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, found = part.strip().partition("=")
                if key == name:
                    return found
    return None


class SessionSigner:
    """Stateless session tokens: `<expiry>.<HMAC-SHA256(key, expiry)>`, valid until the expiry."""

    def __init__(self, key: bytes, lifetime_s: int = SESSION_SECONDS) -> None:
        self._key = hashlib.sha256(b"ui-session:" + key).digest()  # never the API key itself in a cookie's MAC
        self.lifetime_s = lifetime_s

    def issue(self, now: float | None = None) -> str:
        """A new token that expires `lifetime_s` from now."""
        expiry = str(int((time.time() if now is None else now) + self.lifetime_s))
        return f"{expiry}.{self._mac(expiry)}"

    def valid(self, token: str | None, now: float | None = None) -> bool:
        """True for an unexpired token signed under this key."""
        if not token:
            return False
        expiry, _, mac = token.partition(".")
        if not expiry.isdigit() or int(expiry) < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(mac, self._mac(expiry))

    def _mac(self, expiry: str) -> str:
        return hmac.new(self._key, expiry.encode(), hashlib.sha256).hexdigest()


class ApiKeyGuard:
    """ASGI middleware: 401 on the guarded paths unless the request carries the key or a signed-in session.

    `paths` are guarded exactly, `prefixes` with everything under them (the web UI). Under the UI, a browser
    asking for a page is sent to the sign-in page instead of getting a bare 401.
    """

    def __init__(
        self,
        app: ASGIApp,
        api_key: str,
        paths: Iterable[str],
        prefixes: Iterable[str] = (),
        ui_path: str = "/ui",
        public_root: str = "",
    ) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.prefixes = tuple(prefixes)
        self._key = api_key.encode()
        self.sessions = SessionSigner(self._key)
        self.login_path = f"{ui_path}/login"
        self.logout_path = f"{ui_path}/logout"
        # Where a browser is sent; with a reverse-proxy prefix, the public path includes it.
        self.public_ui = f"{public_root}{ui_path}/"
        self.public_login = f"{public_root}{self.login_path}"
        self.cookie_path = f"{public_root}/"

    def guarded(self, path: str) -> bool:
        """True for a path that needs the key."""
        return path in self.paths or any(path == p or path.startswith(f"{p}/") for p in self.prefixes)

    def authorized(self, scope: Scope) -> bool:
        """The request carries the key as a bearer token, or a valid session cookie."""
        token = bearer_token(scope)
        # compare_digest takes the same time wherever the first differing byte is, so timing leaks nothing.
        if token is not None and hmac.compare_digest(token, self._key):
            return True
        return self.sessions.valid(cookie(scope, SESSION_COOKIE))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if scope["type"] == "http" and path in (self.login_path, self.logout_path):
            await self._sign_in_page(scope, receive, send)
            return
        # A CORS preflight (OPTIONS) never carries credentials, by the Fetch standard: it must pass.
        if not self.guarded(path) or scope.get("method") == "OPTIONS" or self.authorized(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        elif scope["method"] in ("GET", "HEAD") and _wants_html(scope):
            await _redirect(send, self.public_login)
        else:
            message = "missing or wrong API key: send the header Authorization: Bearer <key>"
            challenge = (b"www-authenticate", b'Bearer realm="model-service"')
            await send_error(send, 401, message, ["header", "authorization"], "unauthorized", [challenge])

    async def _sign_in_page(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET: the form. POST: check the key, set the session cookie and go to the UI. /logout: forget it."""
        if scope["path"] == self.logout_path:
            await _redirect(send, self.public_login, self._set_cookie("", max_age=0))
            return
        if scope["method"] != "POST":
            await _html(send, 200, _login_page(self.public_login, error=""))
            return
        body = await read_body(receive, limit=_LOGIN_FORM_LIMIT) or b""
        typed = parse_qs(body.decode(errors="replace")).get("key", [""])[0].strip().encode()
        if not hmac.compare_digest(typed, self._key):
            await _html(send, 401, _login_page(self.public_login, error="That is not the API key."))
            return
        await _redirect(send, self.public_ui, self._set_cookie(self.sessions.issue(), self.sessions.lifetime_s))

    def _set_cookie(self, value: str, max_age: int) -> tuple[bytes, bytes]:
        # HttpOnly: page scripts cannot read it; SameSite=Strict: other sites cannot make the browser send it.
        attributes = f"{SESSION_COOKIE}={value}; Path={self.cookie_path}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
        return (b"set-cookie", attributes.encode())


def _wants_html(scope: Scope) -> bool:
    """A browser navigating to a page (its Accept header prefers HTML)."""
    for name, value in scope["headers"]:
        if name == b"accept":
            return b"text/html" in value
    return False


async def _redirect(send: Send, location: str, *headers: tuple[bytes, bytes]) -> None:
    """303 See Other to `location`."""
    start = [(b"location", location.encode()), (b"content-length", b"0"), *headers]
    await send({"type": "http.response.start", "status": 303, "headers": start})
    await send({"type": "http.response.body", "body": b""})


async def _html(send: Send, status: int, page: str) -> None:
    """A complete HTML answer."""
    body = page.encode()
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": [*headers, (b"cache-control", b"no-store")]}
    )
    await send({"type": "http.response.body", "body": body})


def _login_page(action: str, error: str) -> str:
    """The sign-in form: one password field for the API key."""
    message = f'<p role="alert" id="login-error">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · model service</title>
<style>body{{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}}
input,button{{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box;margin:.4rem 0}}
#login-error{{color:#b00020}}</style></head><body>
<h1>Sign in</h1>
<p>This service needs its API key. Ask whoever runs it; it is the value of <code>SERVING_API_KEY</code>.</p>
{message}
<form method="post" action="{html.escape(action)}">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit" id="sign-in">Sign in</button>
</form></body></html>
"""
