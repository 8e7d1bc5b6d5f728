"""What a plan needs, gathered from a workspace without downloading or loading a model: the
backbone's config.json and size, the data's rows and token lengths, this machine's devices.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.config import RunConfig
from studio.errors import StudioError
from studio.training.speed import Hardware

if TYPE_CHECKING:
    from studio.planning.plan import Plan
    from studio.workspace import Workspace


@dataclass
class BackboneInfo:
    name: str
    model_config: dict
    """Its config.json ({} when none is on this machine yet)."""
    parameters: int | None
    size: str | None = None
    """The catalog's size label ('22M'), for a backbone known by its size alone."""
    tokenizer: str | None = None
    """A folder holding its tokenizer, when one is on this machine."""


@dataclass
class DataSize:
    train_rows: int | None
    validation_rows: int = 0
    test_rows: int = 0
    lengths: list[int] | None = None
    """Untruncated token count of each training row (None when the tokenizer is not here)."""
    model_max_length: int | None = None
    coverage: dict | None = None
    """What the tokenizer could not read of a sample of the training rows (``Coverage.to_dict()``)."""


@dataclass
class Machine:
    cuda: bool
    gpus: int = 0
    memory_gib: float | None = None
    cpu_cores: int = 1
    """Cores one CPU run gets (the machine's shared among the CPU slots)."""
    name: str = "cpu"

    def hardware(self) -> Hardware:
        # bf16 and TF32 are taken as there on a GPU (every one a studio trains on in practice is
        # Ampere or newer); a CPU's bf16 units change its speed only, never the memory estimate.
        from studio.allocator import GLIBC, worker_allocator

        return Hardware(self.cuda, self.cuda, self.cuda, self.memory_gib if self.cuda else None, self.name,
                        GLIBC if self.cuda else worker_allocator())


