"""The job manager: a queue of training runs, each in its own worker process.

``JobManager`` is what the web server (and the ``studio runs``/``studio queue`` commands) talk
to. ``submit`` validates and prepares a run (bad data is refused here, with the data layer's
message) and queues it; a supervisor thread starts queued runs first in, first out when their
devices are free, watches each worker through its ``events.jsonl`` and its process, and records
the outcome in the run store. Nothing here trains or imports torch: a crash, an out-of-memory
or a kill of a worker never reaches the server.

Where a worker runs is its executor's business (``studio.jobs.executors``): ``local``, a process of
this machine (the default), or ``ray``, a job of a Ray cluster; the queue, the order, the limits and
the outcome in the run store stay here for both.

Restart safety: a new manager on the same workspace re-attaches to workers that are still
alive (recognised by pid *and* process start time, so a reused pid is not mistaken for one),
marks runs whose worker is gone ``interrupted``, and never starts a run twice: a queued run is
taken by one atomic update of the store, whoever else is scheduling.

Longer than 500 lines: a run's whole lifecycle (submit, schedule, watch, cancel, resume, score)
shares one lock and one supervisor thread; the store, the processes, the devices and the admin's
policy are modules of their own.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from studio.jobs import policy
from studio.jobs.devices import DevicePool
from studio.jobs.executors.base import LOCAL, Ending, Executor, check_name
from studio.jobs.executors.local import LocalExecutor, worker_command  # noqa: F401 - worker_command: the CLI's
from studio.runs.state import ACTIVE, CANCELLING, QUEUED, RESUMABLE, RunState, summarize
from studio.runs import RunDir
from studio.runs.event_types import Error, Status
from studio.runs.events import append_event, events_size, read_events
from studio.jobs.store import (JobError, QueueLimitReached, RunRecord, RunStore,
                               headline_from_metrics, reindex)
from studio.settings import Settings, allowed_model_roots
from studio.training.final_score import SCORE_ONLY_ENV
from studio.workspace import Workspace

log = logging.getLogger("studio.jobs")

STEP_WRITE_S = 2.0
"""How often a running run's step goes into the index at most (it changes many times a second)."""



def disk_usage(path: Path) -> int:
    """Bytes a folder occupies on disk (hard links counted once)."""
    total, seen = 0, set()
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


