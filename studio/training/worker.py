"""The training worker: one OS process per run, ``python -m studio.worker <run_dir>``.

It reads only the run directory (config.yaml, task.json, data/) and writes only into it:
events.jsonl as it goes, then model/, predictions_*.jsonl, metrics.json and README.md.
Longer than 500 lines: the run's whole sequence reads top to bottom here; each step's substance
lives elsewhere (tasks, speed, scoring, callbacks, modelcard).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from studio.config import RunConfig, evaluation_schedule, optimizer_steps, save_schedule
from studio.data.loading import read_splits
from studio.errors import ConfigError, StudioError
from studio.models.padding import align_pad_token
from studio.tasks.base import Task, TaskMeta, get_task
from studio.tasks.baseline import compare
from studio.runs import RunDir
from studio.runs.event_types import Error, Eval, Event, Log, Memory, Settings, Status
from studio.runs.events import EventLog
from studio.training.scoring import StopRequested, evaluated_loss, score_split
from studio.training.speed import MEASURED_CPU, MEASURED_GPU



def classify_failure(error: BaseException) -> tuple[str, str | None]:
    """Map an exception to (kind, hint) so users see what to change, not a traceback."""
    if isinstance(error, StudioError):
        return error.kind, error.hint
    text = f"{type(error).__name__}: {error}".lower()
    if "out of memory" in text or isinstance(error, MemoryError):
        return "oom", ("lower training.batch_size (and raise training.gradient_accumulation to keep the effective batch), "
                       "use method.kind: lora, or a shorter training.max_length")
    if (isinstance(error, OSError) and getattr(error, "errno", None) == 28) or "no space left" in text:
        return "disk_full", "free disk space in the workspace (delete old runs) and resume the run"
    return "internal", None


def eval_batch_size(config: RunConfig, batch_size: int | None) -> int:
    """Rows an evaluation pass takes at once. No gradients, so more than training's, except for a
    language-model head: its vocabulary-sized logits (and the loss's fp32 copy of them) grow with
    every row and would make an evaluation the run's memory peak (at 32 rows of 112 tokens, a
    49k vocabulary's logits are 0.7 GB a copy); it keeps the training batch, which the memory plan fits."""
    batch_size = batch_size or 8
    if get_task(config.task.name).peft_task_type in ("CAUSAL_LM", "SEQ_2_SEQ_LM"):
        return batch_size
    return max(batch_size, 32)


def training_arguments(config: RunConfig, run_dir: Path, n_train: int, has_validation: bool, metric: str, greater: bool, settings=None):
    import inspect

    from transformers import TrainingArguments

    t = config.training
    batch_size = settings.batch_size if settings is not None and settings.batch_size else t.batch_size
    steps_per_epoch = optimizer_steps(n_train, batch_size, t.gradient_accumulation, 1, None)
    total = optimizer_steps(n_train, batch_size, t.gradient_accumulation, t.epochs, t.max_steps)
    eval_strategy, eval_steps = evaluation_schedule(t, steps_per_epoch)
    evaluate = has_validation and eval_strategy != "no"
    save = save_schedule(t, evaluate)
    kwargs: dict[str, Any] = dict(
        output_dir=str(RunDir(run_dir).checkpoints),
        num_train_epochs=t.epochs or 1.0,
        max_steps=t.max_steps or -1,
        learning_rate=t.learning_rate,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=eval_batch_size(config, batch_size),
        gradient_accumulation_steps=t.gradient_accumulation,
        warmup_steps=t.warmup,
        weight_decay=t.weight_decay,
        lr_scheduler_type=t.lr_scheduler,
        eval_strategy=eval_strategy if evaluate else "no",
        eval_steps=eval_steps,
        save_strategy=save,
        save_steps=eval_steps if save == "steps" and eval_steps else 500,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=evaluate and save in (eval_strategy, "best"),
        metric_for_best_model=metric if evaluate else None,
        greater_is_better=greater if evaluate else None,
        logging_steps=t.logging_steps or max(1, min(50, total // 50)),
        logging_first_step=True,
        seed=t.seed,
        data_seed=t.seed,
        report_to="none",
        disable_tqdm=True,
        use_cpu=t.device == "cpu",
        # Across processes the Trainer scales each rank's loss by their number, for losses that
        # divide by the tokens of the whole global batch; a sequence classifier's loss is the
        # mean over its own rows and ignores that count, so it would train (and log) at twice
        # the loss on two GPUs: its ranks are averaged as they are instead.
        average_tokens_across_devices=get_task(config.task.name).peft_task_type != "SEQ_CLS",
    )
    # Keep only arguments this transformers release knows (the range we support spans several).
    known = set(inspect.signature(TrainingArguments.__init__).parameters)
    if settings is not None:
        from studio.training.speed import trainer_kwargs

        kwargs.update(trainer_kwargs(settings, known))
    return TrainingArguments(**{k: v for k, v in kwargs.items() if k in known}), total


# Metrics where lower is better; anything else a user names is taken as higher-is-better.
LOWER_IS_BETTER = {"loss", "mse", "mae", "rmse", "hamming_loss", "perplexity"}


def selection_metric(config: RunConfig, task: Task, meta: TaskMeta) -> tuple[str, bool]:
    """The validation metric for early stopping and the best checkpoint (config or task default)."""
    if config.training.metric == "auto":
        return task.metric_names(meta)
    return config.training.metric, config.training.metric not in LOWER_IS_BETTER


def apply_lora(model, config: RunConfig, task_type: str):
    from peft import LoraConfig, get_peft_model

    lora = config.method.lora
    targets = "all-linear" if lora.target_modules == "auto" else lora.target_modules
    extra = {}
    if targets == "all-linear" and task_type == "TOKEN_CLS":
        # peft keeps a new classification head out of "all-linear" for SEQ_CLS only; the token
        # head must be left out too, so that it is trained in full (peft's modules_to_save).
        extra["exclude_modules"] = ["classifier", "score"]
    peft_config = LoraConfig(task_type=task_type, r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                             target_modules=targets, **extra)
    return get_peft_model(model, peft_config)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _log_tail(run_dir: Path, lines: int = 20) -> list[str]:
    try:
        return RunDir(run_dir).log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


class _QuietLog:
    """The events log of a non-zero rank under torchrun: rank 0 alone speaks for the run."""

    def write(self, event: Event) -> Event:
        return event

    def close(self) -> None:
        pass


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def run(run_dir: Path, *, resume: bool = False) -> int:
    run_dir = Path(run_dir).resolve()
    events = EventLog(run_dir) if is_main_process() else _QuietLog()
    events.write(Status(status="starting", pid=os.getpid()))
    try:
        from studio.training.final_score import SCORE_ONLY_ENV, score_only

        if os.environ.get(SCORE_ONLY_ENV):  # a finished model scored on one split, nothing trained
            return score_only(run_dir, events, os.environ[SCORE_ONLY_ENV])
        return _train(run_dir, events, resume)
    except StopRequested as stop:  # asked while the trained model was being scored
        RunDir(run_dir).clear_stop()
        events.write(Status(status="cancelled", reason=str(stop)))
        return 0
    except KeyboardInterrupt:
        events.write(Status(status="cancelled"))
        return 130
    except BaseException as error:  # noqa: BLE001 - every failure must reach the events log
        kind, hint = classify_failure(error)
        traceback.print_exc()
        sys.stderr.flush()
        message = error.message if isinstance(error, StudioError) else f"{type(error).__name__}: {error}"
        events.write(Error(error_kind=kind, message=message, hint=hint, log_tail=_log_tail(run_dir)))
        events.write(Status(status="failed", error_kind=kind))
        return 2
    finally:
        events.close()


def scores_base_model(config: RunConfig, task: Task) -> bool:
    """Whether the backbone is scored before fine-tuning: ``training.score_base_model`` when set,
    else the task's choice (generation, where the report compares the two)."""
    chosen = config.training.score_base_model
    return task.compare_with_base if chosen is None else chosen


def _train(run_dir: Path, events: EventLog, resume: bool) -> int:
    import torch
    from transformers import EarlyStoppingCallback, set_seed

    from studio.models.loading import load_tokenizer, model_folder
    from studio.models.resolve import resolve_backbone
    from studio.training.callbacks import EventsCallback

    folder = RunDir(run_dir)
    config = RunConfig.load(folder.config)
    task = get_task(config.task.name)
    meta = TaskMeta.from_dict(json.loads(folder.task.read_text(encoding="utf-8")))
    splits = read_splits(folder.data)
    set_seed(config.training.seed)

    cache = run_dir.parent.parent / "cache"
    backbone = resolve_backbone(config.model.backbone, kind=task.model_kind)
    path = model_folder(backbone, cache)
    tokenizer = load_tokenizer(path, config.model.trust_remote_code)
    task.prepare_tokenizer(tokenizer, meta)
    max_length = config.training.max_length
    datasets = _tokenized_splits(run_dir, cache, config, task, meta, splits, tokenizer, path, events)
    metric, greater = selection_metric(config, task, meta)
    has_validation = "validation" in datasets and len(datasets["validation"]) > 0
    settings = _speed_settings(config, path, datasets["train"], task, meta)
    events.write(Settings(values=settings.to_dict()))

    _warn_if_too_big(settings, events)
    baseline_gib = _resident_gib()
    model = task.load_model(path, meta, config, **_model_kwargs(settings, config, meta))
    align_pad_token(model, tokenizer)
    if config.method.kind == "qlora":
        from peft import prepare_model_for_kbit_training

        # Norms and the output layer in fp32, inputs that carry gradients through the frozen 4-bit base.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=bool(settings.gradient_checkpointing))
    if config.method.kind in ("lora", "qlora"):
        model = apply_lora(model, config, task.peft_task_type)
    # No key/value cache while training: it is never used, and with it the model would not
    # look for packed examples in position_ids (they would attend to each other). Recent
    # Trainers switch it off themselves (TrainingArguments.use_cache); we do not rely on that.
    use_cache = getattr(model.config, "use_cache", None)
    if use_cache is not None:
        model.config.use_cache = False
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total_params = sum(p.numel() for p in model.parameters())
    if is_main_process():
        _write_json(folder.settings, settings.to_dict())
    args, total_steps = training_arguments(config, run_dir, len(datasets["train"]), has_validation, metric, greater, settings)
    progress = EventsCallback(events, run_dir)
    callbacks = [progress]
    patience = config.training.early_stopping_patience
    if patience and args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=patience))
    trainer = task.make_trainer(
        meta, config, tokenizer,
        model=model,
        args=args,
        train_dataset=datasets["train"],
        eval_dataset=datasets.get("validation") if has_validation else None,
        data_collator=_collator(settings, task, tokenizer, meta),
        compute_metrics=task.compute_metrics(meta) if has_validation else None,
        callbacks=callbacks,
    )
    device = str(next(model.parameters()).device)
    events.write(Status(
        status="running", device=device, total_steps=total_steps, parameters=total_params,
        trainable_parameters=trainable, train_examples=len(datasets["train"]),
        train_tokens=sum(len(ids) for ids in datasets["train"]["input_ids"]),
        torch_threads=torch.get_num_threads(),
    ))
    to_predict = task.prediction_rows(splits, meta)
    base_metrics: dict[str, Any] = {}
    if scores_base_model(config, task):
        # The same evaluation on the model before fine-tuning, so the report shows what training changed.
        for split in [s for s in ("validation", "test") if s in datasets and len(datasets[s])][-1:]:
            name = f"{split}_base"
            events.write(Log(step=0, message=f"scoring the base model on the {split} split (before fine-tuning)"))
            base_metrics[name] = _score_split(trainer, task, tokenizer, meta, max_length, datasets[split], to_predict.get(split), run_dir, name,
                                              events, progress)
            events.write(Eval(split=name, step=0, metrics=_numbers(base_metrics[name])))
    # A sweep's trials keep the test split for the best one alone: the baseline does not score it either.
    scored = {name: df for name, df in splits.items() if name != "test" or config.training.score_test}
    classical = fit_baseline(task, scored, meta, metric, events)
    checkpoint = None
    if resume:
        done = folder.complete_checkpoints()
        checkpoint = str(done[-1]) if done else None
        events.write(Log(step=0, message=f"resuming from {Path(checkpoint).name}" if checkpoint else "no complete checkpoint; starting over"))
    started = time.time()
    trainer.train(resume_from_checkpoint=checkpoint)
    stopped_early = early_stop(trainer, config, total_steps, metric) if not progress.stopped_by_request else None
    if stopped_early:
        events.write(Log(step=trainer.state.global_step, message=stopped_early["message"]))
    peak, measured = _peak_memory_gib(baseline_gib)
    events.write(Memory(step=trainer.state.global_step, peak_gib=peak, estimated_gib=settings.estimated_peak_gib, measured=measured))
    _ready_for_generation(trainer.model, use_cache, settings)
    if progress.stopped_by_request:
        folder.clear_stop()
        events.write(Status(status="cancelled", step=trainer.state.global_step))
        return 0

    model_dir = folder.model
    trainer.save_model(str(model_dir))  # every rank: the Trainer gathers sharded weights itself
    if is_main_process():
        tokenizer.save_pretrained(str(model_dir))
        _write_json(model_dir / "task.json", meta.to_dict())

    metrics: dict[str, Any] = {"headline": {"name": metric, "greater_is_better": greater}}
    for split in ("validation", "test"):
        if split not in datasets or len(datasets[split]) == 0:
            continue
        if split == "test" and not config.training.score_test:
            events.write(Log(step=trainer.state.global_step, message="the test split is not scored (training.score_test: false)"))
            continue
        events.write(Log(step=trainer.state.global_step, message=f"scoring the {split} split"))
        # The validation split was evaluated while training: on these weights, its loss is known.
        known = evaluated_loss(trainer) if split == "validation" else None
        metrics[split] = _score_split(trainer, task, tokenizer, meta, max_length, datasets[split], to_predict.get(split), run_dir, split,
                                      events, progress, known)
        events.write(Eval(split=split, step=trainer.state.global_step, metrics=_numbers(metrics[split])))
    metrics.update(base_metrics)
    if classical:
        metrics["baseline"] = classical
        comparison = compare(metrics)
        if comparison and not comparison.beaten:
            events.write(Log(step=trainer.state.global_step, message=comparison.english()))
    metrics["train"] = {"runtime_s": round(time.time() - started, 1), "global_step": trainer.state.global_step,
                        "best_checkpoint": Path(trainer.state.best_model_checkpoint).name if trainer.state.best_model_checkpoint else None,
                        "peak_memory_gib": peak, "estimated_peak_gib": settings.estimated_peak_gib}
    if stopped_early:
        metrics["train"]["stopped_early"] = stopped_early
    if not is_main_process():
        return 0
    _write_json(folder.metrics, metrics)
    from studio.training.modelcard import write_model_card

    write_model_card(run_dir, config, task, meta, metrics, backbone.display_name, settings.to_dict())
    _prune_checkpoints(run_dir, trainer.state.best_model_checkpoint)
    events.write(Status(status="completed", step=trainer.state.global_step,
                        headline={metric: metrics.get("test", metrics.get("validation", {})).get(metric)}))
    return 0


def early_stop(trainer, config: RunConfig, total_steps: int, metric: str) -> dict[str, Any] | None:
    """What early stopping did, when it ended the run before its ceiling: the epoch reached, the
    ceiling, the patience and the best score's step (the weights restored at the end)."""
    state, patience = trainer.state, config.training.early_stopping_patience
    if not patience or state.global_step >= total_steps:
        return None
    ceiling = f"{config.training.max_steps} steps" if config.training.max_steps else f"{config.training.epochs:g} epochs"
    best_step = getattr(state, "best_global_step", None)
    best = f"; the best, {metric} {state.best_metric:.4f} at step {best_step}, is kept" \
        if state.best_metric is not None and best_step else ""
    return {"epoch": round(state.epoch or 0, 2), "ceiling": ceiling, "patience": patience, "metric": metric,
            "best_step": best_step, "best": state.best_metric,
            "message": f"stopped at epoch {state.epoch or 0:.1f} of at most {ceiling}: validation {metric} did not "
                       f"improve for {patience} evaluations{best}"}


def fit_baseline(task: Task, splits, meta: TaskMeta, metric: str, events) -> dict[str, Any] | None:
    """The task's classical baseline (seconds, before training), logged at once so the page shows
    the bar the fine-tuned model has to clear; a baseline that fails never stops the run."""
    if not is_main_process():
        return None
    try:
        found = task.baseline(splits, meta)
    except Exception as error:  # noqa: BLE001 - a comparison, not the run
        events.write(Log(step=0, message=f"classical baseline skipped: {type(error).__name__}: {error}"))
        return None
    if found:
        scores = [f"{split} {metric} {found[split][metric]:.3f}" for split in ("validation", "test")
                  if isinstance((found.get(split) or {}).get(metric), (int, float))]
        floor = [f"majority class {found['majority'][split][metric]:.3f}" for split in ("test", "validation")
                 if isinstance(((found.get("majority") or {}).get(split) or {}).get(metric), (int, float))][:1]
        events.write(Log(step=0, message=f"classical baseline ({found['method']}, {found['seconds']:.1f} s): "
                                         + " · ".join(scores + floor)))
    return found


def is_causal_lm(task: Task, meta: TaskMeta) -> bool:
    return task.model_kind == "decoder" and meta.info.get("architecture", "causal") == "causal"


def _speed_settings(config: RunConfig, model_path: str, train_dataset, task: Task, meta: TaskMeta):
    """Resolve the automatic speed choices for this machine and this data (see training.speed)."""
    from studio.models.resolve import read_model_config
    from studio.training.speed import Hardware, choose

    lengths = [len(ids) for ids in train_dataset["input_ids"]]
    return choose(config, Hardware.detect(config.training.device), lengths, read_model_config(model_path), task.model_kind,
                  is_causal_lm(task, meta))


def _model_kwargs(settings, config: RunConfig, meta: TaskMeta) -> dict[str, Any]:
    """from_pretrained arguments the speed settings call for."""
    kwargs: dict[str, Any] = {}
    if settings.attention:
        kwargs["attn_implementation"] = settings.attention
    if config.method.kind == "qlora":
        kwargs.update(qlora_kwargs(settings.device))
    if (config.method.kind == "lora" and settings.precision == "bf16" and settings.device == "cuda"
            and meta.info.get("architecture") == "causal"):
        import torch

        # The frozen base needs no fp32 master copy: bf16 halves its memory and skips the casts.
        # peft keeps the trainable adapters in fp32.
        kwargs["dtype"] = torch.bfloat16
    return kwargs


def qlora_kwargs(device: str) -> dict[str, Any]:
    """from_pretrained arguments of QLoRA's base: 4-bit NF4 weights with double quantisation and
    bf16 compute (bitsandbytes, imported only here: a GPU extra). Without a CUDA GPU the run ends
    with the same refusal a submission gets (it may have been queued on another machine)."""
    import torch

    if device != "cuda" or not torch.cuda.is_available():
        raise ConfigError("method.kind qlora needs a CUDA GPU (its 4-bit base runs on bitsandbytes' GPU kernels), "
                          "and this run has none", hint="use method.kind: lora, or train on a machine with a GPU")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError("method.kind qlora needs the bitsandbytes package, which is not installed",
                          hint="pip install 'studio[gpu]' (or bitsandbytes) on the training machine, or use method.kind: lora") from None
    from transformers import BitsAndBytesConfig

    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=torch.bfloat16)
    return {"quantization_config": quantization, "dtype": torch.bfloat16,
            "device_map": {"": int(os.environ.get("LOCAL_RANK", "0"))}}


