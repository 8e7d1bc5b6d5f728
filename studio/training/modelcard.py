"""The run's README.md: a model card a colleague can read without the studio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.config import RunConfig
from studio.runs import RunDir
from studio.tasks.base import Task, TaskMeta


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_model_card(run_dir: Path, config: RunConfig, task: Task, meta: TaskMeta, metrics: dict, backbone: str,
                     settings: dict[str, Any] | None = None) -> None:
    """``settings``: what the worker chose for the machine (its ``SpeedSettings``), when known."""
    from studio.tasks.baseline import compare
    from studio.training.speed import describe, describe_memory

    t = config.training
    settings = settings or {}
    batch = settings.get("batch_size") or t.batch_size
    auto_class = task.hf_auto_class
    lines = [
        f"# {config.name or run_dir.name}",
        "",
        f"A {task.title.lower()} model fine-tuned from **{backbone}** with the studio "
        f"({'LoRA' if config.method.kind == 'lora' else 'full fine-tuning'}).",
        "",
        "## Training",
        "",
        f"- epochs: {t.epochs}, max steps: {t.max_steps or '-'}, learning rate: {t.learning_rate}, "
        f"batch size: {batch} x {t.gradient_accumulation}, max length: {t.max_length}",
        f"- preset: {t.preset}, seed: {t.seed}, early-stopping patience: {t.early_stopping_patience}",
    ]
    if settings:
        lines.append(f"- trained on {settings.get('device', 'cpu')}: {describe(settings)}")
    train = metrics.get("train") or {}
    if train.get("peak_memory_gib") is not None:
        lines.append("- memory: " + describe_memory(train["peak_memory_gib"], train.get("estimated_peak_gib"),
                                                   settings.get("device") == "cuda"))
    labels = meta.info.get("labels")
    if labels:
        lines.append(f"- labels ({len(labels)}): {', '.join(map(str, labels[:50]))}")
    lines += ["", "## Results", "", "| split | metric | value |", "|---|---|---|"]
    for split in ("validation", "test", "validation_base", "test_base"):  # *_base: the model before fine-tuning
        for name, value in metrics.get(split, {}).items():
            if isinstance(value, (int, float)):
                lines.append(f"| {split} | {name} | {_fmt(value)} |")
    comparison = compare(metrics)
    if comparison:
        lines += ["", "Against a classical baseline fitted on the same train split in seconds:", "", comparison.english() + "."]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        f"from transformers import AutoTokenizer, {auto_class}" if config.method.kind == "full"
        else f"from peft import {auto_class.replace('AutoModel', 'AutoPeftModel')}  # LoRA adapter on the base model",
        "```",
        "",
        f"or `studio predict {run_dir.name} --input texts.csv`. The full configuration is in `config.yaml`; "
        "rerun it with `studio train config.yaml`.",
        "",
    ]
    RunDir(run_dir).card.write_text("\n".join(lines), encoding="utf-8")
