"""A run's statuses, and its events folded into one state: the one reducer every reader uses.

The worker appends events; the job manager and the run index (the record of a run), the
Train tab's live charts and the CLI's progress read them. Each keeps a ``RunState`` and feeds it
the events after the byte offset it last reached (``summarize``, or ``apply`` one event at a
time), so a poll costs only the new lines.

A ``starting`` status opens a new attempt (a resume appends to the same file) and resets what
belonged to the previous one (step, total, error, final metric); the charts' series are the
run's whole history and go on across attempts.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.runs.event_types import (Checkpoint, Error, Eval, Event, Log, Memory, Phase, Progress, Settings, Status,
                                     Summary, Unknown)
from studio.runs.events import iter_events

# Statuses written by the worker, plus those the job system writes for it:
# queued -> starting -> running [-> cancelling] -> (completed | failed | cancelled | interrupted),
# and pruned: a sweep's trial stopped early by the sweep because it could not beat the others.
QUEUED = "queued"
CANCELLING = "cancelling"
"""A cancel was asked and the worker is still at work (saving its checkpoint, stopping): the job
manager records it at once, the worker writes it when it sees the request."""
ACTIVE = ("starting", "running", CANCELLING)
"""A worker is (about to be) at work, or still ending its work."""
UNFINISHED = (QUEUED,) + ACTIVE
"""Not over yet: waiting or at work (what a page keeps watching, what a cancel applies to)."""
FINISHED = ("completed", "failed", "cancelled")
"""Final statuses a worker writes itself."""
PRUNED = "pruned"
"""A sweep's trial the sweep stopped as hopeless (written by the sweep after the cancel took effect)."""
TERMINAL = FINISHED + ("interrupted", PRUNED)
STATUSES = UNFINISHED + TERMINAL
RESUMABLE = ("interrupted", "failed", "cancelled")

NOT_SCORES = frozenset({"loss", "runtime", "samples_per_second", "steps_per_second", "epoch", "examples"})
"""Keys of an eval event's metrics that are bookkeeping, not scores."""
NOTES_KEPT = 200
"""Recent notes a state keeps (a page shows the last lines of a run, not all of them)."""

Points = list[tuple[int, float]]


@dataclass(frozen=True)
class Note:
    """An event worth a line in a run's log, with the step it happened at."""

    step: int
    event: Event


