"""Scoring a split of a run: each split once per checkpoint, with its progress.

After training, the worker scores the validation and test splits: the loss (plus what a task
derives from it) and the task's predictions with their metrics. Each split costs one pass of the
model over it:

- the validation split's loss is the one the Trainer measured while training when that
  evaluation was made on the weights the model holds now (the best checkpoint, loaded at the end,
  or the last step) (``evaluated_loss``);
- a task whose prediction pass feeds the model the rows of its tokenized split, in order
  (classification; tagging, window by window) gets the loss inside that pass: the split's labels
  are handed to the model beside the task's own inputs (``LossInPredictions``), which leaves the
  logits, hence the predictions, as they are;
- otherwise (generation: its predictions are written token by token from the prompt alone, the
  loss is the reference answer's under teacher forcing, two different computations) the
  Trainer's evaluation gives the loss and the task's prediction loop follows, each a ``part`` of
  the split's scoring phase.

Every pass writes ``phase`` events (``scoring`` a split, ``done``/``total`` examples, an ETA),
and a stop request during one ends the worker (``StopRequested``) instead of waiting for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

from studio.runs import RunDir
from studio.runs.event_types import Phase
from studio.runs.events import EventLog

PROGRESS_INTERVAL_S = 0.5
"""Progress and phase events are throttled to one per this many seconds (a fast GPU would
write thousands of lines a minute)."""


class StopRequested(Exception):
    """A stop was asked while the worker scored the trained model: it ends without the rest."""


class PhaseProgress:
    """Progress of one piece of work outside the training steps, written as ``phase`` events:
    the first at once, then at most one every ``PROGRESS_INTERVAL_S``, and the last one. With
    ``stop`` (the run folder), a stop request raises ``StopRequested`` at the next batch."""

    def __init__(self, events: EventLog, phase: str, total: int, split: str | None = None, part: str | None = None,
                 stop: RunDir | None = None):
        self.events = events
        self.phase, self.split, self.part = phase, split, part
        self.stop = stop
        self.total = max(0, int(total))
        self.done = 0
        self._start = time.time()
        self._last = 0.0
        self._write()

    def advance(self, examples: int) -> None:
        self.update(self.done + examples)

    def update(self, done: int) -> None:
        if self.stop is not None and self.stop.stop_requested():
            raise StopRequested(f"stopped while {self.phase} {self.split or ''}".strip())
        done = min(self.total, max(self.done, int(done)))
        changed, self.done = done != self.done, done
        if changed and (time.time() - self._last >= PROGRESS_INTERVAL_S or done == self.total):
            self._write()

    def finish(self) -> None:
        if self.done < self.total:
            self.done = self.total
            self._write()

    def _write(self) -> None:
        self._last = now = time.time()
        elapsed = now - self._start
        eta = elapsed * (self.total - self.done) / self.done if self.done else None
        self.events.write(Phase(phase=self.phase, split=self.split, part=self.part, done=self.done, total=self.total,
                                eta_s=round(eta, 1) if eta is not None else None, elapsed_s=round(elapsed, 1)))


@contextlib.contextmanager
def counting_examples(model, progress: PhaseProgress | None) -> Iterator[None]:
    """Advance ``progress`` by the rows of every batch ``model`` is called with (a forward
    pass, or one ``generate`` call however many tokens it writes) while the block runs."""
    if progress is None:
        yield
        return
    generating = [False]

    def rows(args: tuple, kwargs: dict[str, Any]) -> int:
        ids = kwargs.get("input_ids", args[0] if args else None)
        shape = getattr(ids, "shape", None)
        return int(shape[0]) if shape else 0

    def on_forward(module, args, kwargs, output):
        if not generating[0]:
            progress.advance(rows(args, kwargs))

    generate = getattr(model, "generate", None)

    def counted_generate(*args, **kwargs):
        generating[0] = True
        try:
            out = generate(*args, **kwargs)
        finally:
            generating[0] = False
        progress.advance(rows(args, kwargs))
        return out

    handle = model.register_forward_hook(on_forward, with_kwargs=True)
    if generate is not None:
        model.generate = counted_generate  # an instance attribute over the method, removed below
    try:
        yield
    finally:
        handle.remove()
        if generate is not None:
            del model.generate


def evaluated_loss(trainer) -> float | None:
    """The validation loss the Trainer measured while training, when the weights it measured are
    the model's now: those of the best checkpoint (``load_best_model_at_end`` loaded them) or of
    the last step. None when no such evaluation was made."""
    state, args = trainer.state, trainer.args
    step = state.global_step
    if args.load_best_model_at_end and state.best_model_checkpoint:
        tail = Path(state.best_model_checkpoint).name.rsplit("-", 1)[-1]
        if not tail.isdigit():
            return None
        step = int(tail)
    found = [e for e in state.log_history if e.get("step") == step and isinstance(e.get("eval_loss"), (int, float))]
    return float(found[-1]["eval_loss"]) if found else None


class LossInPredictions:
    """The loss of a split computed in the task's own prediction pass.

    While it is on, each call of ``model`` gets the labels of the split's tokenized rows its
    inputs are (matched in order, token for token, padding left out); the model computes its
    loss beside the logits it returns anyway, and the loss is averaged over the examples as
    the Trainer's evaluation averages it. ``loss`` is None when a call did not match the next
    rows (then the caller measures the loss the usual way). ``per_token``: a row's labels are one
    per token (tagging), placed where its tokens are in the padded batch, -100 elsewhere."""

    def __init__(self, model, dataset, per_token: bool = False):
        self.model = model
        self.per_token = per_token
        self._ids = dataset["input_ids"]
        self._labels = dataset["labels"]
        self._cursor = 0
        self._pending = 0
        self._losses: list[Any] = []
        self.matched = True
        self._handles: list[Any] = []

    @staticmethod
    def applies(task, dataset, rows) -> bool:
        """A task whose prediction pass feeds the model its tokenized rows (whether it did is
        checked row by row during the pass), predictions asked for, and one process (the
        Trainer's loss needs every rank)."""
        return (task.predicts_tokenized_rows and rows is not None and dataset is not None
                and "labels" in dataset.column_names and "input_ids" in dataset.column_names
                and int(os.environ.get("WORLD_SIZE", "1")) == 1)

    def __enter__(self) -> "LossInPredictions":
        self._handles = [self.model.register_forward_pre_hook(self._before, with_kwargs=True),
                         self.model.register_forward_hook(self._after, with_kwargs=True)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _before(self, module, args, kwargs):
        import torch

        self._pending = 0
        ids = kwargs.get("input_ids")
        if not self.matched or args or ids is None or "labels" in kwargs or ids.dim() != 2:
            self.matched = False
            return None
        mask = kwargs.get("attention_mask")
        n = ids.shape[0]
        if self._cursor + n > len(self._ids):
            self.matched = False
            return None
        for b in range(n):
            row = ids[b][mask[b].bool()] if mask is not None else ids[b]
            if row.tolist() != list(self._ids[self._cursor + b]):
                self.matched = False
                return None
        wanted = self._labels[self._cursor:self._cursor + n]
        if self.per_token:  # each row's labels where its tokens are, -100 over the padding
            labels = torch.full_like(ids, -100)
            for b, row_labels in enumerate(wanted):
                positions = mask[b].bool() if mask is not None else torch.ones_like(ids[b], dtype=torch.bool)
                labels[b][positions] = torch.tensor(row_labels, dtype=ids.dtype, device=ids.device)
        else:
            labels = torch.tensor(wanted).to(ids.device)
        self._cursor += n
        self._pending = n
        return args, {**kwargs, "labels": labels}

    def _after(self, module, args, kwargs, output):
        n, self._pending = self._pending, 0
        if not n:
            return None
        loss = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
        if loss is None:
            self.matched = False
            return None
        # As the Trainer's evaluation loop: the batch's mean loss once per example.
        self._losses.append(loss.detach().float().reshape(1).repeat(n).cpu().numpy())
        return None

    @property
    def loss(self) -> float | None:
        import numpy as np

        if not self.matched or self._cursor != len(self._ids) or not self._losses:
            return None
        losses = np.concatenate(self._losses)
        finite = np.isfinite(losses)
        if not finite.all():
            losses = losses[finite]
        return losses.mean().item()


def score_split(trainer, task, tokenizer, meta, max_length: int, dataset, rows, run_dir: Path, name: str, *,
                events: EventLog, callback=None, known_loss: float | None = None, main: bool = True) -> dict[str, Any]:
    """The loss on a tokenized split (plus what a task derives from it, e.g. perplexity), then
    predictions for ``rows`` (None: loss only) written to predictions_<name>.jsonl, and the task's
    metrics of them; ``known_loss``: the split's loss already measured on these weights.

    One pass over the split where the task allows it (see the module); each pass reports its
    progress. ``callback``: the run's ``EventsCallback`` (it reports the Trainer's evaluation
    loop); ``main``: this process writes the predictions (rank 0 under torchrun)."""
    folder = RunDir(run_dir)
    predicting = rows is not None and main
    fused = known_loss is None and predicting and LossInPredictions.applies(task, dataset, rows)
    loss = known_loss
    if loss is None and not fused:
        loss = _evaluated(trainer, dataset, name, events, callback, folder, part="loss" if predicting else None)
    if not predicting:  # the loss needs every rank; predictions only rank 0
        result: dict[str, Any] = {"loss": loss}
        if loss is not None:
            result.update(task.loss_metrics(loss))
        result["examples"] = len(dataset)
        return result
    progress = PhaseProgress(events, "scoring", len(rows), split=name,
                             part=None if known_loss is not None or fused else "predictions", stop=folder)
    with contextlib.ExitStack() as stack:
        in_pass = (stack.enter_context(LossInPredictions(trainer.model, dataset, per_token=task.peft_task_type == "TOKEN_CLS"))
                   if fused else None)
        stack.enter_context(counting_examples(trainer.model, progress))
        predictions = task.predict(trainer.model, tokenizer, rows, meta, max_length)
    progress.finish()
    if fused:
        loss = in_pass.loss
        if loss is None:  # the task's inputs were not the tokenized rows after all: measured apart
            loss = _evaluated(trainer, dataset, name, events, callback, folder, part="loss")
    with open(folder.predictions(name), "w", encoding="utf-8") as f:
        for row in predictions:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    result = {"loss": loss}
    if loss is not None:
        result.update(task.loss_metrics(loss))
    result.update(task.full_metrics(predictions, meta))
    result["examples"] = len(predictions)
    return result


def _evaluated(trainer, dataset, name: str, events: EventLog, callback, folder: RunDir, part: str | None) -> float | None:
    """The Trainer's evaluation of a split (its loss), reported as a phase of its own."""
    progress = PhaseProgress(events, "scoring", len(dataset), split=name, part=part, stop=folder)
    if callback is not None:
        callback.phase = progress
    try:
        loss = trainer.evaluate(dataset, metric_key_prefix=name).get(f"{name}_loss")
    finally:
        if callback is not None:
            callback.phase = None
    progress.finish()
    return loss
