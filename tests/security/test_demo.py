"""'studio demo' offline: the first start saves the sample data and trains the quick run, then
serves; a second start reuses both and serves at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.conftest import REPO
from tests.servers import free_port, stop, wait_until_up


def start_demo(workspace, log):
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1", "STUDIO_MODEL_DIRS": ""}
    process = subprocess.Popen([sys.executable, "-m", "studio", "demo", "--workspace", str(workspace), "--port", str(port)],
                               cwd=REPO, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}/"


def test_demo_trains_once_and_serves(tmp_path):
    from studio.data.datasets_store import list_datasets
    from studio.jobs.manager import JobManager

    workspace = tmp_path / "demo-workspace"
    process, url = start_demo(workspace, tmp_path / "first.log")
    try:
        wait_until_up(process, url, tmp_path / "first.log", timeout=600)
        assert "sample-reviews" in list_datasets(workspace / "datasets")
        runs = JobManager(workspace, supervise=False).list()
        assert [r.status for r in runs] == ["completed"]
        assert (workspace / "runs" / runs[0].id / "model" / "task.json").exists()
        metrics = json.loads((workspace / "runs" / runs[0].id / "metrics.json").read_text())
        assert "validation" in metrics
    finally:
        stop(process)
    started = time.time()
    process, url = start_demo(workspace, tmp_path / "second.log")
    try:
        wait_until_up(process, url, tmp_path / "second.log", timeout=120)
        assert "training a quick" not in (tmp_path / "second.log").read_text()
        assert len(JobManager(workspace, supervise=False).list()) == 1
    finally:
        stop(process)
    assert time.time() - started < 120