def _collator(settings, task: Task, tokenizer, meta: TaskMeta):
    if settings.packing:
        from studio.training.speed import PackedCausalCollator

        return PackedCausalCollator(tokenizer.pad_token_id)
    return task.collator(tokenizer, meta)


def _ready_for_generation(model, use_cache: bool | None, settings) -> None:
    """Undo training-only model settings before predictions: the key/value cache, and flex
    attention (compiled per shape, slow for token-by-token generation)."""
    if use_cache is not None:
        model.config.use_cache = use_cache
    if settings.attention == "flex_attention":
        try:
            model.set_attn_implementation("sdpa")
        except (AttributeError, ValueError) as error:
            print(f"kept flex attention for predictions ({error})", file=sys.stderr)


def _tokenized_splits(run_dir: Path, cache: Path, config: RunConfig, task: Task, meta: TaskMeta, splits, tokenizer,
                      model_path: str, events) -> dict[str, Any]:
    """Each split tokenized once per dataset and tokenizer (see training.token_cache)."""
    from studio.training.token_cache import cache_key, cached, tokenizer_fingerprint

    max_length = config.training.max_length
    tokenizer_id = tokenizer_fingerprint(tokenizer, model_path)
    datasets, hits = {}, []
    for name, df in splits.items():
        key = cache_key(split_file=RunDir(run_dir).data / f"{name}.jsonl", task=task.name, meta=meta.to_dict(),
                        max_length=max_length, tokenizer_id=tokenizer_id)
        datasets[name], hit = cached(cache / "tokenized", key, lambda df=df: task.tokenize(df, tokenizer, meta, max_length))
        if hit:
            hits.append(name)
    if hits:
        events.write(Log(step=0, message=f"tokenized data reused from the cache ({', '.join(hits)})"))
    return datasets


