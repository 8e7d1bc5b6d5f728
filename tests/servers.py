"""Starting the studio's web server for a test: a free port, ``studio serve`` in a subprocess on a
workspace, waiting until it answers, and stopping it. Every suite that needs a server uses these."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workspace: Path, port: int, log: Path | IO[bytes], *extra: str, env: dict | None = None) -> subprocess.Popen:
    """``studio serve`` on ``port`` (loopback) for ``workspace``, its output written to ``log``."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1", "STUDIO_MODEL_DIRS": "", **(env or {})}
    out = open(log, "wb") if isinstance(log, (str, Path)) else log
    return subprocess.Popen([sys.executable, "-m", "studio", "serve", "--port", str(port), "--workspace", str(workspace), *extra],
                            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_until_up(process: subprocess.Popen, url: str, log: Path | None = None, timeout: float = 120) -> None:
    """Until ``url`` answers (a sign-in page or a refusal is an answer); fails if the server exits."""
    deadline = time.time() + timeout
    while True:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if isinstance(log, Path) else ""
            raise AssertionError(f"the server exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            pass
        if time.time() > deadline:
            process.kill()
            raise AssertionError(f"the server did not answer within {timeout:.0f} s")
        time.sleep(0.3)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
