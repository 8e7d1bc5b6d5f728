"""The studio served from a subprocess with accounts (an admin and two members), a run owned by
one member with a checkpoint on disk, and Gradio's temporary folder pointed at a test folder:
every check here is a real HTTP request against that server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO

PASSWORDS = {"root": "root-password-1", "alice": "alice-password-1", "bob": "bob-password-1"}
UPLOAD_LIMIT_MB = 1


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def start_server(workspace: Path, port: int, log: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1", "STUDIO_MODEL_DIRS": "", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "studio", "serve", "--port", str(port), "--workspace", str(workspace), *extra],
                            cwd=REPO, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def wait_until_up(process: subprocess.Popen, url: str, log: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (a login page or a refusal is an answer)
        except OSError:
            pass
        if time.time() > deadline:
            process.kill()
            raise AssertionError("the server did not answer within the time limit")
        time.sleep(0.3)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def secured(tmp_path_factory):
    from studio.users import UserStore
    from studio.workspace import Workspace

    root = tmp_path_factory.mktemp("secured")
    workspace = Workspace.at(root / "workspace").root
    users = UserStore(workspace)
    users.add("root", PASSWORDS["root"], "admin")
    users.add("alice", PASSWORDS["alice"], "member")
    users.add("bob", PASSWORDS["bob"], "member")
    alice_run = seed_run(workspace, "20260101-000000-alice-run-0000abcd", "alice")
    gradio_tmp = root / "gradio-tmp"
    gradio_tmp.mkdir()
    port = free_port()
    log = root / "server.log"
    process = start_server(workspace, port, log, "--max-upload-mb", str(UPLOAD_LIMIT_MB), env={"GRADIO_TEMP_DIR": str(gradio_tmp)})
    url = f"http://127.0.0.1:{port}"
    wait_until_up(process, url + "/", log)
    yield {"url": url, "workspace": workspace, "alice_run": alice_run, "gradio_tmp": gradio_tmp, "log": log, "process": process}
    stop(process)
