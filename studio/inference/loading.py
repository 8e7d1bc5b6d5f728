"""Load a finished run's model for prediction (CLI predict, evaluation, playground)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.config import RunConfig
from studio.errors import StudioError
from studio.models.padding import align_pad_token
from studio.runs import RunDir
from studio.tasks.base import Task, TaskMeta, get_task


@dataclass
class TrainedModel:
    run_dir: Path
    config: RunConfig
    task: Task
    meta: TaskMeta
    model: Any
    tokenizer: Any

    def predict(self, df, batch_size: int = 32) -> list[dict[str, Any]]:
        return self.task.predict(self.model, self.tokenizer, df, self.meta, self.config.training.max_length, batch_size)


def load_trained(run_dir: str | Path, device: str | None = None) -> TrainedModel:
    from studio.models.loading import load_tokenizer, model_folder
    from studio.models.resolve import resolve_backbone

    run_dir = Path(run_dir)
    folder = RunDir(run_dir)
    model_dir = folder.model
    if not folder.has_model():
        raise StudioError(f"run {run_dir.name} has no finished model (model/task.json is missing); was it completed?")
    config = RunConfig.load(folder.config)
    task = get_task(config.task.name)
    meta = TaskMeta.from_dict(json.loads((model_dir / "task.json").read_text(encoding="utf-8")))
    tokenizer = load_tokenizer(str(model_dir), config.model.trust_remote_code)
    if (model_dir / "adapter_config.json").exists():
        from peft import PeftModel

        # Load the base through the resolver so a moved install or cache is still found.
        backbone = resolve_backbone(config.model.backbone, kind=task.model_kind)
        base = task.load_model(model_folder(backbone, run_dir.parent.parent / "cache"), meta, config)
        model = PeftModel.from_pretrained(base, str(model_dir))
    else:
        model = task.load_model(str(model_dir), meta, config)
    align_pad_token(model, tokenizer)
    if device:
        model.to(device)
    model.eval()
    return TrainedModel(run_dir, config, task, meta, model, tokenizer)
