"""Fast training settings chosen from the hardware and the data, each overridable in the config.

The worker resolves every 'auto' (None) choice here, on the machine that actually trains, then
reports the result in a ``settings`` event and ``settings.json`` in the run directory.
"""

from __future__ import annotations

import importlib.util
import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Callable

from studio.config import RunConfig

# Below this many tokens a step, bf16 runs no faster than fp32 on a GPU: the GPU waits on
# Python (kernel launches), and the casts only add work.
BF16_MIN_TOKENS_PER_STEP = 4096
# A CPU with AMX bf16 units (Intel Sapphire Rapids and later) runs bf16 matmuls faster, but only
# once they are big: measured with BERT shapes, 1.2-2x faster from 1k tokens a step and a hidden
# size of 128; slower below (the casts cost more than the matmuls save).
CPU_BF16_MIN_TOKENS_PER_STEP = 1024
CPU_BF16_MIN_HIDDEN = 128
# Length grouping pays when lengths vary: a coefficient of variation above this.
VARIED_LENGTHS_CV = 0.25
# Token budgets tried for a GPU step, largest first. Past ~16k tokens a step the GPU is busy
# and a bigger batch only means fewer, larger optimizer steps.
TOKEN_BUDGETS = (16384, 8192, 4096)
# Share of GPU memory the estimate may fill when the batch is grown (the estimate is rough,
# and the allocator fragments).
BUDGET_MEMORY_SHARE = 0.7
# A batch never grows past this many examples, nor so far that a run takes fewer optimizer
# steps than this (small datasets learn better from more, smaller steps).
MAX_GROWN_BATCH = 128
MIN_OPTIMIZER_STEPS = 100
# Gradient checkpointing goes on by itself when the estimate passes this share of GPU memory.
CHECKPOINTING_MEMORY_SHARE = 0.9
# Packed rows are padded to a multiple of this, so compiled attention kernels see few shapes.
PACK_MULTIPLE = 128

# How a run's peak memory was measured (the ``memory`` event's ``measured``): the GPU allocator's
# peak, or on a CPU the process's peak above what it held before the model was loaded.
MEASURED_GPU = "gpu_allocator"
MEASURED_CPU = "process_above_start"

# (batch_size, tokens per example, gradient checkpointing) -> estimated peak GiB, or None when unknown.
Estimator = Callable[[int, int, bool], "float | None"]


@dataclass
class Hardware:
    cuda: bool
    bf16: bool
    tf32: bool
    memory_gib: float | None
    name: str
    allocator: str = "glibc"
    """A CPU run's malloc (``studio.allocator``): the memory estimate counts what it keeps."""

    @classmethod
    def detect(cls, device_choice: str = "auto") -> "Hardware":
        import torch

        if device_choice == "cpu" or not torch.cuda.is_available():
            from studio.allocator import running_allocator

            return cls(False, cpu_has_fast_bf16(), False, None, "cpu", running_allocator())
        props = torch.cuda.get_device_properties(0)
        return cls(True, torch.cuda.is_bf16_supported(), props.major >= 8, props.total_memory / 1024**3, props.name)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX tiles and AVX-512 bf16)."""
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return all(check is not None and check() for check in checks)


@dataclass
class SpeedSettings:
    device: str
    precision: str
    tf32: bool
    group_by_length: bool
    dataloader_workers: int
    optimizer: str
    gradient_checkpointing: bool
    compile: bool
    batch_size: int = 0
    packing: bool = False
    attention: str | None = None
    liger: bool = False
    estimated_peak_gib: float | None = None
    device_memory_gib: float | None = None
    allocator: str | None = None
    """A CPU run's malloc: 'jemalloc' or 'glibc' (``studio.allocator``); None on a GPU."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def packing_attention(cuda: bool) -> str | None:
    """An attention kernel that keeps packed examples apart without a dense mask, or None.

    flash-attention's varlen kernel when installed, else PyTorch's flex attention (block-sparse
    mask, compiled). On a CPU flex attention has no backward pass, and packing gains nothing."""
    if not cuda:
        return None
    if importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    if importlib.util.find_spec("torch.nn.attention.flex_attention") is not None:
        return "flex_attention"
    return None