def _resident_gib() -> float:
    """Memory this process holds now (its resident set), in GiB."""
    import psutil

    return psutil.Process().memory_info().rss / 1024**3


def _peak_memory_gib(baseline_gib: float) -> tuple[float, str]:
    """Peak memory of the training, and how it was measured.

    On a GPU: the allocator's peak (tensors only, as the estimate counts them). On a CPU: the
    process's peak resident memory above what it held before the model was loaded, so the Python
    runtime and the libraries (half a gigabyte or more) are not taken for the training's."""
    import resource

    import torch

    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        return round(torch.cuda.max_memory_allocated() / 1024**3, 3), MEASURED_GPU
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    peak_gib = peak / 1024**3 if sys.platform == "darwin" else peak / 1024**2
    return round(max(0.0, peak_gib - baseline_gib), 3), MEASURED_CPU


def _warn_if_too_big(settings, events) -> None:
    """Say before loading the model when the estimate does not fit the GPU even with gradient
    checkpointing (the worker turns that on by itself when the estimate nears the memory)."""
    memory = settings.device_memory_gib
    if memory and settings.estimated_peak_gib and settings.estimated_peak_gib > memory:
        events.write(Log(step=0, message=(
            f"warning: this run is estimated to need {settings.estimated_peak_gib:.1f} GiB, more than the GPU's {memory:.1f} GiB; "
            "it may run out of memory (lower training.batch_size or training.max_length, or use method.kind: lora)")))


def _score_split(trainer, task: Task, tokenizer, meta: TaskMeta, max_length: int, dataset, rows, run_dir: Path, name: str,
                 events, callback, known_loss: float | None = None) -> dict[str, Any]:
    """The loss on a tokenized split (plus what a task derives from it, e.g. perplexity), then
    predictions for ``rows`` (None: loss only) written to predictions_<name>.jsonl, and the task's
    metrics of them: one pass over the split where the task allows it (see training.scoring)."""
    return score_split(trainer, task, tokenizer, meta, max_length, dataset, rows, run_dir, name, events=events,
                       callback=callback, known_loss=known_loss, main=is_main_process())


def _numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def _prune_checkpoints(run_dir: Path, best: str | None) -> None:
    """Keep the best and the last complete checkpoint; drop the rest (they are large)."""
    folder = RunDir(run_dir)
    done = folder.complete_checkpoints()
    keep = {done[-1].resolve()} if done else set()
    if best:
        keep.add(Path(best).resolve())
    for path in folder.checkpoints.glob("checkpoint-*"):
        if path.resolve() not in keep:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m studio.worker", description="Train one prepared run directory.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return run(args.run_dir, resume=args.resume)
