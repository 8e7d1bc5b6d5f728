"""The sweep driver: asks Optuna for trials, trains each as a normal run of the job manager,
reports the runs' validation scores back, prunes hopeless trials, and scores the best one on
the test split at the end.

Everything it knows is in the study (``studio.sweeps.study``) and the run index, so a driver
may die at any point and a new one (``studio sweep resume``, or a restarted server) continues
where it was: a trial asked but not yet submitted is submitted with the settings it was given
(or adopted, when its run was queued just before the driver died), and no trial is run twice.
One driver holds a sweep at a time (its ``lease``); a lease whose driver is gone is taken over.

Each ``tick``:
  1. follow every open trial: report new validation scores (one step per evaluation), prune
     (cancel the run; the run is marked ``pruned`` once its worker has stopped), record the final
     validation score of a completed run, fail a failed or cancelled one, resume an interrupted one;
  2. start trials while the budget (number of trials, wall time) and ``parallel`` allow;
  3. when every trial is over: queue the best trial's run to be scored on the test split (the
     trials themselves never see it: ``training.score_test: false``), then the sweep is completed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict
from typing import Callable

import optuna
from optuna.trial import TrialState

from studio.config import RunConfig
from studio.errors import ConfigError, StudioError
from studio.jobs.manager import JobManager
from studio.jobs.store import JobError, QueueLimitReached, read_json_dict
from studio.runs import RunDir
from studio.runs.event_types import Status
from studio.runs.events import append_event
from studio.runs.state import ACTIVE, PRUNED, QUEUED, RunState, summarize
from studio.sweeps import study as studies
from studio.sweeps.plan import estimate_for
from studio.sweeps.space import Param, Space, check_space, default_space, parse_space, space_to_dict, suggest, with_values

log = logging.getLogger("studio.sweeps")

LEASE_S = 30.0
"""A driver that has not ticked for this long has let go of its sweep."""


# ---- creating a sweep ---------------------------------------------------------------------------
def objective(manager: JobManager, config: RunConfig) -> tuple[str, bool, int | None]:
    """The validation metric the sweep optimises (the run's selection metric: the task's default
    or ``training.metric``), whether greater is better, and the backbone's size (for the preset).
    Reads the data once: a sweep without a validation split has nothing to compare, and is refused."""
    from studio.data.loading import load_task_data
    from studio.data.readers import read_limits
    from studio.models.resolve import resolve_backbone
    from studio.tasks.base import get_task
    from studio.training.worker import selection_metric

    task = get_task(config.task.name)
    backbone = resolve_backbone(config.model.backbone, kind=task.model_kind, allowed_roots=manager.model_roots())
    data = load_task_data(config, task, manager.workspace.datasets, limits=read_limits(manager.settings()))
    validation = data.splits.get("validation")
    if validation is None or not len(validation):
        raise ConfigError("a sweep compares its trials on the validation split, and this data has none",
                          hint="set data.split.validation (e.g. 0.1) or data.validation")
    metric, greater = selection_metric(config, task, data.meta)
    return metric, greater, backbone.parameters


def base_space(manager: JobManager, config: RunConfig) -> Space:
    """The default space for this config (what the Train tab and ``studio sweep space`` show)."""
    from studio.tasks import with_defaults

    config = with_defaults(config)
    _, _, parameters = objective(manager, config)
    return default_space(config, parameters)


def create_sweep(manager: JobManager, config: RunConfig, *, trials: int, space: Space | dict | None = None,
                 parallel: int = 1, timeout_s: float | None = None, pruner: str = "median", seed: int = 0,
                 owner: str | None = None, gpus: int = 1, env: dict[str, str] | None = None) -> str:
    """Check the config and the space, record the sweep (nothing is queued yet: the driver's
    first tick does that) and return its id."""
    from studio.tasks import with_defaults

    if trials < 1:
        raise ConfigError(f"a sweep needs at least one trial, not {trials}")
    if parallel < 1:
        raise ConfigError(f"parallel must be at least 1, not {parallel}")
    if pruner not in studies.PRUNERS:
        raise ConfigError(f"unknown pruner '{pruner}'; choose one of: {', '.join(studies.PRUNERS)}")
    config = with_defaults(config)
    metric, greater, parameters = objective(manager, config)
    if space and not all(isinstance(v, Param) for v in space.values()):
        space = parse_space(space)  # plain data, as loaded from space.yaml
    space = space or default_space(config, parameters)
    check_space(config, space)
    spec = studies.SweepSpec(id=studies.new_sweep_id(), config=config.to_dict(), space=space_to_dict(space), trials=int(trials),
                             metric=metric, greater=greater, parallel=int(parallel), timeout_s=timeout_s, pruner=pruner,
                             seed=int(seed), owner=owner, gpus=gpus, env=dict(env or {}), created=time.time())
    study = studies.create(manager.workspace, spec)
    # What it was expected to take, kept so that its report can set the time it took beside it.
    try:
        est = estimate_for(manager, config, spec.space, spec.trials, spec.parallel, spec.pruner)
    except (StudioError, OSError) as error:
        est = None
        log.info("sweep %s: no estimate: %s", spec.id, error)
    if est is not None:
        study.set_user_attr("estimate", asdict(est))
    return spec.id


def cancel_sweep(manager: JobManager, sweep_id: str, *, stop_running: bool = False) -> int:
    """Start no more trials and cancel the queued ones; the running trials finish and are recorded,
    or with ``stop_running`` are cancelled too (each saves a checkpoint, and counts as failed).
    Returns the number of runs cancelled."""
    study = studies.load(manager.workspace, sweep_id)
    study.set_user_attr("status", studies.CANCELLED)
    cancelled = 0
    for ft in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        run_id = ft.user_attrs.get("run_id")
        record = manager.store.get(run_id) if run_id else None
        if record is not None and (record.status == QUEUED or (stop_running and record.active)):
            try:
                manager.cancel(run_id)
                cancelled += 1
            except JobError:
                pass  # it started (or ended) meanwhile: it finishes as a running trial does
    return cancelled


def reopen_sweep(manager: JobManager, sweep_id: str) -> None:
    """A cancelled sweep goes on (``studio sweep resume``): new trials until its budget is used."""
    study = studies.load(manager.workspace, sweep_id)
    if studies.status_of(study) == studies.CANCELLED:
        study.set_user_attr("status", studies.RUNNING)
        study.set_user_attr("ended", None)


# ---- driving it ---------------------------------------------------------------------------------
class SweepDriver:
    """Drives one sweep through the job manager; ``tick`` is one pass, ``drive`` ticks until done."""

    def __init__(self, manager: JobManager, sweep_id: str):
        self.manager = manager
        self.workspace = manager.workspace
        self.sweep_id = sweep_id
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._states: dict[str, RunState] = {}
        self._lease_t = 0.0

    # ---- the loop -----------------------------------------------------------------------------
    def drive(self, stop: threading.Event | None = None, poll_s: float = 1.0,
              on_tick: Callable[[str], None] | None = None) -> str:
        """Tick until the sweep is over (or ``stop`` is set); returns its status."""
        stop = stop or threading.Event()
        while True:
            status, done = self.tick()
            if on_tick:
                on_tick(status)
            if done or stop.wait(poll_s):
                return status

    def tick(self) -> tuple[str, bool]:
        """One pass; returns the sweep's status and whether the driver's work on it is done."""
        study = studies.load(self.workspace, self.sweep_id)
        spec = studies.spec_of(study)
        status = studies.status_of(study)
        if study.user_attrs.get("ended"):
            return status, True
        if not self._hold(study):
            return status, False
        for ft in study.get_trials(deepcopy=False):
            if ft.state == TrialState.RUNNING:
                self._follow(study, spec, ft, status)
            elif ft.state == TrialState.PRUNED:
                self._mark_pruned(ft)
        # Trials enqueued with fixed settings (Optuna's enqueue_trial) wait for the next ask.
        trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
        running = [t for t in trials if t.state == TrialState.RUNNING]
        if status == studies.RUNNING:
            late = spec.deadline is not None and time.time() >= spec.deadline
            while not late and len(trials) < spec.trials and len(running) < spec.parallel:
                started = self._start(spec, len(trials))
                trials.append(started)
                if started.state == TrialState.RUNNING:
                    running.append(started)
            if not running and (len(trials) >= spec.trials or late):
                status = self._score_best(study)
        elif status == studies.SCORING:
            status = self._scored(study)
        done = status not in studies.OPEN and not any(t.state == TrialState.RUNNING for t in
                                                      study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if done:
            study.set_user_attr("ended", time.time())
            study.set_user_attr("lease", None)
        return status, done

    def _hold(self, study: optuna.Study) -> bool:
        """Take or keep the sweep's lease; False while another live driver holds it."""
        lease = study.user_attrs.get("lease") or {}
        now = time.time()
        if lease.get("token") == self.token:
            if now - self._lease_t > LEASE_S / 3:
                self._lease_t = now
                study.set_user_attr("lease", {"token": self.token, "t": now})
            return True
        holder = str(lease.get("token") or "")
        host, _, rest = holder.partition(":")
        pid = rest.partition(":")[0]
        gone = not lease or now - float(lease.get("t") or 0) > LEASE_S or (
            host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)))
        if not gone:
            return False
        self._lease_t = now
        study.set_user_attr("lease", {"token": self.token, "t": now})
        return True

    # ---- trials -------------------------------------------------------------------------------
    def _trial(self, study: optuna.Study, number: int) -> optuna.trial.Trial:
        storage = studies.storage(self.workspace)
        trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(self.sweep_id), number)
        return optuna.trial.Trial(study, trial_id)

    def _run_name(self, spec: studies.SweepSpec, number: int) -> str:
        return f"{spec.config.get('name') or 'sweep'}-trial-{number}"

    def _start(self, spec: studies.SweepSpec, asked: int) -> optuna.trial.FrozenTrial:
        # Seeded by the trials asked so far: a restarted driver asks what the first one would have.
        study = studies.load(self.workspace, self.sweep_id, seed=spec.seed + asked)
        trial = study.ask()
        values = suggest(trial, parse_space(spec.space))
        log.info("sweep %s: trial %s with %s", self.sweep_id, trial.number, values)
        self._submit(study, spec, trial.number)
        return study.get_trials(deepcopy=False)[trial.number]

    def _submit(self, study: optuna.Study, spec: studies.SweepSpec, number: int) -> str | None:
        """Queue the trial's run (its settings are the trial's params); None if it must wait."""
        trial = self._trial(study, number)
        values = suggest(trial, parse_space(spec.space))  # the values it was given, asked again
        config = with_values(RunConfig.from_dict(spec.config), values)
        config.name = self._run_name(spec, number)
        config.training.score_test = False  # trials are compared on validation; only the best sees test
        try:
            run_id = self.manager.submit(config, owner=spec.owner, gpus=spec.gpus, env=spec.env or None, sweep=self.sweep_id)
        except QueueLimitReached:
            return None  # the owner's queue is full: asked again on a later tick
        except StudioError as error:
            trial.set_user_attr("error", error.message)
            study.tell(number, state=TrialState.FAIL)
            return None
        trial.set_user_attr("run_id", run_id)
        return run_id

    def _adopt_or_submit(self, study: optuna.Study, spec: studies.SweepSpec, ft: optuna.trial.FrozenTrial) -> str | None:
        """A trial without a run: its run was queued just before a driver died (adopt it), or never."""
        name = self._run_name(spec, ft.number)
        found = [r for r in self.manager.store.list() if r.sweep == self.sweep_id and r.name == name]
        if found:
            self._trial(study, ft.number).set_user_attr("run_id", found[0].id)
            return found[0].id
        return self._submit(study, spec, ft.number)

    def _points(self, run_id: str, metric: str) -> list[float]:
        """The run's validation scores while training, one per evaluation (a step evaluated again
        after a resume counts once, with its last value)."""
        state = self._states.setdefault(run_id, RunState())
        summarize(self.manager.run_dir(run_id), state)
        series = state.eval_loss if metric == "loss" else state.eval_metrics.get(metric, [])
        return [value for _, value in sorted(dict(series).items())]

    def _follow(self, study: optuna.Study, spec: studies.SweepSpec, ft: optuna.trial.FrozenTrial, status: str) -> None:
        run_id = ft.user_attrs.get("run_id")
        if not run_id:
            if status != studies.RUNNING:
                study.tell(ft.number, state=TrialState.FAIL)  # asked, never queued, and the sweep was cancelled
                return
            run_id = self._adopt_or_submit(study, spec, ft)
            if not run_id:
                return
        try:
            record = self.manager.get(run_id)
        except JobError:
            study.tell(ft.number, state=TrialState.FAIL)  # its run was deleted
            return
        points = self._points(run_id, spec.metric)
        trial = None
        for step, value in enumerate(points, start=1):
            if step not in ft.intermediate_values:
                trial = trial or self._trial(study, ft.number)
                trial.report(value, step)
        if record.status in ACTIVE or record.status == QUEUED:
            if trial is not None and trial.should_prune():
                log.info("sweep %s: pruning trial %s (run %s)", self.sweep_id, ft.number, run_id)
                try:
                    self.manager.cancel(run_id)
                except JobError:
                    pass  # it ended meanwhile: pruned all the same
                study.tell(ft.number, state=TrialState.PRUNED)
            return
        if record.status == "completed":
            value = read_json_dict(RunDir(record.run_dir).metrics).get("validation", {}).get(spec.metric)
            value = value if isinstance(value, (int, float)) else (points[-1] if points else None)
            study.tell(ft.number, value) if value is not None else study.tell(ft.number, state=TrialState.FAIL)
        elif record.status == PRUNED:
            study.tell(ft.number, state=TrialState.PRUNED)
        elif record.status == "interrupted":
            try:
                self.manager.resume(run_id, queue_limit=False)  # a server restart: continue from its checkpoint
            except StudioError as error:
                log.warning("sweep %s: could not resume run %s: %s", self.sweep_id, run_id, error)
                study.tell(ft.number, state=TrialState.FAIL)
        else:  # failed, or cancelled by someone
            self._trial(study, ft.number).set_user_attr("error", record.error_message or record.status)
            study.tell(ft.number, state=TrialState.FAIL)

    def _mark_pruned(self, ft: optuna.trial.FrozenTrial) -> None:
        """Once a pruned trial's worker has stopped, its run reads ``pruned``, not ``cancelled``."""
        run_id = ft.user_attrs.get("run_id")
        record = self.manager.store.get(run_id) if run_id else None
        if record is None or record.status != "cancelled":
            return
        if self.manager.store.update(run_id, expect="cancelled", status=PRUNED):
            best = f"{ft.intermediate_values[max(ft.intermediate_values)]:.4f}" if ft.intermediate_values else "-"
            append_event(self.manager.run_dir(run_id), Status(
                status=PRUNED, reason=f"stopped by sweep {self.sweep_id}: validation score {best} at evaluation "
                                      f"{max(ft.intermediate_values, default=0)} could not beat the other trials"))

    # ---- the end: the best trial on the test split -------------------------------------------------
    def _score_best(self, study: optuna.Study) -> str:
        try:
            best = study.best_trial
        except ValueError:  # no trial completed
            study.set_user_attr("status", studies.COMPLETED)
            return studies.COMPLETED
        run_id = best.user_attrs["run_id"]
        study.set_user_attr("best_run", run_id)
        if not (RunDir(self.manager.run_dir(run_id)).data / "test.jsonl").exists():
            study.set_user_attr("status", studies.COMPLETED)  # no test split: the validation score is the result
            return studies.COMPLETED
        try:
            self.manager.score(run_id, "test")
        except StudioError as error:
            log.warning("sweep %s: could not score the best trial on the test split: %s", self.sweep_id, error)
            study.set_user_attr("status", studies.COMPLETED)
            return studies.COMPLETED
        study.set_user_attr("status", studies.SCORING)
        return studies.SCORING

    def _scored(self, study: optuna.Study) -> str:
        run_id = study.user_attrs.get("best_run")
        record = self.manager.store.get(run_id) if run_id else None
        if record is not None and (record.active or record.status == QUEUED):
            return studies.SCORING
        study.set_user_attr("status", studies.COMPLETED)
        return studies.COMPLETED


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class SweepRunner:
    """Drives every open sweep of a workspace from a background thread (the web server's): a
    sweep started in the browser goes on while nobody watches, and after a restart."""

    def __init__(self, manager: JobManager, poll_s: float = 2.0):
        self.manager = manager
        self.poll_s = poll_s
        self._drivers: dict[str, SweepDriver] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="studio-sweeps", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                for sweep_id in studies.open_sweeps(self.manager.workspace):
                    driver = self._drivers.setdefault(sweep_id, SweepDriver(self.manager, sweep_id))
                    _, done = driver.tick()
                    if done:
                        self._drivers.pop(sweep_id, None)
            except Exception:  # noqa: BLE001 - the thread must outlive any one bad sweep
                log.exception("sweep tick failed")
            self._stop.wait(self.poll_s)

    def shutdown(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