def liger_available() -> bool:
    return importlib.util.find_spec("liger_kernel") is not None


def memory_estimator(model_config: dict, config: RunConfig, hw: Hardware, task_kind: str) -> Estimator | None:
    """The one memory estimate of a run: the worker's speed choices and the plan shown before
    launch (``studio.planning``) both call it, so the page shows the number the worker records.
    None when the backbone's config.json has no usable shape."""
    from studio.models.estimate import Shape, estimate

    if not model_config or Shape.from_config(model_config) is None:
        return None
    lora_r = config.method.lora.r if config.method.kind in ("lora", "qlora") else None
    weight_bits = 4 if config.method.kind == "qlora" else None

    def estimator(batch_size: int, seq_len: int, checkpointing: bool) -> float | None:
        est = estimate(model_config, batch_size=batch_size, seq_len=seq_len, lora_r=lora_r, weight_bits=weight_bits,
                       lora_dropout=config.method.lora.dropout,
                       half_precision=hw.cuda and hw.bf16,
                       gradient_checkpointing=checkpointing, causal_lm=task_kind == "decoder",
                       device="cuda" if hw.cuda else "cpu", allocator=hw.allocator)
        return est.total_gib if est else None

    return estimator


def choose(config: RunConfig, hw: Hardware, lengths: list[int], model_config: dict, task_kind: str, causal_lm: bool) -> SpeedSettings:
    """The speed settings of a run on ``hw`` for training examples of ``lengths`` tokens: what the
    worker applies, and what a plan before launch expects it to apply."""
    from studio.models.estimate import Shape

    shape = Shape.from_config(model_config) if model_config else None
    return resolve(config, hw, lengths, memory_estimator(model_config, config, hw, task_kind), causal_lm=causal_lm,
                   n_train=len(lengths), hidden_size=shape.hidden if shape else None)