class JobManager:
    """Queue, schedule, watch, cancel and resume training runs of one workspace.

    ``supervise=False`` gives a manager that reads and changes records (the CLI) but starts
    nothing; at most one supervising manager should serve a workspace, though two can share
    one safely. ``gpus`` overrides detection (a list of ids); ``cpu_slots`` is the number of
    runs that may train on the CPU at once. ``cancel_grace_s`` is how long a cancelled worker
    gets to checkpoint before its process tree is killed.

    The workspace's settings (``studio.settings``, changed by admins while the server runs) are
    read on every submit, resume and launch: ``allowed_model_roots`` (the command line's folders)
    plus the admin's folders are where local models may come from (``None``: any folder, for the
    command line), ``model.trust_remote_code`` needs an admin's permission, and a member may have
    at most ``max_queued_per_user`` runs queued.
    """

    def __init__(self, workspace: Workspace | str | Path, *, cpu_slots: int = 1, gpus: list[str] | None = None,
                 poll_s: float = 1.0, cancel_grace_s: float = 60.0, exit_grace_s: float = 30.0,
                 auto_resume: bool = False, supervise: bool = True,
                 allowed_model_roots: list[Path] | None = None, python: str | None = None):
        self.workspace = workspace if isinstance(workspace, Workspace) else Workspace.at(workspace)
        self.store = RunStore.for_workspace(self.workspace)
        self.devices = DevicePool.detect(cpu_slots, gpus)
        self.poll_s = poll_s
        self.cancel_grace_s = cancel_grace_s
        self.exit_grace_s = exit_grace_s
        self.auto_resume = auto_resume
        self.allowed_model_roots = allowed_model_roots
        self.python = python or sys.executable
        self.polls = 0
        """Supervisor ticks so far (counted when a tick begins)."""
        self._lock = threading.RLock()
        self._local = LocalExecutor(self.devices, self.python,
                                    lambda run_id, **values: self.store.update(run_id, expect=ACTIVE, **values),
                                    self.run_dir)
        self._ray: Any = None
        """The Ray executor, made when a run first uses it (``ray`` is imported then, not before)."""
        self._summaries: dict[str, tuple[int, RunState]] = {}
        self._recent: dict[str, tuple[float, RunRecord]] = {}
        self._step_written: dict[str, float] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

        runs = [p for p in self.workspace.runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if runs and not self.store.list(limit=1):
            reindex(self.workspace, self.store)  # an index lost (or never made) next to existing runs
        self.recovered = self._recover()
        if supervise:
            self._thread = threading.Thread(target=self._supervise, name="studio-supervisor", daemon=True)
            self._thread.start()

    # ---- public API ---------------------------------------------------------------------------
    def settings(self) -> Settings:
        """The workspace's settings as they are now (an admin may change them at any time)."""
        return policy.settings_of(self.workspace.root)

    def model_roots(self, settings: Settings | None = None) -> list[Path] | None:
        """Folders local models may come from: the manager's own and the admin's (None: any)."""
        return allowed_model_roots(self.allowed_model_roots, settings or self.settings())

    def submit(self, config, owner: str | None = None, gpus: int = 1, env: dict[str, str] | None = None,
               sweep: str | None = None, executor: str | None = None) -> str:
        """Validate and prepare a run, queue it, return its id.

        Raises a ``StudioError`` (nothing queued, nothing left on disk) for bad data or
        config, for a request of more GPUs than the machine has, for remote code an admin has
        not allowed, and when the owner already has as many queued runs as one member may
        (``QueueLimitReached``). ``env`` adds environment variables for the worker (operations
        and tests, e.g. ``STUDIO_STEP_DELAY``). ``sweep``: the sweep the run is a trial of.
        ``executor``: where it trains (``local``, ``ray``); by default the workspace's setting. A
        first run on a Ray cluster checks that its nodes see the workspace (``RayExecutor.probe``).
        """
        from studio.credentials import looks_like_token
        from studio.tasks import with_defaults
        from studio.training.prepare import prepare_run

        config = with_defaults(config)  # the task's options checked and complete, its backbone where none is named
        if config.training.device == "cpu":
            gpus = 0
        settings = self.settings()
        executor = check_name(executor or settings.executor)
        self._executor(executor, settings).check(gpus)
        policy.check_remote_code(config.model.trust_remote_code, settings)
        for name, value in (env or {}).items():
            if looks_like_token(value):
                # The run index keeps a run's extra environment; tokens belong in the server's own.
                raise JobError(f"the worker environment variable {name} holds what looks like an access token; "
                               "a run's environment is stored in the run index",
                               hint="set it in the server's environment instead: every worker inherits it")
        limit = policy.queue_limit_for(owner, settings, self.workspace.root)
        if limit:
            queued = len(self.store.list(status=QUEUED, owner=owner))
            if queued >= limit:
                raise QueueLimitReached(owner, queued, limit)  # before the data is prepared: nothing to clean up
        prepared = prepare_run(config, self.workspace, allowed_model_roots=self.model_roots(settings), settings=settings)
        now = time.time()
        run_dir = prepared.run_dir
        RunDir(run_dir).job.write_text(
            json.dumps({"owner": owner, "gpus": gpus, "created": now, **({"sweep": sweep} if sweep else {}),
                        **({"executor": executor} if executor != LOCAL else {})},
                       ensure_ascii=False, indent=2), encoding="utf-8")
        offset = append_event(run_dir, Status(status=QUEUED, owner=owner, gpus=gpus))
        record = RunRecord(
            id=prepared.run_id, run_dir=str(run_dir), status=QUEUED, name=prepared.config.name, owner=owner,
            task=prepared.config.task.name, backbone=prepared.config.model.backbone, gpus=gpus, created=now,
            env=dict(env or {}), events_offset=offset, sweep=sweep, executor=executor,
        )
        try:
            self.store.insert(record, queue_limit=limit)
        except QueueLimitReached:
            shutil.rmtree(run_dir, ignore_errors=True)  # another submit of the same owner won the last place
            raise
        self._wake.set()
        return record.id

    def get(self, run_id: str) -> RunRecord:
        """A run's record, its status checked against the events and the worker process."""
        record = self.store.get(run_id)
        if record is None:
            raise JobError(f"no run '{run_id}' in this workspace", hint="studio runs list shows the runs")
        if record.active:
            with self._lock:
                record = self._refresh(record)
        return record

    def get_recent(self, run_id: str, max_age_s: float) -> RunRecord:
        """A run's record as ``get`` gave it at most ``max_age_s`` ago. Every open page watching a
        run asks for it each tick: one read of the index (and check of the worker) serves them all."""
        now = time.monotonic()
        with self._lock:
            read_at, record = self._recent.get(run_id, (None, None))
        if record is None or now - read_at > max_age_s:
            record = self.get(run_id)
            with self._lock:
                self._recent = {key: value for key, value in self._recent.items() if now - value[0] <= 60.0}
                self._recent[run_id] = (now, record)
        return record

    def status(self, run_id: str) -> str:
        return self.get(run_id).status

    def events(self, run_id: str, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Events of a run after byte ``offset`` and the offset to pass next time."""
        run_dir = self.run_dir(run_id)
        if not run_dir.is_dir():
            raise JobError(f"no run '{run_id}' in this workspace")
        return read_events(run_dir, offset)

    def list(self, status: str | Iterable[str] | None = None, owner: str | None = None, task: str | None = None,
             limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first; active runs are checked against their workers first."""
        for record in self.store.list(status=ACTIVE):
            with self._lock:
                self._refresh(record)
        return self.store.list(status=status, owner=owner, task=task, limit=limit)

    def queue(self) -> list[RunRecord]:
        """Queued runs in the order they will start (``position`` 1, 2, ...)."""
        return self.store.queue()

    def cancel(self, run_id: str, *, wait: bool = False) -> RunRecord:
        """Stop a run: a queued one at once; a running one gracefully (it saves a checkpoint and
        stops at its next step, or stops scoring the trained model), its whole process tree
        killed after ``cancel_grace_s``. A running run reads ``cancelling`` from the moment
        the cancel is asked until its worker has ended."""
        record = self.get(run_id)
        run_dir = self.run_dir(run_id)
        if record.status == QUEUED:
            if self.store.update(run_id, expect=QUEUED, status="cancelled", ended=time.time(), queue_order=None):
                append_event(run_dir, Status(status="cancelled", reason="cancelled while queued"))
                return self.get(run_id)
            record = self.get(run_id)  # it was started meanwhile
        if not record.active:
            raise JobError(f"run {run_id} is {record.status}; only queued or running runs can be cancelled")
        RunDir(run_dir).request_stop()
        if record.cancel_requested is None or record.status != CANCELLING:
            self.store.update(run_id, expect=ACTIVE, status=CANCELLING, cancel_requested=record.cancel_requested or time.time())
        with self._lock:
            self._recent.pop(run_id, None)  # pages watching it see "cancelling" on their next tick
        self._wake.set()
        if wait:
            deadline = time.time() + self.cancel_grace_s + self.exit_grace_s + 30
            while time.time() < deadline:
                record = self.get(run_id)
                if not record.active:
                    break
                time.sleep(min(self.poll_s, 0.25))
        return self.get(run_id)

    def resume(self, run_id: str, env: dict[str, str] | None = None, *, queue_limit: bool = True) -> RunRecord:
        """Queue an interrupted, failed or cancelled run again; its worker continues from the last
        complete checkpoint (one whose save did not finish is skipped), or starts over if none.

        The settings apply as to a new run (remote code, the owner's queue limit); ``queue_limit=False``
        skips the limit (an admin resuming a member's run, the server recovering its own runs)."""
        record = self.get(run_id)
        if record.status not in RESUMABLE:
            raise JobError(f"run {run_id} is {record.status}; only {', '.join(RESUMABLE)} runs can be resumed")
        run_dir = self.run_dir(run_id)
        settings = self.settings()
        executor = self._executor(record.executor, settings)
        if executor.busy(record, run_dir):
            raise JobError(f"a worker for run {run_id} is still running; wait for it to end or cancel it")
        executor.check(record.gpus)
        policy.check_remote_code(policy.run_trusts_remote_code(run_dir), settings, f"run {run_id}")
        limit = policy.queue_limit_for(record.owner, settings, self.workspace.root) if queue_limit else None
        if limit:
            queued = len(self.store.list(status=QUEUED, owner=record.owner))
            if queued >= limit:
                raise QueueLimitReached(record.owner, queued, limit)
        RunDir(run_dir).clear_stop()
        checkpoint = self.checkpoint(run_id)
        offset = append_event(run_dir, Status(status=QUEUED, resume=True,
                                             checkpoint=checkpoint.name if checkpoint else None))
        try:
            queued = self.store.enqueue(run_id, expect=RESUMABLE, queue_limit=limit, resume=True, env=dict(env or {}),
                                        events_offset=offset, cancel_requested=None, ended=None, exit_code=None,
                                        error_kind=None, error_message=None, error_hint=None, pid=None, pid_started=None,
                                        devices=[])
        except QueueLimitReached:
            # Another run of the owner took the last place meanwhile: the events must not say "queued".
            append_event(run_dir, Status(status=record.status, reason="queue limit reached"))
            raise
        if not queued:
            raise JobError(f"run {run_id} changed while it was being resumed; try again")
        self._wake.set()
        return self.store.get(run_id)

    def score(self, run_id: str, split: str = "test") -> RunRecord:
        """Queue a completed run once more to score its finished model on ``split`` only (a
        sweep scores its best trial on the test split this way, the other trials never see it)."""
        record = self.get(run_id)
        if record.status != "completed":
            raise JobError(f"run {run_id} is {record.status}; only a completed run can be scored again")
        offset = append_event(self.run_dir(run_id), Status(status=QUEUED, reason=f"scoring the {split} split"))
        if not self.store.enqueue(run_id, expect=("completed",), resume=False, env={**(record.env or {}), SCORE_ONLY_ENV: split},
                                  events_offset=offset, cancel_requested=None, ended=None, exit_code=None, pid=None,
                                  pid_started=None, devices=[]):
            raise JobError(f"run {run_id} changed while it was being queued; try again")
        self._wake.set()
        return self.store.get(run_id)

    def checkpoint(self, run_id: str) -> Path | None:
        """The checkpoint a resume would continue from (the last complete one), if any."""
        done = RunDir(self.run_dir(run_id)).complete_checkpoints()
        return done[-1] if done else None

    def move(self, run_id: str, direction: str) -> int:
        """Move a queued run ``up``/``down``/``top``/``bottom`` (an admin action; the UI checks
        who may). Returns its new position."""
        self.get(run_id)
        return self.store.move(run_id, direction)

    def delete(self, run_id: str, *, force: bool = False) -> None:
        """Delete a run's files and its record. A starting or running run is refused unless
        ``force``, which kills its worker first."""
        record = self.get(run_id)
        if record.status == QUEUED:
            self.store.update(run_id, expect=QUEUED, status="cancelled", queue_order=None, ended=time.time())
            record = self.get(run_id)
        if record.active:
            if not force:
                raise JobError(f"run {run_id} is {record.status}; cancel it first (or delete with force)")
            with self._lock:
                self._kill(record)
                self._refresh(self.store.get(run_id) or record)
        run_dir = self.run_dir(run_id)
        if run_dir.exists():
            shutil.rmtree(run_dir)
        self.store.delete(run_id)
        self._summaries.pop(run_id, None)

    def disk_usage(self, run_id: str) -> int:
        """Bytes the run's folder uses (checkpoints included)."""
        return disk_usage(self.run_dir(run_id))

    def reindex(self) -> list[RunRecord]:
        """Rebuild the index from the run folders (``studio runs reindex``)."""
        with self._lock:
            self._summaries.clear()
            return reindex(self.workspace, self.store)

    def run_dir(self, run_id: str) -> Path:
        """The folder of a run (always inside the workspace's runs folder)."""
        path = (self.workspace.runs / run_id).resolve()
        if path.parent != self.workspace.runs.resolve() or not run_id or run_id.startswith("."):
            raise JobError(f"'{run_id}' is not a run id")
        return path

    def folder(self, run_id: str) -> RunDir:
        """The run's folder with its paths named (``run_dir``'s checks)."""
        return RunDir(self.run_dir(run_id))

    def poll(self) -> None:
        """One supervisor tick: update running runs from their events and processes, then start
        what fits. The supervisor thread calls it every ``poll_s``; tests and the CLI may too."""
        with self._lock:
            self.polls += 1
            for record in self.store.list(status=ACTIVE):
                self._refresh(record)
            self._local.collect(lambda run_id: bool((current := self.store.get(run_id)) and current.active))
            if not self._stopping.is_set():
                self._schedule()

    def wake(self) -> None:
        self._wake.set()

    def shutdown(self, *, cancel: bool = False, timeout: float = 10.0) -> None:
        """Stop the supervisor. Workers keep running (a new manager re-attaches to them) unless
        ``cancel``, which cancels every active run and waits for them."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if cancel:
            for record in self.store.list(status=ACTIVE):
                try:
                    self.cancel(record.id, wait=True)
                except JobError:
                    pass

    def __enter__(self) -> "JobManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # ---- supervision ------------------------------------------------------------------------
    def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the supervisor must outlive any one bad run
                log.exception("supervisor tick failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _recover(self) -> list[str]:
        """On start: settle runs left active by a previous server. Returns the ids found dead."""
        lost = []
        with self._lock:
            for record in self.store.list(status=ACTIVE):
                after = self._refresh(record)
                if after.status == "interrupted":
                    lost.append(record.id)
                    log.warning("run %s was interrupted (its worker is gone)", record.id)
                elif after.active:
                    log.info("re-attached to run %s (pid %s)", record.id, after.pid)
        if self.auto_resume:
            for run_id in lost:
                try:
                    self.resume(run_id, queue_limit=False)
                except JobError as error:
                    log.warning("could not resume run %s: %s", run_id, error)
        return lost

    def _summary(self, record: RunRecord) -> RunState:
        base, summary = self._summaries.get(record.id, (None, None))
        if summary is None or base != record.events_offset:
            summary = RunState(offset=record.events_offset, attempt_offset=record.events_offset)
        summarize(self.run_dir(record.id), summary)
        self._summaries[record.id] = (record.events_offset, summary)
        return summary

    def _executor(self, name: str | None, settings: Settings | None = None) -> Executor:
        """The executor a run uses (``local`` unless it was submitted to another)."""
        if not name or name == LOCAL:
            return self._local
        check_name(name)
        from studio.jobs.executors.ray_jobs import RayExecutor

        address = (settings or self.settings()).ray_address
        if self._ray is None or self._ray.address != RayExecutor.normal_address(address):
            self._ray = RayExecutor(address, self.workspace.root,
                                    lambda run_id, **values: self.store.update(run_id, expect=ACTIVE, **values))
        return self._ray

    def _alive(self, record: RunRecord, summary: RunState) -> bool:
        from studio.errors import StudioError

        try:
            return self._executor(record.executor).alive(record, summary)
        except StudioError as error:  # its cluster is no longer configured (or Ray no longer installed)
            log.warning("run %s: %s", record.id, error)
            return False

    def _kill(self, record: RunRecord) -> None:
        from studio.errors import StudioError

        summary = self._summaries.get(record.id, (None, None))[1]
        try:
            self._executor(record.executor).kill(record, summary)
        except StudioError as error:
            log.warning("cannot stop the worker of run %s: %s", record.id, error)

    def _ending(self, record: RunRecord, summary: RunState) -> Ending:
        from studio.errors import StudioError

        try:
            return self._executor(record.executor).finish(record, summary)
        except StudioError as error:
            return Ending(message=f"its {record.executor} worker cannot be reached: {error.message}", hint=error.hint)

    def _refresh(self, record: RunRecord) -> RunRecord:
        """Bring an active run's record up to date; finalise it once its worker has ended."""
        if not record.active:
            return record
        summary = self._summary(record)
        alive = self._alive(record, summary)
        now = time.time()
        if alive and record.cancel_requested and now >= record.cancel_requested + self.cancel_grace_s:
            self._kill(record)
            alive = False
        elif alive and summary.finished and now - (summary.status_t or now) > self.exit_grace_s:
            self._kill(record)  # it said it was done but does not exit (a hung thread, a stuck GPU)
            alive = False
        if alive:
            values: dict[str, Any] = {}
            if summary.status == "running" and record.status == "starting":
                values["status"] = "running"
            if summary.total_steps != record.total_steps:
                values["total_steps"] = summary.total_steps
            # Every look at a running run would write its step; once every STEP_WRITE_S is enough
            # for the index (the runs table, other processes), and the record returned is current.
            step_due = now - self._step_written.get(record.id, 0.0) >= STEP_WRITE_S
            if summary.step != record.step and (values or step_due):
                values["step"] = summary.step
            if values and self.store.update(record.id, expect=ACTIVE, **values):
                if "step" in values:
                    self._step_written[record.id] = now
                for name, value in values.items():
                    setattr(record, name, value)
            record.step = summary.step if summary.step is not None else record.step
            return record
        self._step_written.pop(record.id, None)

        summary = self._summary(record)  # the last lines it wrote before exiting
        ending = self._ending(record, summary)
        exit_code = ending.exit_code
        values = dict(step=summary.step, total_steps=summary.total_steps, exit_code=exit_code,
                      error_kind=summary.error_kind, error_message=summary.error_message, error_hint=summary.error_hint,
                      metric_name=summary.metric_name, metric_value=summary.metric_value)
        if summary.finished:
            values.update(status=summary.status, ended=summary.ended or now)
            if summary.status == "completed" and summary.metric_value is None:
                values["metric_name"], values["metric_value"] = headline_from_metrics(self.run_dir(record.id))
        elif record.cancel_requested:
            values.update(status="cancelled", ended=now)
        elif ending.status:  # the executor knows what happened (a Ray job whose worker could not start)
            values.update(status=ending.status, ended=now, error_kind=ending.status, error_message=ending.message,
                          error_hint=ending.hint)
        else:
            why = f"exit code {exit_code}" if exit_code is not None else "its process is gone"
            values.update(status="interrupted", ended=now,
                          error_message=f"the worker ended without a final status ({why}); resume continues "
                                        "from the last complete checkpoint" + (f"\n{ending.message}" if ending.message else ""))
            if ending.hint:
                values["error_hint"] = ending.hint
            elif exit_code == -9:
                values["error_hint"] = ("it was killed (SIGKILL), by a person or by the system when memory ran out; "
                                        "if it was memory, lower training.batch_size or training.max_length before resuming")
        if self.store.update(record.id, expect=ACTIVE, **values):
            run_dir = self.run_dir(record.id)
            if not summary.finished:
                reason = "killed after the cancel grace period" if values["status"] == "cancelled" else "worker gone"
                append_event(run_dir, Status(status=values["status"], step=summary.step, exit_code=exit_code, reason=reason))
            RunDir(run_dir).clear_stop()
            log.info("run %s: %s", record.id, values["status"])
        self._summaries.pop(record.id, None)
        return self.store.get(record.id) or record

    # ---- scheduling ---------------------------------------------------------------------------
    def _schedule(self) -> None:
        from studio.errors import StudioError

        for record in self.store.queue():  # what no longer fits this machine (or cluster) at all
            try:
                self._executor(record.executor).check(record.gpus)
            except StudioError as error:
                if self.store.update(record.id, expect=QUEUED, status="failed", queue_order=None, ended=time.time(),
                                     error_kind=error.kind, error_message=error.message, error_hint=error.hint):
                    append_event(self.run_dir(record.id), Error(error_kind=error.kind, message=error.message, hint=error.hint))
                    append_event(self.run_dir(record.id), Status(status="failed", error_kind=error.kind))
        while not self._stopping.is_set():
            queue = self.store.queue()
            if not queue:
                return
            head = queue[0]
            if head.executor == LOCAL:
                record = self.store.claim(self._choose)
            else:
                # A cluster is asked for room outside the store's write transaction (it is a network
                # call); the claim then takes the head only if it is still the same run.
                try:
                    placed = self._executor(head.executor).place(head, set())
                except StudioError as error:
                    log.warning("cannot place run %s: %s", head.id, error)
                    return
                if placed is None:
                    return
                record = self.store.claim(lambda h, busy: self._choose(h, busy, placed) if h.id == head.id else None)
            if record is None:
                return
            self._launch(record)

    def _choose(self, head: RunRecord, busy: set[str], placed: dict[str, Any] | None = None) -> dict[str, Any] | None:
        placed = placed if placed is not None else self._local.place(head, busy)
        if placed is None:
            return None
        return {"devices": [], **placed, **dict(
            started=time.time(), ended=None, pid=None, pid_started=None, exit_code=None, cancel_requested=None, step=None,
            total_steps=None, attempts=head.attempts + 1, job_id=None, node=None, events_offset=events_size(self.run_dir(head.id)))}

    def _refuse_launch(self, record: RunRecord, run_dir: Path) -> bool:
        """A run queued while remote code was allowed does not start once an admin has disallowed it."""
        from studio.settings import SettingsError

        try:
            policy.check_remote_code(policy.run_trusts_remote_code(run_dir), self.settings(), f"run {record.id}")
            return False
        except (policy.RemoteCodeRefused, SettingsError) as error:
            self.store.update(record.id, expect=ACTIVE, status="failed", ended=time.time(), error_kind=error.kind,
                              error_message=error.message, error_hint=error.hint)
            append_event(run_dir, Error(error_kind=error.kind, message=error.message, hint=error.hint))
            append_event(run_dir, Status(status="failed", error_kind=error.kind))
            return True

    def _launch(self, record: RunRecord) -> None:
        from studio.errors import StudioError

        run_dir = self.run_dir(record.id)
        if self._refuse_launch(record, run_dir):
            return
        try:
            values = self._executor(record.executor).launch(record, run_dir)
        except (OSError, StudioError) as error:
            message = f"could not start the worker: {error}"
            self.store.update(record.id, expect=ACTIVE, status="failed", ended=time.time(), error_kind="internal",
                              error_message=message)
            try:
                append_event(run_dir, Error(error_kind="internal", message=message))
                append_event(run_dir, Status(status="failed", error_kind="internal"))
            except OSError:
                pass  # the run folder itself is gone; the record says what happened
            return
        self.store.update(record.id, **values)
