"""A new job manager on the same workspace takes over: running workers are re-attached (never
started again), dead ones become ``interrupted``."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.reliability.conftest import TOTAL_STEPS, describe, events_of, wait_for


def test_restart_mid_run_reattaches_and_never_starts_twice(managers, make_config):
    first = managers()
    run_id = first.submit(make_config("survivor"), owner="bo", env={"STUDIO_STEP_DELAY": "0.1"})
    wait_for(lambda: (first.store.get(run_id).step or 0) >= 2,
             timeout=90, what="training to be under way", run=(first, run_id))
    before = first.store.get(run_id)
    seen, offset = first.events(run_id, 0)
    first.shutdown()  # the server goes away; its worker keeps training

    second = managers()
    assert second.recovered == []
    record = second.store.get(run_id)
    assert record.status == "running" and record.pid == before.pid and record.owner == "bo"
    assert second.status(run_id) == "running"
    wait_for(lambda: second.events(run_id, offset)[0], timeout=10, what="new events", run=(second, run_id))
    more, _ = second.events(run_id, offset)  # events continue where the old reader stopped
    assert more and min(e["t"] for e in more) >= max(e["t"] for e in seen)

    wait_for(lambda: second.store.get(run_id).status not in ("starting", "running"),
             timeout=90, what="the run to end", run=(second, run_id))
    record = second.store.get(run_id)
    assert record.status == "completed", describe(second, run_id)
    assert record.step == TOTAL_STEPS
    starts = [e for e in events_of(second, run_id) if e.get("kind") == "status" and e.get("status") == "starting"]
    assert len(starts) == 1  # one worker, ever
    assert [r.id for r in second.list()] == [run_id]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_restart_marks_dead_and_impostor_workers_interrupted(managers, make_config):
    from studio.runs.events import append_event

    setup = managers(supervise=False)
    gone = setup.submit(make_config("gone"))
    impostor = setup.submit(make_config("impostor"))
    # As a crashed server leaves them: marked running, one with a pid that no longer exists,
    # one whose pid now belongs to another process (this one) that started at another time.
    for run_id, pid, started in ((gone, _dead_pid(), None), (impostor, os.getpid(), 1.0)):
        append_event(setup.run_dir(run_id), "status", status="starting", pid=pid)
        append_event(setup.run_dir(run_id), "status", status="running", total_steps=24)
        setup.store.update(run_id, status="running", pid=pid, pid_started=started, devices=["cpu0"],
                           started=time.time() - 100, queue_order=None)

    restarted = managers(supervise=False)
    assert sorted(restarted.recovered) == sorted([gone, impostor])
    for run_id in (gone, impostor):
        record = restarted.store.get(run_id)
        assert record.status == "interrupted" and record.ended
        assert events_of(restarted, run_id)[-1]["status"] == "interrupted"
    assert restarted.store.list(status=("starting", "running")) == []


def test_auto_resume_requeues_interrupted_runs(managers, make_config):
    from studio.runs.events import append_event

    setup = managers(supervise=False)
    run_id = setup.submit(make_config("auto"))
    append_event(setup.run_dir(run_id), "status", status="starting", pid=_dead_pid())
    setup.store.update(run_id, status="running", pid=_dead_pid(), devices=["cpu0"], started=time.time() - 100)

    assert managers(supervise=False).store.get(run_id).status == "interrupted"  # off by default
    setup.store.update(run_id, status="running", pid=_dead_pid(), devices=["cpu0"])
    restarted = managers(supervise=False, auto_resume=True)
    record = restarted.store.get(run_id)
    assert record.status == "queued" and record.resume and record.position == 1
