"""Every path of a run folder, in one place.

```
<workspace>/runs/<run_id>/
  config.yaml        the full, resolved RunConfig
  job.json           what the job system needs to start it again (owner, GPUs, environment)
  data/, task.json   the prepared splits and what the task learned of them (labels, columns)
  profile.json       the data's profile at submit (lengths, labels, notes)
  events.jsonl       the worker's events (studio.runs.events)
  worker.log         the worker's stdout and stderr
  STOP               asks the worker to checkpoint and stop (written by a cancel)
  settings.json      what the worker chose for the machine
  checkpoints/       the Trainer's checkpoints (what a resume starts from)
  model/             final weights or adapter and tokenizer
  predictions_<split>.jsonl, metrics.json, README.md (the model card)
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __init__(self, path: str | Path):
        object.__setattr__(self, "path", Path(path))

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def job(self) -> Path:
        return self.path / "job.json"

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def task(self) -> Path:
        return self.path / "task.json"

    @property
    def profile(self) -> Path:
        return self.path / "profile.json"

    @property
    def events(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def log(self) -> Path:
        return self.path / "worker.log"

    @property
    def stop_file(self) -> Path:
        return self.path / "STOP"

    @property
    def settings(self) -> Path:
        return self.path / "settings.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def model(self) -> Path:
        return self.path / "model"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def card(self) -> Path:
        return self.path / "README.md"

    def predictions(self, split: str) -> Path:
        return self.path / f"predictions_{split}.jsonl"

    def has_model(self) -> bool:
        """A finished model is there (the worker writes task.json last)."""
        return (self.model / "task.json").exists()

    # ---- stopping -------------------------------------------------------------------------------
    def request_stop(self) -> None:
        self.stop_file.touch()

    def stop_requested(self) -> bool:
        return self.stop_file.exists()

    def clear_stop(self) -> None:
        self.stop_file.unlink(missing_ok=True)

    # ---- checkpoints ----------------------------------------------------------------------------
    def complete_checkpoints(self) -> list[Path]:
        """Checkpoints whose save finished (the Trainer writes trainer_state.json last), oldest first."""
        found = []
        for path in self.checkpoints.glob("checkpoint-*"):
            step = path.name.rsplit("-", 1)[-1]
            state = path / "trainer_state.json"
            if step.isdigit() and state.is_file():
                try:
                    json.loads(state.read_text())
                except ValueError:
                    continue
                found.append((int(step), path))
        return [p for _, p in sorted(found)]
