"""The kinds of event in ``events.jsonl``: one frozen dataclass each, and ``parse`` for a line.

A line is ``{"t": <seconds>, "kind": <kind>, ...fields}``; each class names its fields as they
are written, so files written before these classes existed read the same. ``parse`` never
raises: a field of the wrong type reads as absent (None) and a kind it does not know becomes an
``Unknown`` event that readers skip, so an old or a newer file never stops a reader.

A field that is None is not written, except those a kind always writes (``always`` below, e.g.
a progress event's ``eta_s`` before the rate is known): absent and null read the same.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar


# ---- field readers: a JSON value of the expected type, else None ------------------------------
def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: Any) -> float | None:
    """A finite number (JSON from other writers may hold NaN or Infinity)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _lines(value: Any) -> list[str] | None:
    return [str(line) for line in value] if isinstance(value, list) else None


def _field(read: Callable[[Any], Any], *, always: bool = False) -> Any:
    return field(default=None, metadata={"read": read, "always": always})


def _open() -> Any:
    """The fields of a kind whose names are not fixed (a trainer's logs, the chosen settings):
    written flat in the line, beside the fixed ones."""
    return field(default_factory=dict, metadata={"open": True})


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = ""
    t: float | None = _field(_num)
    """When it was written (seconds since the epoch); the writer stamps it."""

    def fields(self) -> dict[str, Any]:
        """What the line holds besides ``t`` and ``kind``, in the order it is written."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "t":
                continue
            if f.metadata.get("open"):
                out.update(value)
            elif value is not None or f.metadata.get("always"):
                out[f.name] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        head = {"t": self.t} if self.t is not None else {}
        return {**head, "kind": self.kind_name(), **self.fields()}

    def kind_name(self) -> str:
        return self.kind


@dataclass(frozen=True, kw_only=True)
class Status(Event):
    """The run's status changed (see ``studio.runs.state`` for the statuses and who writes them)."""

    kind: ClassVar[str] = "status"
    status: str | None = _field(_str, always=True)
    pid: int | None = _field(_int)
    """starting: the worker's process."""
    owner: str | None = _field(_str)
    gpus: int | None = _field(_int)
    resume: bool | None = _field(_bool)
    checkpoint: str | None = _field(_str)
    """queued again: the checkpoint the worker will continue from."""
    device: str | None = _field(_str)
    total_steps: int | None = _field(_int)
    parameters: int | None = _field(_int)
    trainable_parameters: int | None = _field(_int)
    train_examples: int | None = _field(_int)
    train_tokens: int | None = _field(_int)
    torch_threads: int | None = _field(_int)
    step: int | None = _field(_int)
    exit_code: int | None = _field(_int)
    reason: str | None = _field(_str)
    error_kind: str | None = _field(_str)
    headline: dict[str, Any] | None = _field(_dict)
    """completed: the selection metric and its final score, ``{name: value}``."""


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    kind: ClassVar[str] = "progress"
    step: int | None = _field(_int, always=True)
    total: int | None = _field(_int, always=True)
    epoch: float | None = _field(_num, always=True)
    eta_s: float | None = _field(_num, always=True)
    steps_per_s: float | None = _field(_num)
    elapsed_s: float | None = _field(_num)


@dataclass(frozen=True, kw_only=True)
class Phase(Event):
    """Work outside the training steps, with its own progress: the final scoring of a split
    (``scoring``, after training, or of the base model before it) and the evaluations while
    training (``evaluating``). ``done``/``total`` count examples; ``part`` says which pass of a
    split it is when one takes two (``loss``, then ``predictions``, e.g. generation)."""

    kind: ClassVar[str] = "phase"
    phase: str | None = _field(_str, always=True)
    split: str | None = _field(_str)
    part: str | None = _field(_str)
    done: int | None = _field(_int, always=True)
    total: int | None = _field(_int, always=True)
    eta_s: float | None = _field(_num, always=True)
    elapsed_s: float | None = _field(_num)


@dataclass(frozen=True, kw_only=True)
class Log(Event):
    """A message of the worker, or the trainer's logs of a step (loss, learning_rate, ...)."""

    kind: ClassVar[str] = "log"
    step: int | None = _field(_int)
    message: str | None = _field(_str)
    values: dict[str, Any] = _open()

    @property
    def loss(self) -> float | None:
        return _num(self.values.get("loss"))

    @property
    def learning_rate(self) -> float | None:
        return _num(self.values.get("learning_rate"))


@dataclass(frozen=True, kw_only=True)
class Summary(Event):
    """The trainer's end-of-training logs (train_runtime, ...): training is over."""

    kind: ClassVar[str] = "summary"
    step: int | None = _field(_int)
    values: dict[str, Any] = _open()


@dataclass(frozen=True, kw_only=True)
class Eval(Event):
    """Scores of one split: ``validation`` while training, then the final scoring of each split
    (and ``<split>_base`` for the model before fine-tuning)."""

    kind: ClassVar[str] = "eval"
    split: str | None = _field(_str, always=True)
    step: int | None = _field(_int, always=True)
    epoch: float | None = _field(_num)
    metrics: dict[str, Any] | None = _field(_dict, always=True)


@dataclass(frozen=True, kw_only=True)
class Error(Event):
    kind: ClassVar[str] = "error"
    error_kind: str | None = _field(_str, always=True)
    message: str | None = _field(_str, always=True)
    hint: str | None = _field(_str)
    log_tail: list[str] | None = _field(_lines)
    """The last lines of worker.log, for a failure nobody foresaw."""


@dataclass(frozen=True, kw_only=True)
class Settings(Event):
    """What the worker chose for the machine (``SpeedSettings.to_dict()``)."""

    kind: ClassVar[str] = "settings"
    values: dict[str, Any] = _open()


@dataclass(frozen=True, kw_only=True)
class Memory(Event):
    """The measured peak memory beside the estimate, after training."""

    kind: ClassVar[str] = "memory"
    step: int | None = _field(_int, always=True)
    peak_gib: float | None = _field(_num, always=True)
    estimated_gib: float | None = _field(_num, always=True)
    measured: str | None = _field(_str, always=True)


@dataclass(frozen=True, kw_only=True)
class Checkpoint(Event):
    kind: ClassVar[str] = "checkpoint"
    step: int | None = _field(_int, always=True)
    path: str | None = _field(_str, always=True)


@dataclass(frozen=True, kw_only=True)
class Unknown(Event):
    """A kind this version does not know (a newer worker's, or a broken line): kept, not read."""

    name: str = ""
    values: dict[str, Any] = _open()

    def kind_name(self) -> str:
        return self.name


KINDS: dict[str, type[Event]] = {cls.kind: cls for cls in
                                 (Status, Progress, Phase, Log, Summary, Eval, Error, Settings, Memory, Checkpoint)}


def parse(line: dict[str, Any]) -> Event:
    """The typed event of one line of events.jsonl (a JSON object)."""
    kind = line.get("kind")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        rest = {k: v for k, v in line.items() if k not in ("t", "kind")}
        return Unknown(t=_num(line.get("t")), name=kind if isinstance(kind, str) else "", values=rest)
    values: dict[str, Any] = {}
    known = {"kind"}
    open_field = None
    for f in dataclasses.fields(cls):
        if f.metadata.get("open"):
            open_field = f.name
            continue
        known.add(f.name)
        values[f.name] = f.metadata["read"](line.get(f.name))
    if open_field:
        values[open_field] = {k: v for k, v in line.items() if k not in known}
    return cls(**values)
