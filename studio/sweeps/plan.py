"""How long a sweep should take, told before it starts (Train tab and ``studio sweep``).

A trial is a normal run, so the single run's plan (``studio.planning``: startup, training,
evaluation) is the unit, changed the way a sweep changes runs:
- the epochs a trial trains are drawn from the space (the default space searches from half the
  epochs to all of them), and early stopping ends it where the plan expects it to end the base
  run, whichever comes first;
- a trial is scored on validation only; the best one alone is scored on the test split, at the end;
- the pruner stops hopeless trials at an early evaluation. Optuna's median pruner lets the first
  ``MEDIAN_STARTUP`` trials finish; from then on it stops a trial whose score at an evaluation,
  from the second on, is below the median of the completed trials at the same evaluation. The
  completed trials are the survivors, so most later trials fall below them somewhere: four in
  five are counted as stopped, at their second or third evaluation (a 12-trial sweep of MiniLM on
  the sample reviews stopped 10 of 12). Successive halving keeps a third of the trials at each
  rung (evaluations 2, 6, 18, ...).
The expected time is shown as a range with the plan's own spread, beside the ceiling (every
trial trains all its epochs), which is what a sweep without pruning costs at most.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MEDIAN_STARTUP = 2  # optuna.pruners.MedianPruner(n_startup_trials=2) in studio.sweeps.study
MEDIAN_PRUNED_SHARE = 0.8
MEDIAN_STOP_EVALUATION = 2.5
HALVING_MIN_RESOURCE, HALVING_FACTOR = 2, 3  # SuccessiveHalvingPruner(min_resource=2, reduction_factor=3)


def waves(trials: int, parallel: int, slots: int) -> int:
    """How many rounds of trials one after another: ``parallel`` at once, at most ``slots``."""
    return math.ceil(max(1, trials) / max(1, min(parallel, slots)))


def epoch_share(space: dict[str, Any], base_epochs: float | None, stop_epoch: float | None = None) -> float:
    """The mean epochs a trial trains over the base run's: each trial trains its epochs drawn from
    the space, or until early stopping ends it near ``stop_epoch`` (1 when epochs are not searched).
    ``space``: key -> Param or its plain dict."""
    param = space.get("training.epochs")
    if param is None or not base_epochs:
        return 1.0
    get = (lambda k: param.get(k)) if isinstance(param, dict) else (lambda k: getattr(param, k))
    choices = get("choices")
    if not choices:
        low, high = get("low"), get("high")
        whole = float(low).is_integer() and float(high).is_integer() and get("type") != "float"
        choices = list(range(int(low), int(high) + 1)) if whole else [low + (high - low) * (i + 0.5) / 10 for i in range(10)]
    stop = stop_epoch or math.inf
    trial = sum(min(c, stop) for c in choices) / len(choices)
    return max(0.05, trial / min(base_epochs, stop))


def evaluations_run(pruner: str, evaluations: float, trials: int) -> float:
    """The mean number of validation evaluations a trial runs before it ends or is stopped, when
    an unpruned trial runs ``evaluations`` of them."""
    if evaluations <= 0 or trials <= 0:
        return evaluations
    if pruner == "median":
        judged = max(0, trials - MEDIAN_STARTUP)
        stopped_at = min(evaluations, MEDIAN_STOP_EVALUATION)
        per_judged = MEDIAN_PRUNED_SHARE * stopped_at + (1 - MEDIAN_PRUNED_SHARE) * evaluations
        return (min(trials, MEDIAN_STARTUP) * evaluations + judged * per_judged) / trials
    if pruner == "halving":
        total, alive, rung = 0.0, 1.0, HALVING_MIN_RESOURCE
        while rung < evaluations:
            stopped = alive * (1 - 1 / HALVING_FACTOR)
            total += stopped * rung
            alive -= stopped
            rung *= HALVING_FACTOR
        return total + alive * evaluations
    return evaluations


@dataclass
class SweepEstimate:
    expected_s: float
    low_s: float
    high_s: float
    ceiling_s: float
    """Every trial trains all its epochs (no pruning, no early stopping), at the upper end of the
    plan's spread: the most it should take."""
    rounds: int
    single_s: tuple[float, float]
    """The base config's single run (``Plan.seconds_range``)."""
    slots: int
    """Trials that can train at once on this machine."""


def sweep_estimate(plan, space: dict[str, Any], trials: int, parallel: int, slots: int, pruner: str) -> SweepEstimate | None:
    """The sweep's time from the base config's plan (``studio.planning.Plan``); None when the plan
    has no time."""
    if plan is None or not plan.seconds or not plan.parts:
        return None
    trials, at_once = max(1, int(trials)), max(1, int(min(parallel, slots)))
    tc = plan.config.training
    epochs = None if tc.max_steps else tc.epochs
    startup, train, pass_s = plan.parts.get("startup", 0.0), plan.parts.get("train", 0.0), plan.validation_pass_s
    # What the base run trains and evaluates before it ends (early stopping counted).
    trained = min(1.0, plan.expected_epochs / epochs) if plan.expected_epochs and epochs else 1.0
    evaluations = plan.evaluations * trained
    share = epoch_share(space, epochs, plan.expected_epochs)
    run_share = evaluations_run(pruner, evaluations * share, trials) / (evaluations * share) if evaluations else 1.0
    trial_s = startup + (train + evaluations * pass_s) * share * run_share + pass_s  # validation scored at its end
    expected = trials * trial_s / at_once + pass_s  # the best trial's test split, once
    rounds = waves(trials, parallel, slots)
    low, high = plan.seconds_range
    # The upper end of the ceiling's range: "at most" is never below the expected range.
    ceiling = rounds * (plan.ceiling_seconds or plan.seconds) * high / plan.seconds + pass_s
    return SweepEstimate(expected_s=expected, low_s=expected * low / plan.seconds, high_s=expected * high / plan.seconds,
                         ceiling_s=ceiling, rounds=rounds, single_s=(low, high), slots=max(1, int(slots)))


def estimate_for(manager, config, space: dict[str, Any], trials: int, parallel: int, pruner: str,
                 rows_hint: int | None = None) -> SweepEstimate | None:
    """The estimate of a sweep of ``config`` run by ``manager`` (its workspace's calibration, its
    devices); None for a backbone of unknown shape. Raises StudioError when the config or its data
    cannot be read yet."""
    from studio.planning import plan_for

    devices = manager.devices
    plan = plan_for(config, manager.workspace, model_roots=manager.model_roots(), gpus=list(devices.gpus),
                    cpu_slots=devices.cpu_slots, rows_hint=rows_hint)
    slots = max(1, devices.cpu_slots if plan is None or plan.device != "cuda" else len(devices.gpus))
    return sweep_estimate(plan, space, trials, parallel, slots, pruner)
