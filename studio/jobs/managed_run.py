"""A run that the job manager of this process queues, starts and watches, followed from a terminal
(``studio train --executor ray``: the worker is a cluster's job, not a child of this process)."""

from __future__ import annotations

import getpass
import time
from pathlib import Path


class ManagedRun:
    """A run the job manager starts and watches, seen by the CLI's follower as a process: ``poll``
    is None until the run has ended, then 0 when it completed, 1 otherwise (``studio train
    --executor ray``: the worker is a cluster's job, not a child of this process)."""

    pid = None

    def __init__(self, manager, run_id: str):
        self.manager, self.run_id = manager, run_id
        self.returncode: int | None = None

    def poll(self) -> int | None:
        record = self.manager.get(self.run_id)
        if record.active or record.status == "queued":
            return None
        self.returncode = 0 if record.status == "completed" else 1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        import subprocess

        deadline = None if timeout is None else time.time() + timeout
        while self.poll() is None:
            if deadline is not None and time.time() > deadline:
                raise subprocess.TimeoutExpired(f"run {self.run_id}", timeout)
            time.sleep(min(self.manager.poll_s, 0.5))
        return self.returncode  # type: ignore[return-value]


def submit_and_follow(workspace, config, executor: str, follow) -> tuple[Path, int]:
    """Queue a run on ``executor`` through a job manager of this process, and ``follow(run_dir,
    handle)`` it until it ends (the manager schedules and watches it meanwhile)."""
    from studio.errors import StudioError
    from studio.jobs.manager import JobManager
    from studio.runs.state import UNFINISHED

    manager = JobManager(workspace, poll_s=0.5)
    run_id = None
    try:
        run_id = manager.submit(config, owner=getpass.getuser(), executor=executor)
        run_dir = manager.run_dir(run_id)
        print(f"run {run_id} queued on the {executor} executor\n  folder: {run_dir}")
        return run_dir, follow(run_dir, ManagedRun(manager, run_id))
    finally:
        try:
            if run_id and manager.get(run_id).status in UNFINISHED:
                # Left early (Ctrl-C before its worker stopped): the cancel is recorded, so the next
                # manager of this workspace (the server, 'studio queue --work') stops its job.
                manager.cancel(run_id)
        except StudioError:
            pass
        manager.shutdown()
