"""Scoring a finished run's model on one split, nothing trained: a sweep's best trial gets its
test score this way (the trials are trained and compared on the validation split only, so the
test split is seen once, by the model that is kept).

The job manager queues such an attempt (``JobManager.score``) with ``STUDIO_SCORE_ONLY=<split>``
in the worker's environment; the worker then runs ``score_only`` instead of training. Nothing
heavy is imported at module level: the job manager reads ``SCORE_ONLY_ENV`` from here.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

SCORE_ONLY_ENV = "STUDIO_SCORE_ONLY"


def score_only(run_dir: Path, events, split: str) -> int:
    """Load the run's finished model, score ``split`` as the end of training would, add it to
    metrics.json and the model card, and end the attempt ``completed`` with that split's headline."""
    import torch
    from transformers import Trainer, TrainingArguments

    from studio.config import RunConfig
    from studio.data.loading import read_splits
    from studio.errors import StudioError
    from studio.models.loading import load_tokenizer, model_folder
    from studio.models.padding import align_pad_token
    from studio.models.resolve import resolve_backbone
    from studio.runs import RunDir
    from studio.runs.event_types import Eval, Log, Status
    from studio.tasks.base import TaskMeta, get_task
    from studio.training.modelcard import write_model_card
    from studio.training.scoring import score_split
    from studio.training.worker import _numbers, _tokenized_splits, _write_json, eval_batch_size, selection_metric

    folder = RunDir(run_dir)
    if not folder.has_model():
        raise StudioError(f"run {folder.id} has no finished model to score")
    config = RunConfig.load(folder.config)
    task = get_task(config.task.name)
    meta = TaskMeta.from_dict(json.loads((folder.model / "task.json").read_text(encoding="utf-8")))
    splits = read_splits(folder.data)
    if split not in splits or not len(splits[split]):
        raise StudioError(f"run {folder.id} has no {split} split to score")
    cache = run_dir.parent.parent / "cache"
    backbone = resolve_backbone(config.model.backbone, kind=task.model_kind)
    tokenizer = load_tokenizer(str(folder.model), config.model.trust_remote_code)
    if (folder.model / "adapter_config.json").exists():
        from peft import PeftModel

        model = PeftModel.from_pretrained(task.load_model(model_folder(backbone, cache), meta, config), str(folder.model))
    else:
        model = task.load_model(str(folder.model), meta, config)
    align_pad_token(model, tokenizer)
    datasets = _tokenized_splits(run_dir, cache, config, task, meta, {split: splits[split]}, tokenizer, str(folder.model), events)
    args = TrainingArguments(output_dir=tempfile.mkdtemp(prefix="studio-scoring-"),  # nothing is saved there
                             per_device_eval_batch_size=eval_batch_size(config, config.training.batch_size),
                             report_to="none", disable_tqdm=True, use_cpu=config.training.device == "cpu" or not torch.cuda.is_available())
    trainer = Trainer(model=model, args=args, data_collator=task.collator(tokenizer, meta))
    events.write(Status(status="running", device=str(next(model.parameters()).device)))
    events.write(Log(step=0, message=f"scoring the {split} split of the finished model"))
    rows = task.prediction_rows(splits, meta).get(split)
    scores = score_split(trainer, task, tokenizer, meta, config.training.max_length, datasets[split], rows, run_dir, split,
                         events=events)
    metrics = json.loads(folder.metrics.read_text(encoding="utf-8")) if folder.metrics.exists() else {}
    metrics[split] = scores
    _write_json(folder.metrics, metrics)
    step = (metrics.get("train") or {}).get("global_step")
    events.write(Eval(split=split, step=step, metrics=_numbers(scores)))
    settings = json.loads(folder.settings.read_text(encoding="utf-8")) if folder.settings.exists() else None
    write_model_card(run_dir, config, task, meta, metrics, backbone.display_name, settings)
    metric, _ = selection_metric(config, task, meta)
    events.write(Status(status="completed", step=step, headline={metric: scores.get(metric)}))
    return 0
