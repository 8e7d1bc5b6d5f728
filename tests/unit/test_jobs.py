"""Job system pieces that need no training: devices, worker commands, process trees, the CLI."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from studio.errors import ConfigError
from studio.jobs import process
from studio.jobs.devices import DevicePool, cuda_visible_devices, visible_gpus
from studio.jobs.manager import worker_command


def test_importing_the_job_system_does_not_import_torch():
    code = ("import sys, studio.jobs.manager, studio.jobs.cli, studio.jobs.store, studio.jobs.devices; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fake_gpus_and_cpu_slots(monkeypatch):
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "3")
    assert visible_gpus() == ["0", "1", "2"]
    pool = DevicePool.detect()
    assert pool.allocate(2, busy={"1"}) == ["0", "2"]
    assert pool.allocate(2, busy={"0", "1"}) is None
    assert pool.allocate(0, busy=set()) == ["cpu0"]  # gpus=0: a CPU slot, even on a GPU machine
    with pytest.raises(ConfigError, match="asks for 4 GPUs but this machine has 3"):
        pool.check(4)
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "0")
    cpu = DevicePool.detect(cpu_slots=2)
    assert cpu.gpus == () and cpu.allocate(1, {"cpu0"}) == ["cpu1"] and cpu.allocate(1, {"cpu0", "cpu1"}) is None
    with pytest.raises(ConfigError, match="no GPU"):
        cpu.check(2)
    with pytest.raises(ConfigError, match="0 CPU slots"):
        DevicePool.detect(cpu_slots=0).check(1)
    assert cuda_visible_devices(["cpu0"]) == "" and cuda_visible_devices(["2", "3"]) == "2,3"


def test_worker_command_uses_torchrun_for_several_gpus(tmp_path):
    assert worker_command(tmp_path, 1, python="py") == ["py", "-m", "studio.worker", str(tmp_path)]
    assert worker_command(tmp_path, 0, resume=True, python="py")[-1] == "--resume"
    cmd = worker_command(tmp_path, 2, resume=True, python="py")
    assert cmd[:3] == ["py", "-m", "torch.distributed.run"] and "--nproc-per-node=2" in cmd
    assert cmd[cmd.index("--nproc-per-node=2") + 1:] == ["-m", "studio.worker", str(tmp_path), "--resume"]


def test_identity_needs_the_same_start_time():
    me = psutil.Process()
    assert process.is_alive(me.pid, me.create_time())
    assert not process.is_alive(me.pid, me.create_time() - 3600)  # the pid of a worker long gone, reused
    assert not process.is_alive(me.pid, None, marker="no-such-run-id")
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.01)
    assert not process.is_alive(zombie.pid)  # exited, not yet collected
    zombie.wait()
    assert not process.is_alive(zombie.pid)
    assert process.kill_tree(me.pid, me.create_time() - 3600) == []  # never kills a stranger


def test_kill_tree_ends_children_and_orphaned_grandchildren(tmp_path):
    pids = tmp_path / "pids"
    # A worker whose child left a grandchild behind and exited (the grandchild is an orphan).
    script = f"(sleep 300 & echo $! >> {pids}) ; sleep 300 & echo $! >> {pids}; wait"
    root = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    for _ in range(200):
        if pids.exists() and len(pids.read_text().split()) == 2:
            break
        time.sleep(0.02)
    others = [int(p) for p in pids.read_text().split()]
    started = process.start_time(root.pid)
    killed = process.kill_tree(root.pid, started)
    assert set(others) | {root.pid} <= set(killed)
    root.wait(5)
    for pid in others:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_running_runs_step_reaches_the_index_now_and_then_but_every_look_sees_it(tmp_path, monkeypatch):
    """A run's step changes many times a second; each look at it (a page's tick, the supervisor)
    would write the index. The record a look returns is current; the index gets the step once
    every STEP_WRITE_S."""
    from studio.jobs import manager as manager_module
    from studio.jobs.manager import JobManager
    from studio.runs.event_types import Progress, Status
    from studio.runs.events import append_event
    from studio.jobs.store import RunRecord, RunStore

    clock = [1000.0]
    monkeypatch.setattr(manager_module.time, "time", lambda: clock[0])
    jobs = JobManager(tmp_path / "ws", supervise=False)
    run_dir = jobs.workspace.runs / "r1"
    run_dir.mkdir(parents=True)
    jobs.store.insert(RunRecord(id="r1", run_dir=str(run_dir), status="running", created=clock[0]))
    monkeypatch.setattr(jobs, "_alive", lambda record, summary: True)
    writes = []
    update = RunStore.update
    monkeypatch.setattr(RunStore, "update", lambda self, run_id, **values: writes.append(values) or update(self, run_id, **values))

    append_event(run_dir, Status(status="running", total_steps=100))
    for step in range(1, 8):  # seven looks within 1.4 s, one step further each time
        append_event(run_dir, Progress(step=step, total=100))
        assert jobs.get("r1").step == step
        clock[0] += 0.2
    assert [w.get("step") for w in writes if "step" in w] == [1]  # with the total, at the first look
    clock[0] += manager_module.STEP_WRITE_S
    append_event(run_dir, Progress(step=8, total=100))
    assert jobs.get("r1").step == 8 and jobs.store.get("r1").step == 8
    jobs.shutdown()


def test_a_cancelled_run_reads_cancelling_at_once_until_its_worker_ends(tmp_path, monkeypatch):
    """The record says 'cancelling' from the moment the cancel is asked, whatever the worker has
    written so far, and 'cancelled' once the worker has stopped."""
    from studio.jobs.manager import JobManager
    from studio.jobs.store import RunRecord
    from studio.runs.event_types import Status
    from studio.runs.events import append_event

    jobs = JobManager(tmp_path / "ws", supervise=False)
    run_dir = jobs.workspace.runs / "r1"
    run_dir.mkdir(parents=True)
    jobs.store.insert(RunRecord(id="r1", run_dir=str(run_dir), status="running", devices=["cpu0"], created=1.0))
    append_event(run_dir, Status(status="running", total_steps=10))
    alive = [True]
    monkeypatch.setattr(jobs, "_alive", lambda record, summary: alive[0])

    record = jobs.cancel("r1")
    assert record.status == "cancelling" and record.active and record.cancel_requested
    assert (run_dir / "STOP").exists()
    assert jobs.get("r1").status == "cancelling"  # the worker has not seen it yet: its events say running
    assert [r.id for r in jobs.list(status=("starting", "running", "cancelling"))] == ["r1"]
    append_event(run_dir, Status(status="cancelling", step=3))
    assert jobs.cancel("r1").status == "cancelling"  # asked twice: the same
    append_event(run_dir, Status(status="cancelled", step=3))
    alive[0] = False
    record = jobs.get("r1")
    assert record.status == "cancelled" and not record.active and not (run_dir / "STOP").exists()
    jobs.shutdown()
