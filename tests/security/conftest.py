"""The studio served from a subprocess with accounts (an admin and two members), a run owned by
one member with a checkpoint on disk, and Gradio's temporary folder pointed at a test folder:
every check here is a real HTTP request against that server."""

from __future__ import annotations

import http.client
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.servers import free_port, start_server, stop, wait_until_up

PASSWORDS = {"root": "root-password-1", "alice": "alice-password-1", "bob": "bob-password-1"}
UPLOAD_LIMIT_MB = 1
ALLOWED_ORIGIN = "https://portal.example.com"
"""The one other site an admin of the test server allowed."""


def exchange(url: str, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None,
             cookie: str | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    """A raw request: the path goes out exactly as written (no normalisation of '../' or '%2e')."""
    parsed = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    headers = dict(headers or {})
    if cookie:
        headers["Cookie"] = cookie
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.getheaders(), data


def request(url: str, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None,
            cookie: str | None = None) -> tuple[int, bytes]:
    status, _, data = exchange(url, path, method, body, headers, cookie)
    return status, data


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


def multipart(name: str, content: bytes, *more: tuple[str, bytes]) -> tuple[bytes, str]:
    """An upload request's body (one file, or more after the first) and its content type."""
    boundary = "studio-test-boundary"
    body = b""
    for file_name, data in ((name, content), *more):
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{file_name}\"\r\n"
                 "Content-Type: text/csv\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


SECRETS = (b"scrypt$", b"SQLite format", b"SECRET-CHECKPOINT", b"SECRET-MODEL")


def seed_run(workspace: Path, run_id: str, owner: str, status: str = "completed") -> Path:
    """A finished run on disk and in the index, as the worker leaves one: config, model, checkpoint."""
    from studio.jobs.store import RunRecord, RunStore

    run_dir = workspace / "runs" / run_id
    (run_dir / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (run_dir / "checkpoints" / "checkpoint-1" / "model.safetensors").write_bytes(b"SECRET-CHECKPOINT")
    (run_dir / "model").mkdir()
    (run_dir / "model" / "task.json").write_text("{}")
    (run_dir / "model" / "model.safetensors").write_bytes(b"SECRET-MODEL")
    (run_dir / "config.yaml").write_text("task:\n  name: text_classification\n")
    RunStore.for_workspace(workspace).insert(RunRecord(id=run_id, run_dir=str(run_dir), status=status, owner=owner,
                                                       name=run_id, created=time.time(), ended=time.time()))
    return run_dir


@pytest.fixture(scope="session")
def secured(tmp_path_factory):
    from studio.settings import SettingsStore
    from studio.users import UserStore
    from studio.workspace import Workspace

    root = tmp_path_factory.mktemp("secured")
    workspace = Workspace.at(root / "workspace").root
    users = UserStore(workspace)
    users.add("root", PASSWORDS["root"], "admin")
    users.add("alice", PASSWORDS["alice"], "member")
    users.add("bob", PASSWORDS["bob"], "member")
    alice_run = seed_run(workspace, "20260101-000000-alice-run-0000abcd", "alice")
    SettingsStore(workspace).update(by="root", allowed_origins=ALLOWED_ORIGIN)
    gradio_tmp = root / "gradio-tmp"
    gradio_tmp.mkdir()
    port = free_port()
    log = root / "server.log"
    process = start_server(workspace, port, log, "--max-upload-mb", str(UPLOAD_LIMIT_MB), env={"GRADIO_TEMP_DIR": str(gradio_tmp)})
    url = f"http://127.0.0.1:{port}"
    wait_until_up(process, url + "/", log)
    yield {"url": url, "workspace": workspace, "alice_run": alice_run, "gradio_tmp": gradio_tmp, "log": log, "process": process}
    stop(process)
