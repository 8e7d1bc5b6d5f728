"""Signing in and out: the sign-in page, the password check and its limits.

The password check (scrypt, ~0.1 s of CPU) runs in a worker thread, at most a few at a time, so
other users' requests stay fast while someone hammers the form. Before it, the failures of the
account and of the client's address are looked up: past the limits (``sessions.ACCOUNT_LIMIT``,
``ADDRESS_LIMIT``) the answer is 429 with the time to wait, and no password is checked. An
attempt counts as failed before its check (so parallel guesses count too) and is cleared when the
password was right. Unknown names are answered like wrong passwords, in the same time.

Browsers get the page back (or go where they were going: ``?next=``, a path on this server only); scripts (``gradio_client``'s login
posts the same form) get JSON and the cookie.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from studio.ui.i18n import LANGUAGES, pick_language, t
from studio.users import UserStore
from studio.web.gate import COOKIE, Gate
from studio.web.sessions import ACCOUNT_LIMIT, ADDRESS_LIMIT, account_key, address_key

log = logging.getLogger("studio.web")

PASSWORD_CHECKS = max(1, (os.cpu_count() or 2) // 2)
"""Password checks at once; the rest wait their turn without holding a thread or the event loop."""
MAX_FIELD = 1024


class Login:
    def __init__(self, gate: Gate):
        self.gate = gate
        self.users = UserStore(gate.workspace_root)
        self._checks: asyncio.Semaphore | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        if self._checks is None:  # made inside the server's event loop
            self._checks = asyncio.Semaphore(PASSWORD_CHECKS)
        return self._checks

    async def page(self, request: Request) -> Response:
        if not self.gate.has_accounts():
            return RedirectResponse("/", status_code=303)
        return self._page(request, "", status=200)

    async def submit(self, request: Request) -> Response:
        form = await request.form()
        name = str(form.get("username") or "").strip()[:MAX_FIELD]
        password = str(form.get("password") or "")[:MAX_FIELD]
        address = request.client.host if request.client else "unknown"
        keys = {account_key(name): ACCOUNT_LIMIT, address_key(address): ADDRESS_LIMIT}
        auth = self.gate.auth
        wait = auth.retry_after(keys)
        if wait > 0:
            log.warning("sign-in refused for %r from %s: too many failures, %d s to wait", name, address, wait)
            return self._answer(request, 429, t("login.locked", self._lang(request), seconds=int(wait) + 1),
                                headers={"Retry-After": str(int(wait) + 1)}, name=name)
        auth.fail(list(keys))
        async with self._semaphore():
            user = await run_in_threadpool(self.users.authenticate, name, password)
        if user is None:
            log.warning("sign-in failed for %r from %s", name, address)
            return self._answer(request, 401, t("login.wrong", self._lang(request)), name=name)
        auth.clear(account_key(name))
        auth.forgive(address_key(address))
        stamp = self.users.stamps().get(user.name, "")
        token = auth.create(user.name, stamp, address)
        log.info("%s signed in from %s", user.name, address)
        if _wants_page(request):
            response: Response = RedirectResponse(_local(request.query_params.get("next") or "/"), status_code=303)
        else:
            response = JSONResponse({"success": True, "user": user.name})
        response.headers.append("set-cookie", self.gate.cookie(token, request.url.scheme))
        return response

    async def logout(self, request: Request) -> Response:
        self.gate.auth.end(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.headers.append("set-cookie", self.gate.expired_cookie(request.url.scheme))
        return response

    # ---- the page ------------------------------------------------------------------------------
    def _lang(self, request: Request) -> str:
        return pick_language(request.headers.get("accept-language"))

    def _answer(self, request: Request, status: int, message: str, headers: dict | None = None, name: str = "") -> Response:
        if _wants_page(request):
            return self._page(request, message, status=status, headers=headers, name=name)
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def _page(self, request: Request, message: str, *, status: int, headers: dict | None = None,
              name: str = "") -> HTMLResponse:
        lang = self._lang(request)
        nxt = _local(request.query_params.get("next") or "/")
        alert = f'<p class="alert" role="alert">{html.escape(message)}</p>' if message else ""
        texts = {"title": t("app.title", lang), "heading": t("login.heading", lang), "intro": t("app.sign_in", lang),
                 "name": t("login.name", lang), "password": t("login.password", lang), "submit": t("login.submit", lang)}
        body = PAGE.format(lang=lang, alert=alert, next=html.escape(quote(nxt, safe="/"), quote=True), other=_other_languages(lang),
                           username=html.escape(name, quote=True),
                           **{key: html.escape(text) for key, text in texts.items()})
        return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


def _wants_page(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _local(target: str) -> str:
    """Only a path on this server: never another site (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or "://" in target:
        return "/"
    return target


def _other_languages(lang: str) -> str:
    return " · ".join(html.escape(t("app.sign_in", code)) for code in LANGUAGES if code != lang)


PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{font-family: ui-sans-serif, system-ui, sans-serif; background: #f3f6fb; margin: 0; color: #111827;}}
main {{max-width: 360px; margin: 12vh auto; background: #fff; border-radius: 12px; padding: 28px 32px;
      box-shadow: 0 6px 24px rgba(15, 23, 42, .08);}}
h1 {{font-size: 1.4em; margin: 0 0 4px;}} p {{margin: 6px 0 16px; color: #4b5563;}}
label {{display: block; font-size: .9em; margin: 12px 0 4px;}}
input {{width: 100%; box-sizing: border-box; padding: 9px 10px; border: 1px solid #cbd5e1; border-radius: 6px; font-size: 1em;}}
button {{width: 100%; margin-top: 20px; padding: 10px; border: 0; border-radius: 6px; background: #3b6fd6; color: #fff;
        font-size: 1em; cursor: pointer;}}
.alert {{background: #fdecea; border-left: 4px solid #d93025; color: #5f1510; padding: 8px 12px; border-radius: 6px;}}
small {{display: block; margin-top: 16px; color: #6b7280;}}
</style></head>
<body><main>
<h1>{heading}</h1><p>{intro}</p>{alert}
<form method="post" action="/login?next={next}">
<label for="username">{name}</label><input id="username" name="username" value="{username}" autocomplete="username" required autofocus>
<label for="password">{password}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="login-submit">{submit}</button>
</form><small>{other}</small>
</main></body></html>
"""