def machine(config: RunConfig, gpus: list[str] | tuple[str, ...], cpu_slots: int) -> Machine:
    """Where this config would train here: the GPUs (the smallest one's memory), else a CPU slot."""
    from studio import gpus as gpu_info

    cores = max(1, (os.cpu_count() or 1) // max(1, cpu_slots))
    if gpus and config.training.device != "cpu":
        return Machine(True, len(gpus), gpu_info.memory_gib(list(gpus)), cores, "cuda")
    return Machine(False, 0, None, cores, "cpu")


def backbone_info(name: str, model_roots: list[Path] | None, cache: Path) -> BackboneInfo | None:
    """The backbone as this machine has it, or None when neither its config.json nor the catalog
    knows it. Raises ``ModelNotAvailableError`` for a folder outside the allowed ones, the same
    answer whether or not it exists (as a launch does)."""
    from studio.models import catalog
    from studio.models.loading import tokenizer_folder
    from studio.models.resolve import (ResolvedBackbone, bundled_path, cached_snapshot, estimate_parameters, local_folder,
                                       read_model_config)

    entry = catalog.find(name)
    local = local_folder(name, model_roots)
    folder: Path | None = None
    tokenizer: str | None = None
    if local is not None and local.is_dir():
        folder = local
    elif entry is not None or local is None:
        snapshot = cached_snapshot(entry.hub_id if entry else name)
        if snapshot:
            folder = Path(snapshot)
        elif entry and entry.bundled and bundled_path(entry):
            path, gguf = bundled_path(entry)
            converted = cache / "models" / entry.name
            folder = converted if (converted / "config.json").exists() else Path(path)
            try:
                tokenizer = tokenizer_folder(ResolvedBackbone(path, "bundled", entry, entry.parameters, None, gguf_file=gguf),
                                             cache)
            except Exception:  # noqa: BLE001 - no tokenizer yet: the plan goes without token lengths
                tokenizer = None
    model_config = read_model_config(folder) if folder else {}
    if not model_config and tokenizer:
        model_config = read_model_config(tokenizer)  # a GGUF not converted yet: its config.json sits with the tokenizer
    if not model_config and entry is None:
        return None
    if folder is not None and tokenizer is None and (folder / "config.json").exists():
        tokenizer = str(folder)
    parameters = entry.parameters if entry else estimate_parameters(model_config)
    return BackboneInfo(name, model_config, parameters, entry.size if entry else None, tokenizer)


_LENGTHS: dict[str, DataSize] = {}
_LENGTHS_LOCK = threading.Lock()
_LENGTHS_KEPT = 32


def _data_key(config: RunConfig, tokenizer: str | None, datasets: Path) -> str:
    """The data's identity for the cache: its files (and their size and time) and how it is read."""
    files = [getattr(config.data, split) for split in ("train", "validation", "test")]
    if config.data.dataset:
        files.append(str(datasets / config.data.dataset))
    stamps = []
    for path in files:
        try:
            stat = Path(path).stat() if path else None
            stamps.append([path, stat.st_size, stat.st_mtime_ns] if stat else None)
        except OSError:
            stamps.append([path])
    return json.dumps([dataclasses.asdict(config.task), dataclasses.asdict(config.data), tokenizer, stamps],
                      default=str, sort_keys=True)


def data_size(config: RunConfig, workspace: "Workspace", backbone: BackboneInfo, rows_hint: int | None = None) -> DataSize:
    """The splits' rows and the training rows' token counts, as a submission will find them
    (the same reading, splitting and tokenizer); what the files give when they cannot be read
    that way: ``rows_hint`` training rows. Kept per file version and tokenizer (a plan is asked
    for at every change of the form)."""
    from studio.data.loading import load_task_data
    from studio.data.readers import read_limits
    from studio.settings import SettingsStore
    from studio.tasks import get_task
    from studio.training.lengths import count_tokens

    key = _data_key(config, backbone.tokenizer, workspace.datasets)
    with _LENGTHS_LOCK:
        if key in _LENGTHS:
            return _LENGTHS[key]
    try:
        task = get_task(config.task.name)
        data = load_task_data(config, task, workspace.datasets, limits=read_limits(SettingsStore(workspace.root).load()))
    except StudioError:
        return DataSize(rows_hint)
    rows = {name: len(df) for name, df in data.splits.items()}
    size = DataSize(rows.get("train"), rows.get("validation", 0), rows.get("test", 0))
    if backbone.tokenizer:
        try:
            counts = count_tokens(task, {"train": data.splits["train"]}, backbone.tokenizer, config.model.trust_remote_code)
            size.lengths, size.model_max_length = counts.lengths["train"], counts.model_max_length
            size.coverage = counts.coverage
        except Exception:  # noqa: BLE001 - a tokenizer that cannot be read: rows only
            pass
    with _LENGTHS_LOCK:
        if len(_LENGTHS) >= _LENGTHS_KEPT:
            _LENGTHS.pop(next(iter(_LENGTHS)))
        _LENGTHS[key] = size
    return size


def run_flops(run_dir: Path, config: RunConfig, settings: dict[str, Any], model_roots: list[Path] | None,
              cache: Path) -> float | None:
    """The model's FLOPs of one step of a finished run (its batch, its mean length): with its
    measured step time, this machine's rate."""
    from studio.models.estimate import estimate
    from studio.planning.plan import PADDING_FACTOR, step_flops
    from studio.tasks import get_task

    try:
        info = backbone_info(config.model.backbone or "", model_roots, cache)
    except StudioError:
        return None
    if info is None or not info.model_config:
        return None
    seq_len = config.training.max_length or 128
    try:
        stats = json.loads((run_dir / "profile.json").read_text(encoding="utf-8"))
        mean = float(stats["lengths"]["train"]["mean"])
    except (OSError, ValueError, KeyError, TypeError):
        mean = seq_len
    step_len = mean if settings.get("packing") else min(seq_len, max(1, round(mean * PADDING_FACTOR)))
    est = estimate(info.model_config, batch_size=int(settings.get("batch_size") or config.training.batch_size or 8),
                   seq_len=int(step_len), lora_r=config.method.lora.r if config.method.kind in ("lora", "qlora") else None,
                   causal_lm=get_task(config.task.name).model_kind == "decoder", parameters=info.parameters,
                   device="cuda" if settings.get("device") == "cuda" else "cpu")
    return step_flops(est.flops_per_step, bool(settings.get("gradient_checkpointing"))) if est else None


def plan_for(config: RunConfig, workspace: "Workspace", *, model_roots: list[Path] | None, gpus: list[str] | tuple[str, ...],
             cpu_slots: int, rows_hint: int | None = None) -> "Plan | None":
    """The plan of ``config`` in this workspace on this machine (None when the backbone is unknown
    here); step times measured by the workspace's finished runs calibrate it."""
    from studio.planning.calibration import FILE_NAME, Calibration
    from studio.planning.plan import make_plan

    backbone = backbone_info(config.model.backbone or "", model_roots, workspace.cache)
    if backbone is None:
        return None
    data = data_size(config, workspace, backbone, rows_hint)
    calibration = Calibration.load(workspace.cache / FILE_NAME).refresh(
        workspace.runs, lambda run_dir, cfg, settings: run_flops(run_dir, cfg, settings, model_roots, workspace.cache))
    return make_plan(config, backbone, data, machine(config, gpus, cpu_slots), calibration)
