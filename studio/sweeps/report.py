"""What a sweep shows: its leaderboard (trial, settings, validation score, time, status), its best
trial with the test score it alone was given, and Optuna's figures (for the browser)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from optuna.trial import TrialState

from studio.jobs.manager import JobManager
from studio.errors import StudioError
from studio.jobs.store import read_json_dict
from studio.runs import RunDir
from studio.sweeps import study as studies

_STATES = {TrialState.COMPLETE: "completed", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
           TrialState.RUNNING: "running", TrialState.WAITING: "queued"}


@dataclass
class Row:
    trial: int
    run_id: str | None
    settings: dict[str, Any]
    value: float | None
    """The trial's validation score (its last reported one, for a pruned trial)."""
    seconds: float | None
    status: str
    """The run's status (queued, running, completed, pruned, failed, cancelled...)."""


@dataclass
class SweepReport:
    spec: studies.SweepSpec
    status: str
    rows: list[Row] = field(default_factory=list)
    best: Row | None = None
    test: dict[str, Any] | None = None
    """The best trial's test scores: the only trial scored on the test split."""
    estimate: dict[str, Any] | None = None
    """``studio.sweeps.plan.SweepEstimate`` as told when the sweep was created."""
    elapsed_s: float | None = None
    """From its creation to its end (or to now while it runs)."""

    @property
    def finished(self) -> int:
        return sum(1 for r in self.rows if r.status not in ("queued", "starting", "running", "cancelling"))


@contextlib.contextmanager
def _still_there(sweep_id: str) -> Iterator[None]:
    """Optuna's "Record does not exist" (the sweep deleted while it was read) as the message of a
    sweep that is not there."""
    try:
        yield
    except KeyError:
        raise StudioError(f"no sweep '{sweep_id}' in this workspace", hint="studio sweep list shows the sweeps") from None


def report(manager: JobManager, sweep_id: str) -> SweepReport:
    with _still_there(sweep_id):
        return _report(manager, sweep_id)


def _report(manager: JobManager, sweep_id: str) -> SweepReport:
    study = studies.load(manager.workspace, sweep_id)
    spec = studies.spec_of(study)
    rows = []
    for ft in study.get_trials(deepcopy=False):
        run_id = ft.user_attrs.get("run_id")
        record = manager.store.get(run_id) if run_id else None
        value = ft.value if ft.state == TrialState.COMPLETE else (
            ft.intermediate_values[max(ft.intermediate_values)] if ft.intermediate_values else None)
        seconds = None
        if record is not None and record.started:
            seconds = (record.ended or time.time()) - record.started
        status = _STATES.get(ft.state, ft.state.name.lower())
        if record is not None and ft.state in (TrialState.RUNNING, TrialState.FAIL, TrialState.PRUNED):
            status = record.status  # queued/running, cancelled by someone, pruned once it stopped
        rows.append(Row(ft.number, run_id, dict(ft.params), value, seconds, status))
    rows.sort(key=lambda r: (r.value is None, -(r.value or 0) if spec.greater else (r.value or 0), r.trial))
    ended = study.user_attrs.get("ended")
    out = SweepReport(spec, studies.status_of(study), rows, estimate=study.user_attrs.get("estimate"),
                      elapsed_s=((ended or time.time()) - spec.created) if spec.created else None)
    best_run = study.user_attrs.get("best_run")
    completed = [r for r in rows if r.status == "completed" and r.value is not None and r.value == r.value]
    out.best = next((r for r in rows if r.run_id == best_run), None) or (completed[0] if completed else None)
    if out.best is not None and out.best.run_id:
        out.test = read_json_dict(RunDir(manager.run_dir(out.best.run_id)).metrics).get("test")
    return out


def figures(manager: JobManager, sweep_id: str) -> dict[str, Any]:
    """Optuna's plotly figures of the sweep: optimisation history, parallel coordinates, parameter
    importances (None where there is not enough to draw yet: importances need two completed trials)."""
    from optuna import visualization

    with _still_there(sweep_id):
        study = studies.load(manager.workspace, sweep_id)
        spec = studies.spec_of(study)
        done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    out: dict[str, Any] = {}
    for name, draw, needed in (("history", visualization.plot_optimization_history, 1),
                               ("parallel", visualization.plot_parallel_coordinate, 1),
                               ("importances", visualization.plot_param_importances, 2)):
        try:
            out[name] = draw(study, target_name=spec.metric) if len(done) >= needed else None
        except (ValueError, RuntimeError, ZeroDivisionError):
            out[name] = None  # e.g. importances of settings that never varied
    return out


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def value_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def settings_text(settings: dict[str, Any]) -> str:
    def short(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return ", ".join(f"{key.rsplit('.', 1)[-1]}={short(value)}" for key, value in settings.items())
