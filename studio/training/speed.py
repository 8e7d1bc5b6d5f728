"""Fast training settings chosen from the hardware and the data, each overridable in the config.

The worker resolves every 'auto' (None) choice here, on the machine that actually trains, then
reports the result in a ``settings`` event and ``settings.json`` in the run directory.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from studio.config import RunConfig

# Below this many tokens a step, bf16 runs no faster than fp32 on a GPU: the GPU waits on
# Python (kernel launches), and the casts only add work.
BF16_MIN_TOKENS_PER_STEP = 4096
# Length grouping pays when lengths vary: a coefficient of variation above this.
VARIED_LENGTHS_CV = 0.25


@dataclass
class Hardware:
    cuda: bool
    bf16: bool
    tf32: bool
    memory_gib: float | None
    name: str

    @classmethod
    def detect(cls, device_choice: str = "auto") -> "Hardware":
        import torch

        if device_choice == "cpu" or not torch.cuda.is_available():
            return cls(False, False, False, None, "cpu")
        props = torch.cuda.get_device_properties(0)
        return cls(True, torch.cuda.is_bf16_supported(), props.major >= 8, props.total_memory / 1024**3, props.name)


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
    estimated_peak_gib: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve(config: RunConfig, hw: Hardware, lengths: list[int], estimate_gib: float | None) -> SpeedSettings:
    t = config.training
    tokens_per_step = t.batch_size * (statistics.mean(lengths) if lengths else t.max_length)
    if t.precision != "auto":
        precision = t.precision if hw.cuda else "fp32"
    elif hw.cuda and tokens_per_step >= BF16_MIN_TOKENS_PER_STEP:
        precision = "bf16" if hw.bf16 else "fp16"
    else:
        precision = "fp32"
    varied = len(lengths) > 1 and statistics.pstdev(lengths) / max(1.0, statistics.mean(lengths)) > VARIED_LENGTHS_CV
    checkpointing = t.gradient_checkpointing
    if checkpointing is None:
        checkpointing = bool(hw.memory_gib and estimate_gib and estimate_gib > 0.9 * hw.memory_gib)
    return SpeedSettings(
        device="cuda" if hw.cuda else "cpu",
        precision=precision,
        tf32=hw.tf32 if t.tf32 is None else (t.tf32 and hw.tf32),
        group_by_length=varied if t.group_by_length is None else t.group_by_length,
        dataloader_workers=(4 if hw.cuda else 0) if t.dataloader_workers is None else t.dataloader_workers,
        optimizer="adamw_torch_fused" if t.optimizer == "auto" else t.optimizer,
        gradient_checkpointing=checkpointing,
        compile=t.compile,
        estimated_peak_gib=round(estimate_gib, 3) if estimate_gib else None,
    )


def trainer_kwargs(settings: SpeedSettings, known: set[str]) -> dict[str, Any]:
    """TrainingArguments for the settings, in the names this transformers release knows."""
    kwargs: dict[str, Any] = {
        "bf16": settings.precision == "bf16",
        "fp16": settings.precision == "fp16",
        "optim": settings.optimizer,
        "dataloader_num_workers": settings.dataloader_workers,
        "dataloader_pin_memory": settings.device == "cuda",
        "gradient_checkpointing": settings.gradient_checkpointing,
        "torch_compile": settings.compile,
    }
    if settings.tf32:
        kwargs["tf32"] = True
    if "train_sampling_strategy" in known:  # transformers >= 5
        kwargs["train_sampling_strategy"] = "group_by_length" if settings.group_by_length else "random"
    else:
        kwargs["group_by_length"] = settings.group_by_length
    return {k: v for k, v in kwargs.items() if k in known}
