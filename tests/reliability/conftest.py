"""Fixtures for the job system's reliability tests: real worker processes training a tiny model.

Each worker costs a few seconds (mostly importing torch), so the tests keep to one or two runs
each, slow the training steps down with ``STUDIO_STEP_DELAY`` when they must act mid-run, and
cancel runs as soon as they have shown what the test needs.
"""

from __future__ import annotations

import stat
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import toy_sentiment_rows, write_csv

# 60 rows -> 48 for training; batch 4 -> 12 steps an epoch; 2 epochs -> 24 steps.
TOTAL_STEPS = 24


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05, what: str = "condition", run=None):
    """Poll ``predicate`` until it is truthy; on timeout, say what the run ``(manager, run_id)`` was doing."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (describe(*run) if run else ""))


def describe(manager, run_id: str) -> str:
    record = manager.store.get(run_id)
    try:
        log = (manager.run_dir(run_id) / "worker.log").read_text(errors="replace").splitlines()[-15:]
    except OSError:
        log = []
    return f"\nrecord: {record}\nworker.log:\n" + "\n".join(log)


def live(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# Processes the test session had already started (e.g. the browser tests' server and browser)
# before a reliability test began: not the business of the job system under test.
_BASELINE: set[int] = set()


def descendants() -> list[psutil.Process]:
    """Live (non-zombie) descendants of the test process started since the test began."""
    return [p for p in psutil.Process().children(recursive=True) if live(p.pid) and p.pid not in _BASELINE]


@pytest.fixture
def toy_data(tmp_path) -> Path:
    return write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(60))


@pytest.fixture
def make_config(tiny_encoder, toy_data):
    from studio.config import RunConfig

    def make(name: str = "toy", **training):
        values = dict(epochs=2, batch_size=4, learning_rate=1e-3, max_length=32, eval_strategy="steps", eval_steps=4,
                      save_strategy="steps", save_total_limit=3, early_stopping_patience=0, logging_steps=1)
        values.update(training)
        return RunConfig.from_dict({"name": name, "data": {"train": str(toy_data)},
                                    "model": {"backbone": str(tiny_encoder)}, "training": values})

    return make


@pytest.fixture
def child_python(tmp_path) -> tuple[str, Path]:
    """An interpreter wrapper whose worker leaves a grandchild behind (``sleep``), recording its pid,
    so tests can check that no descendant of a worker survives it."""
    pids = tmp_path / "grandchildren.txt"
    script = tmp_path / "python-with-child"
    script.write_text(f'#!/bin/sh\nsleep 300 &\necho $! >> "{pids}"\nexec "{sys.executable}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script), pids


@pytest.fixture
def managers(workspace):
    """Make job managers on the test workspace; every one is shut down, and every worker it
    started killed, at the end of the test."""
    from studio.jobs.manager import JobManager

    _BASELINE.clear()
    _BASELINE.update(p.pid for p in psutil.Process().children(recursive=True))
    made = []

    def make(**kwargs):
        kwargs = {"poll_s": 0.2, "cancel_grace_s": 3.0, **kwargs}
        manager = JobManager(workspace, **kwargs)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.shutdown()
    from studio.jobs import process

    for manager in made[-1:]:
        for record in manager.store.list(status=("starting", "running")):
            process.kill_tree(record.pid, record.pid_started)
    for p in descendants():
        p.kill()


def events_of(manager, run_id: str) -> list[dict]:
    return manager.events(run_id)[0]


def attempt_events(manager, run_id: str, attempt: int) -> list[dict]:
    """Events of the n-th attempt (1-based): from its 'starting' status to the next one."""
    found, n = [], 0
    for e in events_of(manager, run_id):
        if e.get("kind") == "status" and e.get("status") == "starting":
            n += 1
        if n == attempt:
            found.append(e)
    return found
