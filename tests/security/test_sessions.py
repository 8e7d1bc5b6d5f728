"""Sessions against a running server: the cookie's attributes, sign-ins that end when their user
is removed or changed, idle and absolute expiry, and the routes that answer without one."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.security.conftest import PASSWORDS, exchange, login, request

COOKIE = "studio-session"


def studio(workspace, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run([sys.executable, "-m", "studio", *args, "--workspace", str(workspace)], cwd=REPO,
                            input=stdin, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def signed_in(url: str, cookie: str) -> bool:
    status, _ = request(url, "/config", cookie=cookie)
    assert status in (200, 401), status
    return status == 200


def test_the_cookie_is_http_only_same_site_and_the_only_one(secured):
    status, headers, body = exchange(secured["url"], "/login", "POST", b"username=alice&password=" + PASSWORDS["alice"].encode(),
                                     {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    cookies = [v for k, v in headers if k.lower() == "set-cookie"]
    assert len(cookies) == 1 and cookies[0].startswith(f"{COOKIE}="), cookies  # no second, "unsecure" cookie
    attributes = {part.strip().split("=")[0].lower() for part in cookies[0].split(";")[1:]}
    assert {"httponly", "path", "max-age"} <= attributes and "samesite=lax" in cookies[0].lower()
    assert "secure" not in attributes  # plain HTTP here; HTTPS (or --behind-https) adds it
    # The token is never in a response body.
    token = cookies[0].split(";")[0].split("=", 1)[1]
    assert token.encode() not in body
    for path in ("/gradio_api/token", "/token", "/gradio_api/user", "/config"):
        status, answer = request(secured["url"], path, cookie=cookies[0].split(";")[0])
        assert token.encode() not in answer, path


def test_removing_or_changing_a_user_ends_their_sessions(secured):
    url, workspace = secured["url"], secured["workspace"]
    studio(workspace, "users", "add", "carol", "--password-stdin", stdin="carol-password-1\n")
    PASSWORDS["carol"] = "carol-password-1"
    try:
        cookie, other = login(url, "carol"), login(url, "alice")
        assert signed_in(url, cookie)
        studio(workspace, "users", "role", "carol", "admin")
        assert not signed_in(url, cookie), "a role change must end the user's sessions"
        assert signed_in(url, other), "other users stay signed in"
        cookie = login(url, "carol")
        studio(workspace, "users", "passwd", "carol", "--password-stdin", stdin="carol-password-2\n")
        assert not signed_in(url, cookie), "a new password must end the user's sessions"
        PASSWORDS["carol"] = "carol-password-2"
        cookie = login(url, "carol")
        # The running server notices the users file changed, without the command line's help:
        # write the file as an admin's editor would (the stamp changes, the sessions table does not).
        import json

        users_file = workspace / "users.json"
        data = json.loads(users_file.read_text())
        data["users"]["carol"]["role"] = "member"
        users_file.write_text(json.dumps(data))
        assert not signed_in(url, cookie)
        cookie = login(url, "carol")
        studio(workspace, "users", "remove", "carol")
        assert not signed_in(url, cookie), "a removed user must be signed out at once"
        status, _ = request(url, "/gradio_api/upload", "POST", b"", {"Content-Type": "multipart/form-data; boundary=x"},
                            cookie=cookie)
        assert status == 401
    finally:
        PASSWORDS.pop("carol", None)


@pytest.mark.parametrize("column, age_hours", [("last_seen", 9), ("created", 24 * 8)])
def test_sessions_expire_when_idle_and_after_their_lifetime(secured, column, age_hours):
    """The defaults: 8 idle hours (a working day), 168 hours in all. Time is moved by ageing the
    session in the server's own store, as the hours would."""
    url = secured["url"]
    cookie = login(url, "bob")
    assert signed_in(url, cookie)
    token = cookie.split("=", 1)[1]
    import hashlib

    db = sqlite3.connect(secured["workspace"] / "auth.db")
    with db:
        db.execute(f"UPDATE sessions SET {column} = ? WHERE digest = ?",
                   (time.time() - age_hours * 3600, hashlib.sha256(token.encode()).hexdigest()))
    db.close()
    assert not signed_in(url, cookie)
    # Just under the limits, a session lives on.
    cookie = login(url, "bob")
    db = sqlite3.connect(secured["workspace"] / "auth.db")
    with db:
        db.execute(f"UPDATE sessions SET {column} = ? WHERE digest = ?",
                   (time.time() - (7.5 if column == "last_seen" else 160) * 3600,
                    hashlib.sha256(cookie.split("=", 1)[1].encode()).hexdigest()))
    db.close()
    assert signed_in(url, cookie)