def resolve(config: RunConfig, hw: Hardware, lengths: list[int], estimator: Estimator | None = None, *,
            causal_lm: bool = False, n_train: int | None = None, hidden_size: int | None = None) -> SpeedSettings:
    t = config.training
    mean_len = statistics.mean(lengths) if lengths else float(t.max_length or 128)
    longest = max(lengths) if lengths else (t.max_length or 128)

    attention = None if t.attention == "auto" else t.attention
    if t.packing is not None:
        packing = t.packing and causal_lm
    else:
        packing = causal_lm and packing_attention(hw.cuda) is not None
    if packing and attention is None:
        attention = packing_attention(hw.cuda) or "sdpa"  # sdpa packs correctly, with a dense mask

    def step_tokens(batch: int) -> int:
        """Tokens one step holds at worst: a packed row is ~the batch's total; a padded batch
        is as long as its longest example."""
        return int(batch * mean_len * 1.25) if packing else batch * longest

    def estimate_gib(batch: int, checkpointing: bool = False) -> float | None:
        return estimator(batch, math.ceil(step_tokens(batch) / batch), checkpointing) if estimator else None

    def fits(batch: int, share: float) -> bool:
        gib = estimate_gib(batch)
        return gib is None or not hw.memory_gib or gib <= share * hw.memory_gib

    batch = t.batch_size or 8
    if hw.cuda and t.batch_tokens != 0:
        budgets = (t.batch_tokens,) if t.batch_tokens else TOKEN_BUDGETS
        limit = MAX_GROWN_BATCH
        if not t.max_steps and n_train:
            limit = min(limit, max(batch, int(n_train * (t.epochs or 1) / (MIN_OPTIMIZER_STEPS * t.gradient_accumulation))))
        for budget in budgets:
            grown = min(limit, int(budget / mean_len))
            if grown > batch and (t.batch_tokens or fits(grown, BUDGET_MEMORY_SHARE)):
                batch = grown
                break

    tokens_per_step = batch * mean_len
    if t.precision != "auto":
        precision = t.precision if hw.cuda or (t.precision == "bf16" and hw.bf16) else "fp32"
    elif hw.cuda and tokens_per_step >= BF16_MIN_TOKENS_PER_STEP:
        precision = "bf16" if hw.bf16 else "fp16"
    elif (not hw.cuda and hw.bf16 and tokens_per_step >= CPU_BF16_MIN_TOKENS_PER_STEP
          and (hidden_size or 0) >= CPU_BF16_MIN_HIDDEN):
        precision = "bf16"
    else:
        precision = "fp32"
    varied = len(lengths) > 1 and statistics.pstdev(lengths) / max(1.0, mean_len) > VARIED_LENGTHS_CV
    peak_gib = estimate_gib(batch)
    checkpointing = t.gradient_checkpointing
    if checkpointing is None:
        checkpointing = bool(hw.memory_gib and peak_gib and peak_gib > CHECKPOINTING_MEMORY_SHARE * hw.memory_gib)
    if checkpointing:
        peak_gib = estimate_gib(batch, True)
    liger = (hw.cuda and causal_lm and liger_available()) if t.liger is None else bool(t.liger)
    return SpeedSettings(
        device="cuda" if hw.cuda else "cpu",
        precision=precision,
        tf32=hw.tf32 if t.tf32 is None else (t.tf32 and hw.tf32),
        # A packed row has no padding to save, and random order trains better.
        group_by_length=(varied and not packing) if t.group_by_length is None else t.group_by_length,
        dataloader_workers=(4 if hw.cuda else 0) if t.dataloader_workers is None else t.dataloader_workers,
        optimizer="adamw_torch_fused" if t.optimizer == "auto" else t.optimizer,
        gradient_checkpointing=checkpointing,
        compile=t.compile,
        batch_size=batch,
        packing=packing,
        attention=attention,
        liger=liger,
        estimated_peak_gib=round(peak_gib, 6) if peak_gib else None,
        device_memory_gib=round(hw.memory_gib, 3) if hw.memory_gib else None,
        allocator=None if hw.cuda else hw.allocator,
    )


# A run's settings as its summary reads them, one part each: in English here (the CLI, the model
# card); the page shows the same parts in its language (catalogue keys "speed.<part>").
SUMMARY = {
    "precision": "{precision}",
    "batch": "batch {batch}",
    "packed": "packed rows ({attention})",
    "length_grouped": "length-grouped batches",
    "tf32": "TF32",
    "optimizer": "{optimizer}",
    "workers": "{workers} loader workers",
    "checkpointing": "gradient checkpointing",
    "liger": "Liger kernels",
    "compile": "torch.compile",
    "jemalloc": "jemalloc",
}


