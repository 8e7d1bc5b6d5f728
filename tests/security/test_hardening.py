"""A studio with accounts, attacked over HTTP: nothing without a login, nothing of the workspace
through the file routes, no oversized uploads, and no member touching another member's run."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from tests.security.conftest import PASSWORDS, SECRETS, UPLOAD_LIMIT_MB, login, multipart, request


def test_every_route_refuses_an_anonymous_request(secured):
    url = secured["url"]
    # A page goes to the sign-in form, which holds no component, workspace path, run or user.
    status, _ = request(url, "/", headers={"Accept": "text/html"})
    assert status == 303
    status, page = request(url, "/login?next=/", headers={"Accept": "text/html"})
    assert status == 200 and b'name="password"' in page and b"gradio_config" not in page
    for secret in (str(secured["workspace"]).encode(), secured["alice_run"].name.encode(), b"alice", b"root-password"):
        assert secret not in page, secret
    assert request(url, "/")[0] == 401
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
    # Several small files in one request: one file an upload, whatever their total.
    body, content_type = multipart("a.csv", b"text,label\nhi,pos\n", *[(f"more-{i}.csv", b"x,y\n1,2\n") for i in range(50)])
    status, answer = request(secured["url"], "/gradio_api/upload", "POST", body, {"Content-Type": content_type}, cookie=cookie)
    assert status == 413, (status, answer[:200])
    assert not [p for p in tmp.rglob("more-*.csv")]
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
    cookie = login(secured["url"], "bob")
    for kind in ("model", "config", "predictions"):
        status, body = request(secured["url"], f"/download/{run_id}/{kind}", cookie=cookie)
        assert status == 403 and b"belongs to alice" in body, (kind, status, body[:200])
        assert not any(s in body for s in SECRETS)
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
