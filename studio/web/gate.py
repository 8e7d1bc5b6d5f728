"""The one layer in front of every route of the web server (ASGI middleware).

Every request passes here before Gradio or the studio's own routes see it:

- a request from another site's page (an ``Origin`` that is neither this server nor one an admin
  listed) is refused, so a page elsewhere cannot act with a user's cookie;
- routes the studio never serves (Gradio's token, API schema, monitoring, app manifest) answer 404;
- with accounts, every route but the sign-in page, sign-out and the health check needs a valid
  session (``sessions.AuthStore``): a page is sent to the sign-in form, anything else gets 401;
- Gradio's file routes serve only files in Gradio's own upload/output cache, checked on the fully
  decoded path whatever the route or spelling (old ``/file/``, ``/file=``, encoded, ``://``, ``..``);
  nothing of the workspace is ever served by them (downloads have their own, checked route);
- an upload request carries at most one file and at most the upload limit in all.

The signed-in user is put in the request's scope (``USER_KEY``) for the routes behind.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, unquote, urlsplit

from studio.settings import Settings, SettingsError, SettingsStore
from studio.users import UserStore
from studio.web.sessions import AuthStore, Session

log = logging.getLogger("studio.web")

USER_KEY = "studio.user"
COOKIE = "studio-session"
PUBLIC_PATHS = ("/login", "/logout", "/healthz")
NEVER_SERVED = re.compile(
    r"^/(gradio_api/)?(token|openapi\.json|docs|redoc|manifest\.json|pwa_icon|monitoring|dev/reload|runs)(/.*)?$")
FILE_ROUTE = re.compile(r"^/(gradio_api/)?file(=|/)")
UPLOAD_ROUTE = re.compile(r"^/(gradio_api/)?upload/?$")
MAX_FILES_PER_UPLOAD = 1
MULTIPART_SLACK = 64 * 1024
"""Headers and boundaries of a multipart upload, beyond the file itself."""
SIGN_IN_BODY = 16 * 1024
OTHER_BODY = 16 * 2**20
"""Request bodies besides uploads: the sign-in form (anyone may send it) is small; an event's
inputs (JSON) are well under this."""


class Cached:
    """A file's parsed content, read again only when the file changes (size or modification time),
    so a running server sees ``studio users``/``studio settings`` changes at its next request."""

    def __init__(self, path: Path, load: Callable[[], Any]):
        self.path, self.load = path, load
        self._key: tuple | None = None
        self._value: Any = None

    def get(self) -> Any:
        try:
            stat = self.path.stat()
            key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except FileNotFoundError:
            key = None
        if key != self._key or self._value is None:
            self._value, self._key = self.load(), key
        return self._value


@dataclass
class Gate:
    """Who may reach what. Made once per server; shared by the middleware and the routes."""

    workspace_root: Path
    gradio_cache: Path
    max_upload_bytes: int
    behind_https: bool = False
    auth: AuthStore = field(init=False)
    _stamps: Cached = field(init=False)
    _settings: Cached = field(init=False)

    def __post_init__(self) -> None:
        self.workspace_root = Path(self.workspace_root)
        self.gradio_cache = Path(self.gradio_cache).resolve()
        self.auth = AuthStore(self.workspace_root)
        users = UserStore(self.workspace_root)
        self._stamps = Cached(users.path, users.stamps)
        settings = SettingsStore(self.workspace_root)
        self._settings = Cached(settings.path, lambda: _settings_or_defaults(settings))

    # ---- what the rules read -------------------------------------------------------------------
    def stamps(self) -> dict[str, str]:
        return self._stamps.get()

    def has_accounts(self) -> bool:
        return bool(self.stamps())

    def settings(self) -> Settings:
        return self._settings.get()

    def session_limits(self) -> tuple[float, float]:
        settings = self.settings()
        return settings.session_idle_hours * 3600, settings.session_max_hours * 3600

    def session(self, token: str | None) -> Session | None:
        idle_s, max_s = self.session_limits()
        return self.auth.lookup(token, idle_s=idle_s, max_s=max_s, stamps=self.stamps())

    def cookie(self, token: str, scheme: str) -> str:
        """The session cookie: script-proof, sent only with same-site requests, HTTPS-only over HTTPS."""
        _, max_s = self.session_limits()
        return self._cookie(token, int(max_s), scheme)

    def expired_cookie(self, scheme: str) -> str:
        return self._cookie("", 0, scheme)

    def _cookie(self, value: str, max_age: int, scheme: str) -> str:
        secure = "; Secure" if self.behind_https or scheme == "https" else ""
        return f"{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"

    # ---- the checks ----------------------------------------------------------------------------
    def foreign_origin(self, headers: dict[str, str]) -> str | None:
        """The request's Origin when it is another site's that an admin did not allow, else None."""
        origin = headers.get("origin")
        if origin is None:
            return None
        if origin.lower().rstrip("/") in self.settings().allowed_origins:
            return None
        host = headers.get("x-forwarded-host") if self.behind_https and headers.get("x-forwarded-host") else headers.get("host")
        parts = urlsplit(origin)
        if not host or origin == "null" or parts.scheme not in ("http", "https"):
            return origin
        return None if _same_host(parts.netloc, host, parts.scheme) else origin

    def file_allowed(self, path: str) -> bool:
        """Whether a Gradio file route's target is a file in Gradio's cache (and nothing else)."""
        target = FILE_ROUTE.sub("", path, count=1)
        for _ in range(4):  # undo every layer of percent-encoding a client may have added
            decoded = unquote(target)
            if decoded == target:
                break
            target = decoded
        if "://" in target or "\\" in target or "\x00" in target or not target.startswith("/"):
            return False
        resolved = Path(os.path.normpath(target)).resolve()
        return self.gradio_cache in resolved.parents


def _settings_or_defaults(store: SettingsStore) -> Settings:
    try:
        return store.load()
    except SettingsError as error:
        log.error("%s; using the default web rules", error)
        return Settings()


def _same_host(origin_netloc: str, host: str, scheme: str) -> bool:
    default = {"http": "80", "https": "443"}[scheme]

    def normal(netloc: str) -> str:
        netloc = netloc.lower()
        return netloc if re.search(r":\d+$", netloc) else f"{netloc}:{default}"

    return normal(origin_netloc) == normal(host)


class GateMiddleware:
    def __init__(self, app, gate: Gate):
        self.app, self.gate = app, gate

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "")
        raw_path = scope.get("raw_path", b"").decode("latin-1") or quote(path)
        gate = self.gate
        foreign = gate.foreign_origin(headers)
        if foreign is not None:
            log.warning("refused a request to %s from another site's page (Origin %s)", path, foreign[:100])
            await _answer(scope, send, 403, "This server does not answer requests from another site's pages.")
            return
        if NEVER_SERVED.match(path) or NEVER_SERVED.match(unquote(raw_path)):
            await _answer(scope, send, 404, "Not found.")
            return
        public = path in PUBLIC_PATHS
        scope[USER_KEY] = ""
        if gate.has_accounts() and not public:
            session = gate.session(_cookie(headers.get("cookie", ""), COOKIE))
            if session is None:
                await _refuse_anonymous(scope, send, headers, path)
                return
            scope[USER_KEY] = session.user
        if FILE_ROUTE.match(path) or FILE_ROUTE.match(raw_path):
            if not (gate.file_allowed(path) and gate.file_allowed(raw_path)):
                log.warning("refused file route %s for %s", raw_path[:200], scope[USER_KEY] or "anonymous")
                await _answer(scope, send, 403, "File not allowed.")
                return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self._limited(scope, receive, send, headers, path)

    async def _limited(self, scope, receive, send, headers, path):
        """Pass the request on with its body counted as it arrives; past the route's limit (or a
        second file in an upload) the app sees a disconnect and the gate answers 413."""
        upload = scope.get("method") == "POST" and UPLOAD_ROUTE.match(path)
        if upload:
            limit = self.gate.max_upload_bytes + MULTIPART_SLACK
            what = f"An upload may carry at most {self.gate.max_upload_bytes // 2**20} MB in all."
        elif path in PUBLIC_PATHS:
            limit, what = SIGN_IN_BODY, "This form takes a user name and a password only."
        else:
            limit, what = OTHER_BODY, f"A request may carry at most {OTHER_BODY // 2**20} MB."
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _answer(scope, send, 413, what)
            return
        boundary = _boundary(headers.get("content-type", "")) if upload else None
        counter = _BodyCounter(receive, limit, what, boundary)
        guarded = _Guarded(_headers_added(send), counter)
        try:
            await self.app(scope, counter, guarded)
        except Exception:  # the app's parser failing on the cut-off body: the refusal answers instead
            if not counter.refused:
                raise
        if counter.refused and not guarded.started:
            log.warning("refused a request to %s from %s: %s", path, scope.get(USER_KEY) or "anonymous", counter.refused)
            await _answer(scope, send, 413, counter.refused)


class _BodyCounter:
    """Counts a request body's bytes (and, for an upload, its files) as they arrive; past a limit
    the app behind sees a disconnect instead of more."""

    def __init__(self, receive, limit: int, too_big: str, boundary: bytes | None):
        self.receive, self.limit, self.too_big = receive, limit, too_big
        # Each part of a multipart body opens with "--boundary" and a line break; the closing one ends with "--".
        self.opening = b"--" + boundary + b"\r\n" if boundary else None
        self.total = self.files = 0
        self.tail = b""
        self.refused: str | None = None

    async def __call__(self):
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self.receive()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        self.total += len(chunk)
        if self.opening:
            window = self.tail + chunk
            self.files += window.count(self.opening)
            self.tail = window[-(len(self.opening) - 1):]
        if self.total > self.limit:
            self.refused = self.too_big
        elif self.files > MAX_FILES_PER_UPLOAD:
            self.refused = f"An upload may carry at most {MAX_FILES_PER_UPLOAD} file."
        return {"type": "http.disconnect"} if self.refused else message


class _Guarded:
    """Passes the app's response on unless the upload was refused first (then the gate answers)."""

    def __init__(self, send, counter: _BodyCounter):
        self.send, self.counter, self.started = send, counter, False

    async def __call__(self, message):
        if self.counter.refused and not self.started:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"SAMEORIGIN")]


def _headers_added(send):
    async def wrapped(message):
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", [])}
            message["headers"] = [*message.get("headers", []), *(h for h in SECURITY_HEADERS if h[0] not in present)]
        await send(message)

    return wrapped


def _boundary(content_type: str) -> bytes | None:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    return match.group(1).encode("latin-1") if match else None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _refuse_anonymous(scope, send, headers: dict[str, str], path: str) -> None:
    """A page goes to the sign-in form (and comes back after); anything else is told 401."""
    wants_page = scope["type"] == "http" and scope.get("method") in ("GET", "HEAD") and "text/html" in headers.get("accept", "")
    if wants_page:
        query = scope.get("query_string", b"").decode("latin-1")
        back = quote(path + (f"?{query}" if query else ""), safe="/")
        await _answer(scope, send, 303, "Sign in first.", [(b"location", f"/login?next={back}".encode("latin-1"))])
        return
    await _answer(scope, send, 401, "Sign in first: this server needs a signed-in user for every request.")


async def _answer(scope, send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4401 if status == 401 else 4403})
        return
    body = json.dumps({"error": text}).encode() if status != 303 else b""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), *SECURITY_HEADERS, *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

