"""A studio with accounts, attacked over HTTP: nothing without a login, nothing of the workspace
through the file routes, no oversized uploads, and no member touching another member's run."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from pathlib import Path

import pytest

from tests.security.conftest import PASSWORDS, UPLOAD_LIMIT_MB


def request(url: str, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None,
            cookie: str | None = None) -> tuple[int, bytes]:
    """A raw request: the path goes out exactly as written (no normalisation of '../' or '%2e')."""
    parsed = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    headers = dict(headers or {})
    if cookie:
        headers["Cookie"] = cookie
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def login(url: str, name: str) -> str:
    parsed = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    body = urllib.parse.urlencode({"username": name, "password": PASSWORDS[name]})
    conn.request("POST", "/login", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    assert response.status == 200, f"login of {name} failed: {response.status}"
    cookies = [v.split(";")[0] for k, v in response.getheaders() if k.lower() == "set-cookie"]
    conn.close()
    assert cookies
    return "; ".join(cookies)


def multipart(name: str, content: bytes) -> tuple[bytes, str]:
    boundary = "studio-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


SECRETS = (b"scrypt$", b"SQLite format", b"SECRET-CHECKPOINT", b"SECRET-MODEL")


def test_every_route_refuses_an_anonymous_request(secured):
    url = secured["url"]
    status, page = request(url, "/")
    # The page is the login form: no components, no workspace path, no run, no user. (Gradio embeds
    # the endpoints' schema in it, which is the open-source app's own code, not data.)
    config = page[page.find(b"window.gradio_config"):][:20000]
    assert b'"auth_required":true' in config.replace(b" ", b"")
    for secret in (str(secured["workspace"]).encode(), secured["alice_run"].name.encode(), b"alice", b"root-password"):
        assert secret not in page, secret
    for path in ("/config", "/gradio_api/info", "/gradio_api/config", "/gradio_api/queue/status",
                 f"/gradio_api/file={secured['alice_run'] / 'config.yaml'}", "/gradio_api/monitoring", "/monitoring"):
        status, body = request(url, path)
        assert status in (401, 403, 404), (path, status, body[:200])
        assert b"runs_delete" not in body
    body, content_type = multipart("x.csv", b"text,label\nhi,pos\n")
    status, _ = request(url, "/gradio_api/upload", "POST", body, {"Content-Type": content_type})
    assert status in (401, 403)
    # /run/train_poll: the live view's tick, an event outside the queue, answered on that route.
    for path in ("/gradio_api/call/runs_list", "/gradio_api/run/runs_list", "/gradio_api/queue/join", "/gradio_api/run/train_poll"):
        payload = json.dumps({"data": [[], "", "", "", [], None, None, None], "fn_index": 0, "session_hash": "x"}).encode()
        status, body = request(url, path, "POST", payload, {"Content-Type": "application/json"})
        assert status in (401, 403, 404), (path, status, body[:200])
    assert not list(Path(secured["gradio_tmp"]).rglob("x.csv"))


def test_a_signed_in_user_gets_the_app(secured):
    cookie = login(secured["url"], "bob")
    status, body = request(secured["url"], "/config", cookie=cookie)
    assert status == 200 and b"runs_delete" in body
    status, _ = request(secured["url"], "/gradio_api/info", cookie=cookie)
    assert status == 200
    # Hardening switches: no run history page, no monitoring.
    for path in ("/gradio_api/monitoring", "/monitoring"):
        status, _ = request(secured["url"], path, cookie=cookie)
        assert status != 200, path
    config = json.loads(request(secured["url"], "/config", cookie=cookie)[1])
    assert config.get("run_history") is False
    assert config.get("max_file_size") == UPLOAD_LIMIT_MB * 1024 * 1024


def _traversals(workspace: Path, target: Path) -> list[str]:
    rel = target.relative_to(workspace)
    absolute = str(target)
    upper = absolute.replace("users.json", "USERS.JSON").replace("studio.db", "Studio.DB").replace("checkpoints", "CheckPoints")
    encoded = urllib.parse.quote(absolute, safe="")
    double = encoded.replace("%", "%25")
    depth = "../" * 12
    return [
        f"/gradio_api/file={absolute}",
        f"/gradio_api/file={upper}",
        f"/gradio_api/file={encoded}",
        f"/gradio_api/file={double}",
        f"/gradio_api/file={depth}{absolute.lstrip('/')}",
        f"/gradio_api/file={urllib.parse.quote(depth, safe='')}{absolute.lstrip('/')}",
        f"/gradio_api/file=..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f{absolute.lstrip('/')}",
        f"/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{absolute.lstrip('/')}",
        f"/gradio_api/file={workspace / 'cache' / 'exports'}/../../{rel}",
        f"/gradio_api/file={workspace / 'cache' / 'exports'}/..%2f..%2f{urllib.parse.quote(str(rel))}",
        f"/gradio_api/file=//{absolute.lstrip('/')}",
        f"/file={absolute}",
        "/gradio_api/file=" + absolute.replace("/", "%5C"),
        f"/gradio_api/stream/..%2f..%2f{absolute.lstrip('/')}",
        f"/gradio_api/proxy=file://{absolute}",
        f"/static/{'..%2f' * 12}{absolute.lstrip('/')}",
        f"/static/{absolute}",
        f"/assets/{'..%2f' * 12}{absolute.lstrip('/')}",
        f"/assets/%2f{absolute.lstrip('/')}",
        f"/gradio_api/file=file://{absolute}",
    ]


@pytest.mark.parametrize("who", ["alice", "root"])
def test_file_routes_never_reach_the_workspace(secured, who):
    workspace = secured["workspace"]
    targets = [workspace / "users.json", workspace / "studio.db",
               secured["alice_run"] / "checkpoints" / "checkpoint-1" / "model.safetensors",
               secured["alice_run"] / "model" / "model.safetensors"]
    assert all(t.exists() for t in targets)
    cookie = login(secured["url"], who)
    for target in targets:
        for path in _traversals(workspace, target):
            status, body = request(secured["url"], path, cookie=cookie)
            assert not any(s in body for s in SECRETS), (path, status)
            assert status != 200 or len(body) == 0 or b"<html" in body[:200].lower(), (path, status, body[:100])


def test_an_oversized_upload_is_refused_and_leaves_no_file(secured):
    cookie = login(secured["url"], "alice")
    tmp = Path(secured["gradio_tmp"])
    before = {p for p in tmp.rglob("*") if p.is_file()}
    big = b"text,label\n" + b"x" * (UPLOAD_LIMIT_MB * 1024 * 1024 + 4096) + b",pos\n"
    body, content_type = multipart("big.csv", big)
    status, answer = request(secured["url"], "/gradio_api/upload", "POST", body, {"Content-Type": content_type}, cookie=cookie)
    assert status == 413, (status, answer[:200])
    after = {p for p in tmp.rglob("*") if p.is_file()}
    assert not [p for p in after - before if p.stat().st_size > 1024 * 1024 or p.name == "big.csv"]
    # A small one is accepted (the limit is not 'nothing').
    body, content_type = multipart("small.csv", b"text,label\nhi,pos\n")
    status, answer = request(secured["url"], "/gradio_api/upload", "POST", body, {"Content-Type": content_type}, cookie=cookie)
    assert status == 200, answer[:200]


def _client(secured, name: str):
    from gradio_client import Client

    client = Client(secured["url"] + "/", auth=(name, PASSWORDS[name]), verbose=False, download_files=False)
    # As the page does: list the runs (this fills the session's run pickers).
    client.predict([], "", "", "", [], None, None, None, api_name="/runs_list")
    return client


def test_a_member_cannot_touch_another_members_run(secured):
    run_id = secured["alice_run"].name
    bob = _client(secured, "bob")
    # Downloads: refused for every file of the run.
    for api in ("/runs_download_model", "/runs_download_config", "/runs_download_predictions"):
        with pytest.raises(Exception, match="belongs to alice"):
            bob.predict(run_id, api_name=api)
    # Delete: refused, and the run is still there.
    result = bob.predict(run_id, True, [], "", "", "", [], None, None, api_name="/runs_delete")
    assert "belongs to alice" in json.dumps(result)
    assert secured["alice_run"].is_dir()
    # Cancel and resume of the run Bob watches: refused.
    bob.predict(api_name="/train_runs")
    bob.predict(run_id, None, api_name="/train_attach")
    for api in ("/train_cancel", "/train_resume"):
        result = bob.predict(api_name=api)
        assert "belongs to alice" in json.dumps(result), (api, result)
    assert secured["alice_run"].is_dir()


def test_the_owner_and_an_admin_may_download(secured):
    run_id = secured["alice_run"].name
    for name in ("alice", "root"):
        result = _client(secured, name).predict(run_id, api_name="/runs_download_config")
        assert run_id in json.dumps(result)
    # What the app handed out is fetched from Gradio's cache; the export itself, at its predictable
    # path in the workspace, is not served to anyone (Bob would otherwise guess it).
    exported = secured["workspace"] / "cache" / "exports" / run_id / f"{run_id}.yaml"
    assert exported.exists()
    for name in ("bob", "alice"):
        status, body = request(secured["url"], f"/gradio_api/file={exported}", cookie=login(secured["url"], name))
        assert status == 403 and b"text_classification" not in body
    url = json.loads(json.dumps(result))[0]["value"]["url"]
    status, body = request(secured["url"], urllib.parse.urlparse(url).path, cookie=login(secured["url"], "alice"))
    assert status == 200 and b"text_classification" in body
