"""Everything checked before a run directory exists.

``prepare_run`` validates the config, finds the backbone, reads and validates the data and
resolves the preset (without importing torch: it runs in the web server at every submission).
Only when all of that succeeds is the run directory created, in one rename,
holding the resolved config and the exact splits; a bad file or value leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from studio.config import RunConfig, apply_preset
from studio.data.loading import load_task_data, write_splits
from studio.errors import ConfigError
from studio.gpus import detected_gpus
from studio.models.coverage import Coverage, Fit, assess
from studio.models.resolve import ResolvedBackbone, offline_choices, resolve_backbone
from studio.runs import RunDir
from studio.settings import Settings, SettingsStore
from studio.tasks.base import Problem, get_task
from studio.workspace import Workspace


@dataclass
class PreparedRun:
    run_id: str
    run_dir: Path
    config: RunConfig
    backbone: ResolvedBackbone
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: dict = field(default_factory=dict)


def check_backbone_fits(task, name: str) -> None:
    """A catalog backbone of a kind the task does not train is refused before it is looked for
    (no point in finding or downloading it)."""
    from studio.models import catalog

    entry = catalog.find(name)
    if entry and entry.kind not in task.backbone_kinds:
        raise ConfigError(
            f"backbone {entry.name} is a {entry.kind} model; {task.title} trains "
            f"{' or '.join(task.backbone_kinds)} models",
            hint="pick a backbone listed for this task (studio models)",
        )


def prepare_run(config: RunConfig, workspace: Workspace, *, allowed_model_roots: list[Path] | None = None,
                settings: Settings | None = None) -> PreparedRun:
    """``settings``: the workspace's (read from it when not given): they bound the data files."""
    from studio.data.profile import auto_max_length, model_limit, profile
    from studio.data.readers import read_limits
    from studio.models.loading import tokenizer_folder
    from studio.training.lengths import count_tokens

    task = get_task(config.task.name)
    if config.training.device == "cuda" and not detected_gpus():
        raise ConfigError("bad value for 'training.device': cuda was asked for but no GPU is visible; use auto or cpu")
    check_method_fits(config)
    config, start = start_from_run(config, task, workspace)
    check_backbone_fits(task, config.model.backbone)
    # A finished run's model (or its backbone) was allowed when that run was submitted.
    backbone = resolve_backbone(config.model.backbone, kind=task.model_kind,
                                allowed_roots=None if start else allowed_model_roots)
    limits = read_limits(settings or SettingsStore(workspace.root).load())
    data = load_task_data(config, task, workspace.datasets, limits=limits)
    data.meta.info.update(start)

    # Counted without importing torch here (this runs in the web server); a GGUF backbone is
    # converted by its worker, not at submit time.
    folder = tokenizer_folder(backbone, workspace.cache)
    counts = count_tokens(task, data.splits, folder, config.model.trust_remote_code)
    lengths = counts.lengths
    fit = check_backbone_reads(config, task, backbone, counts)
    problems = data.problems + ([Problem("warning" if fit.level != "note" else "info", fit.message())]
                                if fit and fit.level != "ok" else [])
    resolved = apply_preset(config, backbone.parameters)
    model_max = model_limit(counts.model_max_length)
    if resolved.training.max_length is None:
        resolved.training.max_length = auto_max_length(lengths.get("train"), counts.model_max_length)
    elif resolved.training.max_length > model_max:
        raise ConfigError(
            f"bad value for 'training.max_length': {resolved.training.max_length} is more than "
            f"{backbone.display_name} supports ({model_max})"
        )
    stats = profile(data.splits, "label" if "label" in data.splits["train"] else None, lengths, resolved.training.max_length)

    run_id = workspace.new_run_id(resolved.name or Path(resolved.data.train or resolved.data.dataset or "run").stem)
    final = workspace.runs / run_id
    staging = workspace.runs / f".staging-{run_id}"
    staging.mkdir(parents=True)
    try:
        folder = RunDir(staging)
        resolved.save(folder.config)
        write_splits(data.splits, folder.data)
        folder.task.write_text(json.dumps(data.meta.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        folder.profile.write_text(json.dumps({
            **stats,
            "notes": data.notes,
            "problems": [p.__dict__ for p in problems],
            "backbone": {"path": backbone.path, "source": backbone.source, "parameters": backbone.parameters,
                         "coverage": counts.coverage},
        }, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PreparedRun(run_id, final, resolved, backbone, problems, data.notes, stats)


def check_method_fits(config: RunConfig) -> None:
    """QLoRA's 4-bit base (bitsandbytes NF4) has kernels for CUDA GPUs only: refused at submit on a
    machine without one (or a run sent to the CPU), before anything is written."""
    if config.method.kind != "qlora":
        return
    if config.training.device == "cpu" or not detected_gpus():
        where = "training.device is cpu" if config.training.device == "cpu" else "no CUDA GPU is visible on this machine"
        raise ConfigError(
            f"method.kind qlora needs a CUDA GPU (its 4-bit base runs on bitsandbytes' GPU kernels), and {where}",
            hint="use method.kind: lora (the same adapters on a full-precision base), or train on a machine with a GPU")


def start_from_run(config: RunConfig, task, workspace: Workspace) -> tuple[RunConfig, dict]:
    """``model.from_run``: a finished run's model becomes the backbone (a copy of the config says
    so), or, for a LoRA run, its backbone with the adapter the task merges before training
    (``start_adapter`` in the new run's task.json). Nothing to do without ``from_run``."""
    run_id = (config.model.from_run or "").strip()
    if not run_id:
        return config, {}
    folder = RunDir(workspace.runs / run_id)
    if "/" in run_id or run_id.startswith(".") or not folder.path.is_dir():
        raise ConfigError(f"bad value for 'model.from_run': there is no run {run_id!r} in this workspace",
                          hint="give the id of a finished run (studio runs list)")
    if not folder.has_model():
        raise ConfigError(f"bad value for 'model.from_run': run {run_id} has no finished model; it must have completed")
    earlier = json.loads((folder.model / "task.json").read_text(encoding="utf-8"))
    if task.model_kind == "decoder" and earlier.get("architecture") != "causal":
        raise ConfigError(f"bad value for 'model.from_run': run {run_id} ({earlier.get('task')}) has no decoder-only "
                          f"language model to continue from; {task.title} starts from a generation run's model")
    resolved = RunConfig.from_dict(config.to_dict())
    start = {"from_run": run_id}
    if (folder.model / "adapter_config.json").exists():
        resolved.model.backbone = RunConfig.load(folder.config).model.backbone
        start["start_adapter"] = str(folder.model.resolve())
    else:
        resolved.model.backbone = str(folder.model.resolve())
    return resolved, start


def check_backbone_reads(config: RunConfig, task, backbone: ResolvedBackbone, counts) -> Fit | None:
    """How well the backbone reads a sample of the training rows; past the refusal threshold the
    run is refused unless ``model.allow_unreadable`` insists."""
    if not counts.coverage:
        return None
    fit = assess(Coverage.from_dict(counts.coverage), backbone.entry, backbone.display_name,
                 task.backbone_kinds, offline_choices())
    if fit.level == "refuse" and not config.model.allow_unreadable:
        raise ConfigError(fit.message())
    return fit