@dataclass
class RunState:
    offset: int = 0
    """Bytes of events.jsonl consumed so far by ``summarize`` (only complete lines)."""
    attempt_offset: int = 0
    """Where the last attempt's ``starting`` event begins."""

    # The run and its current attempt (what the run index records).
    status: str | None = None
    status_t: float | None = None
    queued_t: float | None = None
    started: float | None = None
    ended: float | None = None
    worker_pid: int | None = None
    attempts: int = 0
    """Workers started (one ``starting`` event each)."""
    step: int | None = None
    total_steps: int | None = None
    epoch: float | None = None
    eta_s: float | None = None
    elapsed_s: float | None = None
    loss: float | None = None
    """The last training loss logged."""
    error: Error | None = None
    """The attempt's last error event."""
    error_kind: str | None = None
    metric_name: str | None = None
    metric_value: float | None = None
    settings: dict[str, Any] | None = None
    """What the worker chose for the machine (its ``settings`` event)."""
    memory: Memory | None = None
    """The measured peak memory beside the estimate (after training)."""
    phase: Phase | None = None
    """Work outside the training steps going on now (an evaluation, the final scoring of a split)
    with its progress; None while training steps run and once the attempt is over."""

    # The charts' series: (step, value) points over the whole run.
    train_loss: Points = field(default_factory=list)
    eval_loss: Points = field(default_factory=list)
    eval_metrics: dict[str, Points] = field(default_factory=dict)
    learning_rate: Points = field(default_factory=list)
    throughput: Points = field(default_factory=list)
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    """Scores of the finished model per split (the worker's last eval events)."""
    scoring: bool = False
    """Training is over: evaluations from here score the final model (numbers, not points)."""

    notes: deque[Note] = field(default_factory=lambda: deque(maxlen=NOTES_KEPT))
    """The latest events worth a line (everything but progress and the trainer's summary)."""
    noted: int = 0
    """Notes made so far, those no longer kept included (a reader's mark of what it has shown)."""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def error_message(self) -> str | None:
        return self.error.message if self.error else None

    @property
    def error_hint(self) -> str | None:
        return self.error.hint if self.error else None

    def apply(self, event: Event, at: int | None = None) -> Note | None:
        """Fold one event in (``at``: where its line begins); returns its note, if it is worth a line."""
        step = getattr(event, "step", None)
        at_step = step if step is not None else self.step or 0
        if isinstance(event, Status):
            self._status(event, at)
        elif isinstance(event, Progress):
            self._progress(event)
        elif isinstance(event, Phase):
            self.phase = event
        elif isinstance(event, Log):
            if event.loss is not None:
                self.loss = event.loss
                self.train_loss.append((at_step, event.loss))
            if event.learning_rate is not None:
                self.learning_rate.append((at_step, event.learning_rate))
        elif isinstance(event, Eval):
            self._eval(event, at_step)
        elif isinstance(event, Summary):
            self.scoring = True
        elif isinstance(event, Error):
            self.error = event
            self.error_kind = event.error_kind
        elif isinstance(event, Settings):
            self.settings = dict(event.values)
        elif isinstance(event, Memory):
            self.memory = event
        if step is not None:
            self.step = step
        if isinstance(event, (Progress, Phase, Summary, Unknown)):
            return None
        note = Note(at_step, event)
        self.notes.append(note)
        self.noted += 1
        return note

    def _status(self, event: Status, at: int | None) -> None:
        status = event.status
        if status == "starting":
            self.attempt_offset = at if at is not None else self.attempt_offset
            self.attempts += 1
            self.started = event.t
            self.ended = None
            self.worker_pid = event.pid
            self.step = self.total_steps = None
            self.error = self.error_kind = None
            self.metric_name = self.metric_value = None
            self.scoring = False
            self.phase = None
        elif status == QUEUED:
            self.queued_t = event.t
        if status in TERMINAL:
            self.ended = event.t
            self.phase = None
        if status == "running" and event.total_steps is not None:
            self.total_steps = event.total_steps
        if status == "failed" and event.error_kind and not self.error_kind:
            self.error_kind = event.error_kind
        if status == "completed" and event.headline:
            name, value = next(iter(event.headline.items()))
            self.metric_name = str(name)
            self.metric_value = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        self.status = status
        self.status_t = event.t

    def _progress(self, event: Progress) -> None:
        self.phase = None  # training steps again (after an evaluation)
        if event.total is not None and event.total > 0:
            self.total_steps = event.total
        if event.epoch is not None:
            self.epoch = event.epoch
        self.eta_s = event.eta_s
        if event.elapsed_s is not None:
            self.elapsed_s = event.elapsed_s
        if event.steps_per_s is not None and event.step is not None:
            self.throughput.append((event.step, float(event.steps_per_s)))

    def _eval(self, event: Eval, step: int) -> None:
        metrics = event.metrics or {}
        split = event.split or "validation"
        scores = scores_of(metrics)
        if self.status in ACTIVE and split == "validation" and not self.scoring:
            loss = metrics.get("loss")
            if _finite(loss):
                self.eval_loss.append((step, float(loss)))
            for name, value in scores.items():
                self.eval_metrics.setdefault(name, []).append((step, value))
        else:
            self.final[split] = scores


def scores_of(metrics: dict[str, Any]) -> dict[str, float]:
    """An eval event's scores: its finite numbers less the bookkeeping (loss, runtime, ...)."""
    return {str(k): float(v) for k, v in metrics.items() if k not in NOT_SCORES and _finite(v)}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def summarize(run_dir: str | Path, state: RunState | None = None) -> RunState:
    """Feed ``state`` (or a new one) the events written since it was last fed."""
    state = state or RunState()
    for start, end, event in iter_events(run_dir, state.offset):
        state.apply(event, start)
        state.offset = end
    return state
