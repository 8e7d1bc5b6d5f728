"""Trainer callbacks: the worker's side of the events contract, and stop requests.

``EventsCallback`` reports the training (progress, logs, evaluations with their progress,
checkpoints) and turns a stop request (the run's STOP file) into a checkpoint and a prompt end:
no evaluation, no second save and no reload of the best checkpoint after it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from studio.runs import RunDir
from studio.runs.event_types import Checkpoint, Eval, Log, Progress, Status, Summary
from studio.runs.events import EventLog
from studio.runs.state import CANCELLING
from studio.training.scoring import PROGRESS_INTERVAL_S, PhaseProgress

def inject_faults(step: int) -> None:
    """Test hooks, read from the environment at the end of every optimizer step (no-ops unset).

    ``STUDIO_STEP_DELAY=0.2`` sleeps that many seconds per step, so a test can act mid-run.
    ``STUDIO_FAULT=<kind>@<step>`` fails at that step, as the real failure would:
    ``oom`` (torch.OutOfMemoryError), ``disk`` (OSError ENOSPC) or ``error`` (RuntimeError).
    """
    delay = os.environ.get("STUDIO_STEP_DELAY")
    if delay:
        time.sleep(float(delay))
    fault = os.environ.get("STUDIO_FAULT")
    if not fault:
        return
    kind, _, at = fault.partition("@")
    if not at.strip().isdigit() or step != int(at):
        return
    if kind == "oom":
        import torch

        raise torch.OutOfMemoryError(f"CUDA out of memory (injected by STUDIO_FAULT at step {step})")
    if kind == "disk":
        import errno

        raise OSError(errno.ENOSPC, f"No space left on device (injected by STUDIO_FAULT at step {step})")
    raise RuntimeError(f"injected failure (STUDIO_FAULT={fault})")


class EventsCallback(TrainerCallback):
    def __init__(self, events: EventLog, run_dir: Path, tokens_per_step=None):
        self.events = events
        self.run_dir = Path(run_dir)
        self._last_progress = 0.0
        self._start: float | None = None
        self._start_step = 0
        self.stopped_by_request = False
        self.phase: PhaseProgress | None = None
        """The work the Trainer's evaluation loop is doing for (the worker's final scoring); None:
        an evaluation while training, reported as ``evaluating`` the validation split."""
        self._evaluating: PhaseProgress | None = None
        self._batches = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.time()
        self._start_step = state.global_step
        self.events.write(Progress(step=state.global_step, total=state.max_steps, epoch=state.epoch or 0.0, eta_s=None))

    def on_step_end(self, args, state, control, **kwargs):
        inject_faults(state.global_step)
        now = time.time()
        if not self.stopped_by_request and RunDir(self.run_dir).stop_requested():
            # Checkpoint first so a cancelled run can be resumed where it stopped; nothing else:
            # an evaluation due at this step would cost as long as the user was promised to wait.
            control.should_save = True
            control.should_evaluate = False
            control.should_training_stop = True
            self.stopped_by_request = True
            self.events.write(Status(status=CANCELLING, step=state.global_step))
        if now - self._last_progress >= PROGRESS_INTERVAL_S or state.global_step == state.max_steps:
            self._last_progress = now
            done = state.global_step - self._start_step
            elapsed = now - (self._start or now)
            rate = done / elapsed if elapsed > 0 and done > 0 else None
            eta = (state.max_steps - state.global_step) / rate if rate else None
            self.events.write(Progress(
                step=state.global_step, total=state.max_steps, epoch=round(state.epoch or 0.0, 4),
                eta_s=round(eta, 1) if eta is not None else None, steps_per_s=round(rate, 4) if rate else None,
                elapsed_s=round(elapsed, 1),
            ))

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.stopped_by_request:
            # The Trainer's end of the epoch the stop cut short would evaluate the validation split
            # and save the same step again; and the end of training would load the best checkpoint
            # into a model nobody uses. The checkpoint of the stop step is written: end now.
            control.should_evaluate = False
            control.should_save = False
            args.load_best_model_at_end = False

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        progress = self.phase
        if progress is None:
            if self._evaluating is None:
                size = _length(getattr(eval_dataloader, "dataset", None))
                self._evaluating = PhaseProgress(self.events, "evaluating", size or 0, split="validation")
            progress = self._evaluating
        self._batches += 1
        batches = _length(eval_dataloader)
        if batches:
            progress.update(round(progress.total * min(1.0, self._batches / batches)))

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if any(k.startswith(("eval_", "validation_", "test_")) for k in logs):
            return  # evaluations are reported by on_evaluate and by the worker's final scoring
        logs.pop("total_flos", None)
        kind = Summary if "train_runtime" in logs else Log
        self.events.write(kind(step=state.global_step, values={k: v for k, v in logs.items() if isinstance(v, (int, float))}))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self._evaluating is not None:
            self._evaluating.finish()
        self._evaluating = None
        self._batches = 0
        metrics = metrics or {}
        if not any(k.startswith("eval_") for k in metrics):
            return  # a final scoring of another split: the worker reports it with its full metrics
        clean = {k.removeprefix("eval_"): v for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not k.endswith(("_runtime", "_per_second"))}
        self.events.write(Eval(split="validation", step=state.global_step, epoch=round(state.epoch or 0.0, 4), metrics=clean))

    def on_save(self, args, state, control, **kwargs):
        self.events.write(Checkpoint(step=state.global_step, path=f"checkpoints/checkpoint-{state.global_step}"))


def _length(sized: Any) -> int | None:
    try:
        return len(sized)
    except TypeError:
        return None
