"""Where a sweep lives: an Optuna study in ``<workspace>/sweeps.db`` (Optuna's RDB storage on a
SQLite file), so a sweep outlives the process that drives it and any server restart.

The study's name is the sweep's id. What the sweep was asked for (``SweepSpec``: base config,
space, budget, metric, pruner, seed) is the study's ``spec`` attribute; its progress
(``status``) and the driver holding it (``lease``) are attributes of their own. Each trial keeps
the id of the run that trains it (``run_id``).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna

from studio.workspace import Workspace

SWEEPS_DB = "sweeps.db"
RUNNING, SCORING, COMPLETED, CANCELLED = "running", "scoring", "completed", "cancelled"
"""A sweep's statuses: trials being run, the best one being scored on the test split, done, stopped."""
OPEN = (RUNNING, SCORING)
PRUNERS = ("median", "halving", "none")

optuna.logging.set_verbosity(optuna.logging.WARNING)  # the studio reports trials itself

_storages: dict[str, optuna.storages.RDBStorage] = {}
_lock = threading.Lock()


def storage(workspace: Workspace) -> optuna.storages.RDBStorage:
    """The workspace's sweep storage (one engine per file and process)."""
    path = str((workspace.root / SWEEPS_DB).resolve())
    with _lock:
        if path not in _storages:
            # A generous timeout: the server's driver and a command line may write at once.
            _storages[path] = optuna.storages.RDBStorage(f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 60}})
        return _storages[path]


def new_sweep_id() -> str:
    return f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


@dataclass
class SweepSpec:
    """What a sweep was asked for; fixed once it is created."""

    id: str
    config: dict[str, Any]
    """The base config (``RunConfig.to_dict()``, task defaults filled in)."""
    space: dict[str, dict[str, Any]]
    trials: int
    metric: str
    greater: bool
    parallel: int = 1
    timeout_s: float | None = None
    """Wall time after which no new trial starts (the running ones finish)."""
    pruner: str = "median"
    seed: int = 0
    owner: str | None = None
    gpus: int = 1
    env: dict[str, str] = field(default_factory=dict)
    created: float = 0.0

    @property
    def direction(self) -> str:
        return "maximize" if self.greater else "minimize"

    @property
    def deadline(self) -> float | None:
        return self.created + self.timeout_s if self.timeout_s else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepSpec":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def pruner(name: str) -> optuna.pruners.BasePruner:
    """The pruner of a sweep. Steps are evaluations (the n-th validation score of each trial):
    with the default schedule every trial evaluates four times an epoch, whatever its batch size,
    so the n-th evaluations of two trials are comparable."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3)
    return optuna.pruners.NopPruner()


def create(workspace: Workspace, spec: SweepSpec) -> optuna.Study:
    study = optuna.create_study(study_name=spec.id, storage=storage(workspace), direction=spec.direction)
    study.set_user_attr("spec", asdict(spec))
    study.set_user_attr("status", RUNNING)
    return study


def load(workspace: Workspace, sweep_id: str, seed: int | None = None) -> optuna.Study:
    """The sweep's study with its pruner. ``seed``: the sampler's seed for the next trial (the
    driver seeds it with the sweep's seed plus the number of trials so far: the same trials
    whether or not the driver was restarted in between)."""
    from studio.errors import StudioError

    try:
        study = optuna.load_study(study_name=sweep_id, storage=storage(workspace), sampler=optuna.samplers.TPESampler(seed=seed))
    except KeyError:
        raise StudioError(f"no sweep '{sweep_id}' in this workspace", hint="studio sweep list shows the sweeps") from None
    study.pruner = pruner(spec_of(study).pruner)
    return study


def spec_of(study: optuna.Study) -> SweepSpec:
    return SweepSpec.from_dict(study.user_attrs["spec"])


def status_of(study: optuna.Study) -> str:
    return study.user_attrs.get("status", RUNNING)


def sweep_ids(workspace: Workspace) -> list[str]:
    """Every sweep of the workspace, newest first."""
    if not (workspace.root / SWEEPS_DB).exists():
        return []
    return sorted((s.study_name for s in optuna.get_all_study_summaries(storage(workspace), include_best_trial=False)),
                  reverse=True)


def open_sweeps(workspace: Workspace) -> list[str]:
    """Sweeps a driver still has work on (trials to start or follow, the best to score)."""
    if not (workspace.root / SWEEPS_DB).exists():
        return []
    return sorted(s.study_name for s in optuna.get_all_study_summaries(storage(workspace), include_best_trial=False)
                  if not s.user_attrs.get("ended"))
