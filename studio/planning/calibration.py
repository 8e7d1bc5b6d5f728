"""Step times measured by finished runs, kept in the workspace so later plans use this machine's.

A completed run's events say when its worker started, when training began, when each progress
report came and when it finished; its settings say the batch and the device. ``measure_run`` turns
them into a ``Measurement``: seconds a training step (from the progress reports with no evaluation
or checkpoint between them), seconds of startup (process, data, model), and seconds an evaluated
row (the rest of the run over the rows it scored). ``Calibration`` keeps one per run in
``cache/step_times.json``, reading each finished run once, the first time a plan asks.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from studio.runs import RunDir
from studio.runs.events import read_events

FILE_NAME = "step_times.json"
# Measurements kept per setup and in all (the newest win: a machine changes, software updates).
KEEP = 200
# Events that stop the training loop between two progress reports: the interval is not a step's.
PAUSES = {"eval", "checkpoint"}


@dataclass(frozen=True)
class RunKey:
    """What a step's time depends on, beyond the machine."""
    backbone: str
    method: str
    device: str
    seq_len: int
    batch: int


@dataclass
class Measurement:
    run: str
    at: float
    backbone: str
    method: str
    device: str
    seq_len: int
    batch: int
    task: str
    seconds_per_step: float
    flops_per_step: float | None
    """The model's FLOPs of one of its steps: with the measured time, this machine's rate."""
    startup_s: float
    seconds_per_eval_row: float | None
    wall_s: float
    steps: int
    data: str = ""
    """The data it trained on (a saved dataset's name or the training file)."""
    epochs_trained: float | None = None
    early_stopped: bool = False
    """Early stopping ended it before its epochs: ``epochs_trained`` is where this data peaked."""

    @property
    def key(self) -> RunKey:
        return RunKey(self.backbone, self.method, self.device, self.seq_len, self.batch)


def _pure_step_seconds(events: list[dict[str, Any]]) -> tuple[float, int] | None:
    """(seconds, steps) between progress reports with only steps between them."""
    seconds, steps, last, paused = 0.0, 0, None, False
    for event in events:
        kind = event.get("kind")
        if kind == "progress":
            if last is not None and not paused and event.get("step", 0) > last.get("step", 0):
                seconds += event["t"] - last["t"]
                steps += event["step"] - last["step"]
            last, paused = event, False
        elif kind in PAUSES:
            paused = True
    return (seconds, steps) if steps else None


