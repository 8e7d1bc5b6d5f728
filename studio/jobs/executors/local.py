"""The local executor: each run's worker is a process of this machine (what the studio always did).

Devices are the machine's GPUs and CPU slots (``DevicePool``); a worker is a child process in its
own session, recognised after a restart by its pid and start time, and killed with its whole tree.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from studio.jobs import process
from studio.allocator import allocator_env
from studio.jobs.devices import DevicePool, cuda_visible_devices, gpu_count
from studio.jobs.executors.base import LOCAL, Ending
from studio.jobs.store import SPAWN_GRACE_S

log = logging.getLogger("studio.jobs")


def worker_command(run_dir: Path, gpus: int = 1, resume: bool = False, python: str | None = None) -> list[str]:
    """The command line of a run's worker: ``python -m studio.worker``, or under ``torchrun``
    (one process per GPU, data-parallel) when the run holds more than one GPU."""
    python = python or sys.executable
    tail = ["-m", "studio.worker", str(run_dir)] + (["--resume"] if resume else [])
    if gpus > 1:
        # --standalone: a free rendezvous port per run, so two multi-GPU runs never collide.
        return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}"] + tail
    return [python] + tail


class LocalExecutor:
    name = LOCAL

    def __init__(self, devices: DevicePool, python: str, record_pid: Callable[..., Any], run_dir: Callable[[str], Path]):
        self.devices = devices
        self.python = python
        self._record_pid = record_pid  # store.update(run_id, expect=ACTIVE, pid=..., pid_started=...)
        self._run_dir = run_dir  # a run's folder in the workspace, by id
        self._procs: dict[str, subprocess.Popen] = {}
        self._killed: set[str] = set()

    def check(self, gpus: int) -> None:
        self.devices.check(gpus)

    def place(self, record, busy: set[str]) -> dict[str, Any] | None:
        devices = self.devices.allocate(record.gpus, busy)
        return None if devices is None else {"devices": devices}

    def env(self, record) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false",
                   CUDA_VISIBLE_DEVICES=cuda_visible_devices(record.devices))
        if not gpu_count(record.devices) and self.devices.cpu_slots > 1 and "OMP_NUM_THREADS" not in os.environ:
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.devices.cpu_slots))
        env.update({str(k): str(v) for k, v in (record.env or {}).items()})
        if not gpu_count(record.devices):
            env = allocator_env(env)  # jemalloc keeps a CPU run's memory down (studio.allocator)
        return env

    def launch(self, record, run_dir: Path) -> dict[str, Any]:
        cmd = worker_command(run_dir, gpu_count(record.devices), record.resume, self.python)
        proc = process.spawn(cmd, run_dir, self.env(record))
        self._procs[record.id] = proc
        log.info("run %s started on %s (pid %s)", record.id, ",".join(record.devices), proc.pid)
        return {"pid": proc.pid, "pid_started": process.start_time(proc.pid)}

    def alive(self, record, summary) -> bool:
        proc = self._procs.get(record.id)
        if proc is not None:
            return proc.poll() is None
        if record.pid:
            return process.is_alive(record.pid, record.pid_started, record.id)
        # Claimed by a scheduler that has not recorded the pid (yet, or it died right then).
        pid = summary.worker_pid if process.is_alive(summary.worker_pid, None, record.id) else None
        pid = pid or process.find_worker(self._run_dir(record.id))
        if pid:
            self._record_pid(record.id, pid=pid, pid_started=process.start_time(pid))
            record.pid, record.pid_started = pid, process.start_time(pid)
            return True
        return time.time() - (record.started or 0) < SPAWN_GRACE_S

    def kill(self, record, summary) -> None:
        pid = record.pid or (summary.worker_pid if summary else None)
        log.warning("killing the worker of run %s (pid %s) and its children", record.id, pid)
        self._killed.add(record.id)
        process.kill_tree(pid, record.pid_started, record.id)
        proc = self._procs.get(record.id)
        if proc is not None:
            try:
                proc.kill()
                proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass

    def finish(self, record, summary) -> Ending:
        killed = record.id in self._killed
        self._killed.discard(record.id)
        exit_code = self._reap(record.id)
        if killed:
            exit_code = -9
        # What its session left behind (a data loader or torchrun child whose parent died) holds
        # memory and maybe a GPU: end it too.
        process.kill_tree(record.pid or summary.worker_pid, record.pid_started, record.id)
        return Ending(exit_code=exit_code, killed=killed)

    def busy(self, record, run_dir: Path) -> bool:
        return process.find_worker(run_dir) is not None

    def collect(self, is_active) -> None:
        for run_id, proc in list(self._procs.items()):  # workers finalised by another process
            if proc.poll() is not None and not is_active(run_id):
                self._procs.pop(run_id, None)

    def _reap(self, run_id: str) -> int | None:
        proc = self._procs.pop(run_id, None)
        if proc is None:
            return None
        try:
            return proc.wait(5)
        except subprocess.TimeoutExpired:
            return None