def summary_parts(settings: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The choices of a ``settings`` event (or settings.json) worth a reader's eye, as (part, values)."""
    parts: list[tuple[str, dict[str, Any]]] = [("precision", {"precision": settings.get("precision", "fp32")})]
    if settings.get("batch_size"):
        parts.append(("batch", {"batch": settings["batch_size"]}))
    if settings.get("packing"):
        parts.append(("packed", {"attention": settings.get("attention") or "sdpa"}))
    elif settings.get("group_by_length"):
        parts.append(("length_grouped", {}))
    if settings.get("tf32"):
        parts.append(("tf32", {}))
    if settings.get("optimizer"):
        parts.append(("optimizer", {"optimizer": settings["optimizer"]}))
    if settings.get("dataloader_workers"):
        parts.append(("workers", {"workers": settings["dataloader_workers"]}))
    for flag, part in (("gradient_checkpointing", "checkpointing"), ("liger", "liger"), ("compile", "compile")):
        if settings.get(flag):
            parts.append((part, {}))
    if settings.get("allocator") == "jemalloc":
        parts.append(("jemalloc", {}))
    return parts


def describe(settings: dict[str, Any]) -> str:
    """The settings' summary in English: 'bf16 · batch 46 · packed rows (flex_attention) · ...'."""
    return " · ".join(SUMMARY[part].format(**values) for part, values in summary_parts(settings))


# Below this estimate a share says nothing: the runtime's fixed costs (allocator arenas, kernel
# workspaces: tens of MB) dwarf a tiny model's weights and activations.
MEMORY_GAP_MIN_GIB = 0.25


def memory_gap(estimated_gib: float | None, peak_gib: float | None) -> float | None:
    """How far the measured peak is from the estimate, as a share of the estimate (+0.1: 10% above)."""
    if not estimated_gib or estimated_gib < MEMORY_GAP_MIN_GIB or peak_gib is None:
        return None
    return (peak_gib - estimated_gib) / estimated_gib


def describe_memory(peak_gib: float | None, estimated_gib: float | None, on_gpu: bool) -> str:
    """The measured peak beside the estimate, in English: 'peak 67.4 GB on the GPU (estimated 76.4 GB, -12%)'."""
    from studio.models.estimate import memory_text

    where = "on the GPU" if on_gpu else "above the process's start"
    text = f"peak {memory_text(peak_gib)} {where}" if peak_gib is not None else "peak not measured"
    gap = memory_gap(estimated_gib, peak_gib)
    if estimated_gib:
        text += f" (estimated {memory_text(estimated_gib)}" + (f", {gap:+.0%})" if gap is not None else ")")
    return text


def trainer_kwargs(settings: SpeedSettings, known: set[str]) -> dict[str, Any]:
    """TrainingArguments for the settings, in the names this transformers release knows."""
    kwargs: dict[str, Any] = {
        "bf16": settings.precision == "bf16",
        "fp16": settings.precision == "fp16",
        "use_cpu": settings.device == "cpu",  # the Trainer takes bf16 on a CPU only when told it is one
        "optim": settings.optimizer,
        "dataloader_num_workers": settings.dataloader_workers,
        "dataloader_pin_memory": settings.device == "cuda",
        "gradient_checkpointing": settings.gradient_checkpointing,
        "torch_compile": settings.compile,
        "use_liger_kernel": settings.liger,
    }
    if settings.batch_size:
        kwargs["per_device_train_batch_size"] = settings.batch_size
    if settings.tf32:
        kwargs["tf32"] = True
    # Renamed in later 5.x releases (the old name still works there, with a warning).
    kwargs["activation_checkpointing" if "activation_checkpointing" in known else "gradient_checkpointing"] = kwargs.pop("gradient_checkpointing")
    if "train_sampling_strategy" in known:  # transformers >= 5
        kwargs["train_sampling_strategy"] = "group_by_length" if settings.group_by_length else "random"
    else:
        kwargs["group_by_length"] = settings.group_by_length
    return {k: v for k, v in kwargs.items() if k in known}


class PackedCausalCollator:
    """Padding-free batches for causal LMs: the batch's examples end to end in one row.

    ``position_ids`` restart at 0 for each example, which is how the attention kernels (flash
    varlen, flex, or sdpa with a block-diagonal mask) tell examples apart; no attention mask is
    sent. The first label of every example is -100, so no example learns to predict the next
    one's first token. The row is padded to a multiple of ``PACK_MULTIPLE`` with a separate
    dummy segment (labels -100) so compiled kernels see few distinct lengths.
    """

    def __init__(self, pad_token_id: int, multiple: int = PACK_MULTIPLE):
        self.pad_token_id = pad_token_id
        self.multiple = multiple

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for f in features:
            n = len(f["input_ids"])
            ids += list(f["input_ids"])
            labels += [-100] + list(f["labels"])[1:n]
            positions += range(n)
        pad = -len(ids) % self.multiple if self.multiple else 0
        ids += [self.pad_token_id] * pad
        labels += [-100] * pad
        positions += range(pad)
        as_row = lambda values: torch.tensor([values], dtype=torch.long)  # noqa: E731
        return {"input_ids": as_row(ids), "labels": as_row(labels), "position_ids": as_row(positions)}