def _rows(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


def measure_run(run_dir: str | Path, flops_per_step: Any = None) -> Measurement | None:
    """What a completed run measured, or None (not completed, resumed, or too short to tell).
    ``flops_per_step``: a function of (run folder, config, settings) giving the model's FLOPs of one step."""
    from studio.config import RunConfig

    folder = RunDir(run_dir)
    events, _ = read_events(folder.path)
    starts = [i for i, e in enumerate(events) if e.get("kind") == "status" and e.get("status") == "starting"]
    if len(starts) != 1 or not events or events[-1].get("status") != "completed":
        return None  # a resumed run's parts do not add up to one run
    events = events[starts[0]:]
    running = next((e for e in events if e.get("kind") == "status" and e.get("status") == "running"), None)
    settings = next((e for e in events if e.get("kind") == "settings"), None)
    settings = settings.get("values", settings) if settings else None  # the speed choices, nested or not
    pure = _pure_step_seconds(events)
    if running is None or settings is None or pure is None:
        return None
    progress = [e for e in events if e.get("kind") == "progress"]
    steps = progress[-1].get("step", 0)
    planned_steps = running.get("total_steps") or 0
    seconds_per_step = pure[0] / pure[1]
    try:
        config = RunConfig.load(folder.config)
    except Exception:  # noqa: BLE001 - an unreadable config: nothing to learn from this run
        return None
    sizes = {split: _rows(folder.data / f"{split}.jsonl") for split in ("validation", "test")}
    scored = sum(sizes.get(str(e.get("split", "")).removesuffix("_base"), 0) for e in events if e.get("kind") == "eval")
    wall = events[-1]["t"] - events[0]["t"]
    startup = running["t"] - events[0]["t"]
    rest = wall - startup - steps * seconds_per_step
    return Measurement(
        run=folder.path.name, at=events[-1]["t"], backbone=config.model.backbone or "", method=config.method.kind,
        device=settings.get("device", "cpu"), seq_len=int(config.training.max_length or 0),
        batch=int(settings.get("batch_size") or config.training.batch_size or 0), task=config.task.name,
        seconds_per_step=seconds_per_step, flops_per_step=flops_per_step(folder.path, config, settings) if flops_per_step else None,
        startup_s=startup, seconds_per_eval_row=max(0.0, rest) / scored if scored else None, wall_s=wall, steps=steps,
        data=data_name(config), epochs_trained=progress[-1].get("epoch"),
        early_stopped=bool(config.training.early_stopping_patience) and 0 < steps < planned_steps,
    )


def data_name(config) -> str:
    """What a run trained on, as plans and measurements compare it."""
    return str(config.data.dataset or config.data.train or "")


class Calibration:
    """The measurements of this workspace's finished runs (``cache/step_times.json``)."""

    _lock = threading.Lock()

    def __init__(self, path: str | Path, measurements: Iterable[Measurement] = (), seen: Iterable[str] = ()):
        self.path = Path(path)
        self.measurements = list(measurements)
        self.seen = set(seen)

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(path, [Measurement(**m) for m in data.get("measurements", [])], data.get("seen", []))
        except (OSError, ValueError, TypeError):
            return cls(path)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"measurements": [asdict(m) for m in self.measurements[-KEEP:]], "seen": sorted(self.seen)}
        # Written whole then renamed: two servers never leave half a file.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".step_times-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, self.path)

    def add(self, measurement: Measurement) -> None:
        self.measurements.append(measurement)
        self.seen.add(measurement.run)

    def refresh(self, runs: Path, flops_per_step: Any = None) -> "Calibration":
        """Measure the runs finished since the last look (a run's metrics.json says it finished)."""
        changed = False
        with self._lock:
            try:
                folders = sorted(p for p in runs.iterdir() if p.is_dir() and p.name not in self.seen)
            except OSError:
                return self
            for folder in folders:
                if not RunDir(folder).metrics.exists():
                    continue  # still running, or failed: looked at again next time
                measured = measure_run(folder, flops_per_step)
                self.seen.add(folder.name)
                if measured is not None:
                    self.measurements.append(measured)
                changed = True
            if changed:
                self.save()
        return self

    def same_setup(self, key: RunKey) -> Measurement | None:
        """The newest measurement of exactly this setup."""
        found = [m for m in self.measurements if m.key == key]
        return max(found, key=lambda m: m.at) if found else None

    def same_backbone(self, key: RunKey) -> Measurement | None:
        """The newest measurement of this backbone on this device (its startup and evaluation),
        of the same method when there is one (LoRA loads and evaluates differently)."""
        found = [m for m in self.measurements if (m.backbone, m.device) == (key.backbone, key.device)]
        alike = [m for m in found if m.method == key.method] or found
        return max(alike, key=lambda m: m.at) if alike else None

    def stopped_at(self, backbone: str, task: str, data: str) -> float | None:
        """The epoch at which early stopping last ended a run of this backbone and task on this data."""
        found = [m for m in self.measurements if (m.backbone, m.task, m.data) == (backbone, task, data)
                 and m.early_stopped and m.epochs_trained]
        return max(found, key=lambda m: m.at).epochs_trained if found else None

    def rate(self, device: str) -> float | None:
        """This machine's measured FLOP rate on ``device`` (the median of its runs'), None when none ran."""
        rates = [m.flops_per_step / m.seconds_per_step for m in self.measurements
                 if m.device == device and m.flops_per_step and m.seconds_per_step > 0]
        return statistics.median(rates) if rates else None