def test_sign_out_ends_the_session(secured):
    url = secured["url"]
    cookie = login(url, "bob")
    status, headers, _ = exchange(url, "/logout", cookie=cookie)
    assert status == 303 and any("Max-Age=0" in v for k, v in headers if k.lower() == "set-cookie")
    assert not signed_in(url, cookie)


# Every route Gradio and the studio answer, as the review listed them and more.
ANONYMOUS = [("POST", "/gradio_api/cancel"), ("POST", "/gradio_api/reset"), ("GET", "/gradio_api/heartbeat/abc"),
             ("GET", "/gradio_api/token"), ("GET", "/gradio_api/user"), ("GET", "/gradio_api/app_id"),
             ("GET", "/gradio_api/startup-events"), ("GET", "/openapi.json"), ("GET", "/gradio_api/openapi.json"),
             ("GET", "/manifest.json"), ("GET", "/docs"), ("GET", "/config"), ("GET", "/gradio_api/info"),
             ("GET", "/gradio_api/queue/data?session_hash=x"), ("POST", "/gradio_api/queue/join"),
             ("GET", "/gradio_api/login_check"), ("GET", "/theme.css"), ("GET", "/gradio_api/deep_link"),
             ("GET", "/download/20260101-000000-alice-run-0000abcd/config"), ("POST", "/gradio_api/upload"),
             ("GET", "/gradio_api/upload_progress?upload_id=x"), ("GET", "/gradio_api/runs"), ("GET", "/svelte/x.js"),
             ("GET", "/gradio_api/file=/etc/hostname"), ("GET", "/gradio_api/file/etc/hostname"), ("GET", "/favicon.ico")]


def test_every_route_needs_a_session(secured):
    """Only the sign-in page, sign-out and the health check answer without a signed-in user."""
    url = secured["url"]
    for method, path in ANONYMOUS:
        status, body = request(url, path, method, b"{}" if method == "POST" else None, {"Content-Type": "application/json"})
        assert status in (401, 404), (method, path, status, body[:200])
    # Gradio's own route table, whatever it holds in this version: each one refused without a session.
    for path in gradio_route_paths():
        status, _ = request(url, path)
        assert status in (401, 404, 405), (path, status)
    assert request(url, "/healthz")[1] == b"ok"
    assert request(url, "/login")[0] == 200


def gradio_route_paths() -> list[str]:
    import gradio as gr
    from gradio.routes import App

    with gr.Blocks() as blocks:
        gr.Textbox()
    blocks.queue()
    app = App.create_app(blocks)
    routes = []
    for route in app.routes:  # FastAPI keeps an included router's routes on the router itself
        routes += [(route.include_context.prefix if hasattr(route, "include_context") else "", r)
                   for r in getattr(getattr(route, "original_router", None), "routes", [])] or [("", route)]
    paths = []
    for prefix, route in routes:
        path = prefix + getattr(route, "path", "")
        for name in ("{path:path}", "{path}", "{size}", "{key}", "{session_hash}", "{event_id}", "{fn_index}", "{api_name}"):
            path = path.replace(name, "x")
        if path and "{" not in path and path not in ("/login", "/login/", "/logout"):
            paths.append(path)
    assert len(paths) > 20, paths
    return paths
