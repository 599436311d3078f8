"""The optional API key, guarding every way to a prediction: the JSON API, the model card and the web UI.

Programs send `Authorization: Bearer <key>` (curl, `bentoml.SyncHTTPClient(token=...)`,
`gradio_client.Client(..., headers=...)`). A browser cannot add that header to the web UI's own calls, so the
UI has a sign-in page: the key, typed once, becomes a signed session cookie that every later call carries.

Why not Gradio's own `auth=`: it keeps sessions in one process's memory, so a second worker would not know a
session the first one started, and its 401 differs from the API's. The cookie here is stateless (an expiry
signed with HMAC-SHA256 under the key), so any worker checks it, and rotating the key ends every session.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi import read_body, send_error

SESSION_COOKIE = "ui_session"
# A signed-in browser stays signed in this long (12 hours), then is asked for the key again.
SESSION_SECONDS = 12 * 3600
_LOGIN_FORM_LIMIT = 4096
NONCE_BYTES = 16
# Far over a real token's 97 characters; anything longer is refused before it is parsed.
_TOKEN_MAX_CHARS = 256
REVOKED_FILE = "revoked-ui-sessions"


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
    """Stateless session tokens: `<expiry>.<nonce>.<HMAC-SHA256(key, expiry.nonce)>`, valid until the expiry.

    The nonce names one sign-in, so signing out revokes that session alone (`RevokedSessions`).
    """

    def __init__(self, key: bytes, lifetime_s: int = SESSION_SECONDS) -> None:
        self._key = hashlib.sha256(b"ui-session:" + key).digest()  # never the API key itself in a cookie's MAC
        self.lifetime_s = lifetime_s

    def issue(self, now: float | None = None) -> str:
        """A new token that expires `lifetime_s` from now."""
        expiry = str(int((time.time() if now is None else now) + self.lifetime_s))
        signed = f"{expiry}.{secrets.token_hex(NONCE_BYTES)}"
        return f"{signed}.{self._mac(signed)}"

    def nonce(self, token: str | None, now: float | None = None) -> str | None:
        """The nonce of an unexpired token signed under this key; None for any other text, however malformed."""
        if not token or len(token) > _TOKEN_MAX_CHARS:
            return None
        signed, _, mac = token.rpartition(".")
        expiry, _, nonce = signed.partition(".")
        # isdigit() alone takes "²" and other digits int() refuses; a token is plain ASCII or nothing.
        if not (token.isascii() and expiry.isdigit() and len(nonce) == 2 * NONCE_BYTES):
            return None
        if int(expiry) < (time.time() if now is None else now):
            return None
        return nonce if hmac.compare_digest(mac.encode(), self._mac(signed).encode()) else None

    def valid(self, token: str | None, now: float | None = None) -> bool:
        """True for an unexpired token signed under this key."""
        return self.nonce(token, now) is not None

    def _mac(self, signed: str) -> str:
        return hmac.new(self._key, signed.encode(), hashlib.sha256).hexdigest()


class RevokedSessions:
    """Sessions signed out before their expiry, shared by the workers through a file when there is a folder for it.

    A file of one nonce per line, appended to on sign-out and read again whenever it changed, so a session
    signed out in one worker is refused by every other within the request after.
    """

    def __init__(self, folder: Path | None) -> None:
        self.path = None if folder is None else folder / REVOKED_FILE
        self._nonces: set[str] = set()
        self._seen: tuple[float, int] | None = None

    def revoke(self, nonce: str) -> None:
        """Refuse this session from now on."""
        self._nonces.add(nonce)
        if self.path is not None:
            with contextlib.suppress(OSError), self.path.open("a") as file:
                file.write(f"{nonce}\n")

    def __contains__(self, nonce: str) -> bool:
        if self.path is not None:
            self._reload()
        return nonce in self._nonces

    def _reload(self) -> None:
        try:
            stat = self.path.stat()  # type: ignore[union-attr]
        except OSError:
            return
        if (stat.st_mtime, stat.st_size) != self._seen:
            self._seen = (stat.st_mtime, stat.st_size)
            with contextlib.suppress(OSError):
                self._nonces |= set(self.path.read_text().split())  # type: ignore[union-attr]


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
        revoked_folder: Path | None = None,
    ) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.prefixes = tuple(prefixes)
        self._key = api_key.encode()
        self.sessions = SessionSigner(self._key)
        # Where signed-out sessions are listed for every worker (None: this worker alone knows them).
        self.revoked = RevokedSessions(revoked_folder)
        self.login_path = f"{ui_path}/login"
        self.logout_path = f"{ui_path}/logout"
        # Where a browser is sent; with a reverse-proxy prefix, the public path includes it.
        self.public_ui = f"{public_root}{ui_path}/"
        self.public_login = f"{public_root}{self.login_path}"
        self.public_logout = f"{public_root}{self.logout_path}"
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
        nonce = self.sessions.nonce(cookie(scope, SESSION_COOKIE))
        return nonce is not None and nonce not in self.revoked

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
        """GET: the form. POST: check the key, set the session cookie and go to the UI. /logout: end the session."""
        if scope["path"] == self.logout_path:
            await self._sign_out(scope, send)
            return
        if scope["method"] != "POST":
            await _html(send, 200, _login_page(self.public_login, error=""))
            return
        body = await read_body(receive, limit=_LOGIN_FORM_LIMIT) or b""
        typed = parse_qs(body.decode(errors="replace")).get("key", [""])[0].strip().encode()
        if not hmac.compare_digest(typed, self._key):
            await _html(send, 401, _login_page(self.public_login, error="That is not the API key."))
            return
        session = self._set_cookie(scope, self.sessions.issue(), self.sessions.lifetime_s)
        await _redirect(send, self.public_ui, session)

    async def _sign_out(self, scope: Scope, send: Send) -> None:
        """GET: a page with the sign-out button (a link must not sign anyone out). POST: revoke, forget, sign in."""
        if scope["method"] != "POST":
            await _html(send, 200, _logout_page(self.public_logout))
            return
        nonce = self.sessions.nonce(cookie(scope, SESSION_COOKIE))
        if nonce is not None:
            self.revoked.revoke(nonce)  # the cookie is gone from this browser, and refused should a copy remain
        await _redirect(send, self.public_login, self._set_cookie(scope, "", max_age=0))

    def _set_cookie(self, scope: Scope, value: str, max_age: int) -> tuple[bytes, bytes]:
        # HttpOnly: page scripts cannot read it; SameSite=Strict: other sites cannot make the browser send it;
        # Secure behind TLS (the request came over https, or a proxy says so): never sent over plain HTTP.
        attributes = f"{SESSION_COOKIE}={value}; Path={self.cookie_path}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
        if _over_tls(scope):
            attributes += "; Secure"
        return (b"set-cookie", attributes.encode())


def _over_tls(scope: Scope) -> bool:
    """The browser reached us over https: directly, or through a proxy that sets X-Forwarded-Proto."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    return any(name == b"x-forwarded-proto" and value.strip().lower() == b"https" for name, value in scope["headers"])


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


_PAGE_STYLE = """<style>body{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}
input,button{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box;margin:.4rem 0}
#login-error{color:#b00020}</style>"""


def _logout_page(action: str) -> str:
    """One button that signs out (a POST, so no link or prefetch can)."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign out · model service</title>
{_PAGE_STYLE}</head><body>
<h1>Sign out</h1>
<form method="post" action="{html.escape(action)}"><button type="submit" id="sign-out">Sign out</button></form>
</body></html>
"""


def _login_page(action: str, error: str) -> str:
    """The sign-in form: one password field for the API key."""
    message = f'<p role="alert" id="login-error">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · model service</title>
{_PAGE_STYLE}</head><body>
<h1>Sign in</h1>
<p>This service needs its API key. Ask whoever runs it; it is the value of <code>SERVING_API_KEY</code>.</p>
{message}
<form method="post" action="{html.escape(action)}">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit" id="sign-in">Sign in</button>
</form></body></html>
"""
