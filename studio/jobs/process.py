"""Worker processes: start one, tell whether it is still the same process, end its whole tree.

A pid alone is not an identity: after a restart the number may belong to another program. A
worker is recognised by its pid *and* its start time (``psutil`` create_time), and, when the
start time is unknown, by its command line naming the run directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psutil

from studio.runs import RunDir

# Start times read twice for the same process agree to the microsecond; a pid reused by another
# process cannot start within this window of the original (the original must have ended first).
SAME_START_TOLERANCE_S = 0.5


def spawn(cmd: list[str], run_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a worker in its own session (so signals to the server do not reach it and the
    whole tree can be found by session id), writing stdout and stderr to ``worker.log``."""
    with open(RunDir(run_dir).log, "ab") as log:
        return subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True, close_fds=True,
        )


def start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _identify(pid: int | None, started: float | None, marker: str | None) -> psutil.Process | None:
    """The live process with this pid if it is the one we mean, else None."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None  # exited; only waiting for its parent to collect the exit code
        if started is not None and abs(proc.create_time() - started) > SAME_START_TOLERANCE_S:
            return None
        if marker is not None:
            try:
                if not any(marker in part for part in proc.cmdline()):
                    return None
            except psutil.AccessDenied:
                if started is None:
                    return None
        return proc
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None


def is_alive(pid: int | None, started: float | None = None, marker: str | None = None) -> bool:
    """Whether ``pid`` is still the (unfinished) process that started at ``started``
    and whose command line mentions ``marker`` (each check only when given)."""
    return _identify(pid, started, marker) is not None


def find_worker(run_dir: str | Path) -> int | None:
    """Pid of a live worker (plain or under torchrun) training ``run_dir``, by command line."""
    target = str(Path(run_dir).resolve())
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if proc.info["status"] == psutil.STATUS_ZOMBIE or "studio.worker" not in cmdline:
                continue
            if any(part.rstrip("/") == target for part in cmdline):
                return proc.pid
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def worker_gpus(pid: int) -> list[str]:
    """The GPUs a running worker was given (its ``CUDA_VISIBLE_DEVICES``)."""
    try:
        value = psutil.Process(pid).environ().get("CUDA_VISIBLE_DEVICES", "")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
    return [d.strip() for d in value.split(",") if d.strip()]


def _session(sid: int) -> list[psutil.Process]:
    members = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid:
                members.append(psutil.Process(pid))
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            continue
    return members


def kill_tree(pid: int | None, started: float | None = None, marker: str | None = None, timeout: float = 10.0) -> list[int]:
    """SIGKILL the worker and every process it started; returns the pids that were signalled.

    Descendants are found twice: as children of the worker, and as members of its session (a
    worker is a session leader), which also finds grandchildren orphaned by a dead parent. When
    the pid now names some other process, nothing is touched: Linux does not hand out a pid that
    is still the id of a live session, so no orphan of the old worker can remain in that case.
    """
    if not pid:
        return []
    root = _identify(pid, started, marker)
    if root is None and psutil.pid_exists(pid):
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return []  # the pid belongs to another program now
        except psutil.NoSuchProcess:
            pass
    targets: dict[int, psutil.Process] = {}
    if root is not None:
        targets[root.pid] = root
        try:
            targets.update({p.pid: p for p in root.children(recursive=True)})
        except psutil.NoSuchProcess:
            pass
    targets.update({p.pid: p for p in _session(pid) if p.pid != os.getpid()})
    for proc in targets.values():
        try:
            proc.send_signal(signal.SIGKILL)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    psutil.wait_procs(list(targets.values()), timeout=timeout)
    return sorted(targets)
