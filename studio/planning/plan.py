"""The plan of one run from plain inputs: no files read and no devices probed here (see ``inputs``).

Memory: the worker's own choice of batch, length and checkpointing (``speed.choose``) with the one
memory estimate (``speed.memory_estimator``): the number the worker records for the same config
on the same device. Time: model loading and data preparation, the training steps, and every
evaluation pass (during training, the final scoring, the base model's when it is scored), each
from the FLOP count over this machine's rate, or from the step times finished runs measured here
(``calibration``). Both are shown as ranges: an estimate is not a promise.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from studio.config import RunConfig, apply_preset, evaluation_schedule, optimizer_steps
from studio.data.profile import auto_max_length
from studio.models.estimate import ASSUMED_FLOPS, estimate, train_flops_per_parameter
from studio.planning.calibration import Calibration, RunKey, data_name
from studio.planning.inputs import BackboneInfo, DataSize, Machine
from studio.tasks import get_task
from studio.training.speed import choose

# Tokens an example counts when nothing is known of the data (the worker's own fallback).
DEFAULT_SEQ_LEN = 128
# A padded batch is as long as its longest example: on average about this much above the mean.
PADDING_FACTOR = 1.15
# Fixed costs of a worker before its first step: starting Python with torch and transformers, and
# on a GPU initialising CUDA (seconds). Then reading the weights (bytes a second from disk and
# into memory) and tokenizing the data (seconds a row, with the server's check of it at submit).
STARTUP_S = {"cpu": 5.0, "cuda": 15.0}
LOAD_BYTES_PER_S = 400e6
PREPARE_S_PER_ROW = 4e-4
# What a step costs besides its FLOPs (launching kernels, the optimizer's Python, the logging).
STEP_OVERHEAD_S = {"cpu": 0.02, "cuda": 0.03}
# The optimizer's own work a trainable parameter and step (AdamW reads and writes ~16 bytes).
OPTIMIZER_S_PER_PARAMETER = {"cpu": 2e-9, "cuda": 1e-11}
# An evaluation pass's fixed cost (its loader, the metrics), and writing a checkpoint (weights and
# optimizer state, about 12 bytes a trainable parameter, 4 a frozen one), bytes a second.
EVAL_PASS_S = {"cpu": 0.5, "cuda": 1.0}
SAVE_BYTES_PER_S = 500e6
# Evaluation: examples in one forward batch, and a decoded token's floor (latency, not FLOPs).
EVAL_BATCH = 32
DECODE_BATCH = 16
DECODE_TOKEN_FLOOR_S = {"cpu": 0.01, "cuda": 0.015}
# Fine-tuning a pretrained model reaches its best validation score within a few epochs (BERT's
# authors searched 2 to 4): a run with early stopping is expected to stop that far in plus its
# patience, unless a finished run of the same backbone and task on the same data measured where.
EXPECTED_BEST_EPOCH = 3.0
# The range shown around the point estimate, by what it stands on: a measured run of the same
# setup, this machine's measured rate with another setup, or the model alone.
TIME_SPREAD = {"run": (0.85, 1.2), "machine": (0.75, 1.35), "": (0.6, 1.6)}
MEMORY_SPREAD = (0.8, 1.25)


@dataclass
class Plan:
    config: RunConfig
    """The configuration with the preset's values filled in (and max_length when it was automatic)."""
    device: str
    """'cuda' or 'cpu'."""
    gpus: int
    batch_size: int
    seq_len: int
    train_rows: int | None
    steps: int | None
    """Optimizer steps of the whole run (None when the data size is unknown)."""
    evaluations: int
    """Passes over the validation split during training."""
    parameters: int | None
    trainable: int | None
    memory_gib: float | None
    """The worker's estimate for this config on this device (what it records)."""
    memory_from_size: bool = False
    """From the parameter count alone (no config.json to read the shape from)."""
    checkpointing: bool = False
    checkpointing_needed: bool = False
    """The worker will turn gradient checkpointing on by itself (the estimate nears the GPU's memory)."""
    memory_unchecked_gib: float | None = None
    """The estimate without that checkpointing (set only when the worker turns it on)."""
    seconds: float | None = None
    expected_epochs: float | None = None
    """Where early stopping is expected to end the run (None: it trains all its epochs or steps)."""
    stopping_measured: bool = False
    """``expected_epochs`` is where a finished run of this backbone and task on this data stopped."""
    ceiling_seconds: float | None = None
    """The time if early stopping never ends it (``seconds`` when there is none)."""
    parts: dict[str, float] = field(default_factory=dict)
    """Seconds by part: 'startup' (loading and data preparation), 'train', 'evaluation' (as expected:
    early stopping counted)."""
    validation_pass_s: float = 0.0
    """One evaluation during training (a pass over the validation split, its checkpoint)."""
    calibrated: str = ""
    """'run' (a finished run of this setup measured its steps), 'machine' (this machine's rate), '' (model only)."""
    coverage: dict | None = None
    """What the backbone's tokenizer could not read of a sample of the training rows (``DataSize.coverage``)."""

    @property
    def memory_range(self) -> tuple[float, float] | None:
        if self.memory_gib is None:
            return None
        return self.memory_gib * MEMORY_SPREAD[0], self.memory_gib * MEMORY_SPREAD[1]

    @property
    def seconds_range(self) -> tuple[float, float] | None:
        return self._spread(self.seconds)

    @property
    def ceiling_range(self) -> tuple[float, float] | None:
        return self._spread(self.ceiling_seconds)

    def _spread(self, seconds: float | None) -> tuple[float, float] | None:
        if seconds is None:
            return None
        low, high = TIME_SPREAD[self.calibrated]
        return seconds * low, seconds * high


def evaluation_passes(config: RunConfig, steps: int, steps_per_epoch: int, has_validation: bool) -> int:
    """Validation passes during training (the worker's eval_strategy)."""
    strategy, every = evaluation_schedule(config.training, steps_per_epoch)
    if not has_validation or strategy == "no" or not steps:
        return 0
    if strategy == "steps":
        return steps // max(1, every or 500)
    return max(1, math.ceil(steps / max(1, steps_per_epoch)))


def step_flops(flops_per_step: float, checkpointing: bool) -> float:
    """FLOPs of a training step; gradient checkpointing runs each layer's forward twice."""
    return flops_per_step * (4 / 3 if checkpointing else 1)


def make_plan(config: RunConfig, backbone: BackboneInfo, data: DataSize, machine: Machine,
              calibration: Calibration | None = None) -> Plan:
    resolved = apply_preset(config, backbone.parameters)
    tc = resolved.training
    task = get_task(resolved.task.name)
    if tc.max_length is None and data.lengths:
        tc.max_length = auto_max_length(data.lengths, data.model_max_length)
    seq_len = tc.max_length or DEFAULT_SEQ_LEN
    # The worker counts the tokens of the truncated examples; with no lengths, every row a full one.
    lengths = [min(n, seq_len) for n in data.lengths] if data.lengths else [seq_len] * (data.train_rows or 0)
    hw = machine.hardware()
    model_config = backbone.model_config
    causal = task.model_kind == "decoder" and not model_config.get("is_encoder_decoder")
    settings = choose(resolved, hw, lengths, model_config, task.model_kind, causal)
    batch = settings.batch_size or tc.batch_size
    rows = data.train_rows
    steps_per_epoch = optimizer_steps(rows, batch, tc.gradient_accumulation, 1, None, machine.gpus) if rows else 0
    steps = optimizer_steps(rows or 0, batch, tc.gradient_accumulation, tc.epochs, tc.max_steps, machine.gpus) \
        if rows or tc.max_steps else None
    plan = Plan(config=resolved, device=settings.device, gpus=machine.gpus if hw.cuda else 0, batch_size=batch,
                seq_len=seq_len, train_rows=rows, steps=steps,
                evaluations=evaluation_passes(resolved, steps or 0, steps_per_epoch, data.validation_rows > 0),
                parameters=backbone.parameters, trainable=None, memory_gib=settings.estimated_peak_gib,
                checkpointing=settings.gradient_checkpointing,
                checkpointing_needed=settings.gradient_checkpointing and tc.gradient_checkpointing is None,
                coverage=data.coverage)
    if plan.checkpointing_needed:
        unchecked = RunConfig.from_dict(resolved.to_dict())
        unchecked.training.gradient_checkpointing = False
        plan.memory_unchecked_gib = choose(unchecked, hw, lengths, model_config, task.model_kind, causal).estimated_peak_gib
    lora_r = resolved.method.lora.r if resolved.method.kind in ("lora", "qlora") else None
    mean_len = statistics.mean(lengths) if lengths else seq_len
    step_len = mean_len if settings.packing else min(seq_len, max(1, round(mean_len * PADDING_FACTOR)))
    est = estimate(model_config, batch_size=batch, seq_len=step_len, lora_r=lora_r, half_precision=hw.cuda and hw.bf16,
                   gradient_checkpointing=plan.checkpointing, causal_lm=task.model_kind == "decoder",
                   device=plan.device, cpu_cores=machine.cpu_cores, parameters=backbone.parameters) if model_config else None
    if est is None:
        if backbone.parameters:
            # No config.json offline (a bundled GGUF not converted yet): weights, gradients and AdamW
            # state from the parameter count alone; no shape, so no step time.
            trainable = backbone.parameters * (0.01 if lora_r else 1.0)
            plan.memory_gib = (backbone.parameters * 4 + trainable * 12) / 2**30
            plan.memory_from_size = True
        return plan
    plan.trainable = est.trainable
    _expect_early_stop(plan, calibration, backbone, steps_per_epoch)
    _time(plan, est, data, machine, task, calibration, backbone, mean_len, lora_r)
    return plan


def _expect_early_stop(plan: Plan, calibration: Calibration | None, backbone: BackboneInfo, steps_per_epoch: int) -> None:
    """Where early stopping should end the run, into ``plan`` (nothing when it trains to the end)."""
    tc = plan.config.training
    if not (tc.early_stopping_patience and plan.evaluations and tc.epochs and not tc.max_steps):
        return
    measured = calibration.stopped_at(backbone.name, plan.config.task.name, data_name(plan.config)) if calibration else None
    strategy, every = evaluation_schedule(tc, steps_per_epoch)
    per_epoch = steps_per_epoch / max(1, every or 500) if strategy == "steps" else 1.0
    expected = measured or EXPECTED_BEST_EPOCH + tc.early_stopping_patience / max(per_epoch, 1e-9)
    if expected < tc.epochs:
        plan.expected_epochs, plan.stopping_measured = expected, measured is not None


def _time(plan: Plan, est, data: DataSize, machine: Machine, task, calibration: Calibration | None,
          backbone: BackboneInfo, mean_len: float, lora_r: int | None) -> None:
    """Seconds of the whole run by part, into ``plan``."""
    device = plan.device
    rate = ASSUMED_FLOPS["cuda"] if device == "cuda" else ASSUMED_FLOPS["cpu_core"] * max(1, machine.cpu_cores)
    flops = step_flops(est.flops_per_step, plan.checkpointing)
    step_s = flops / rate + STEP_OVERHEAD_S[device] + est.trainable * OPTIMIZER_S_PER_PARAMETER[device]
    key = RunKey(backbone.name, plan.config.method.kind, device, plan.seq_len, plan.batch_size)
    measured = calibration.same_setup(key) if calibration else None
    machine_rate = calibration.rate(device) if calibration else None
    if measured is not None:
        step_s, plan.calibrated = measured.seconds_per_step, "run"
    elif machine_rate:
        # Another setup ran here: this machine's measured FLOP rate, with its overheads in it.
        step_s, plan.calibrated = flops / machine_rate, "machine"
        rate = machine_rate
    # Forward FLOPs a token (2 a parameter of the training step's).
    forward_per_token = est.flops_per_step / est.tokens_per_step * 2 / train_flops_per_parameter(bool(lora_r), device)
    eval_row_s = forward_per_token * mean_len / rate + STEP_OVERHEAD_S[device] / EVAL_BATCH
    base_scored = plan.config.training.score_base_model
    base_scored = task.compare_with_base if base_scored is None else base_scored
    scored = data.validation_rows + data.test_rows
    last_split = data.test_rows or data.validation_rows
    eval_rows = plan.evaluations * data.validation_rows + scored + (last_split if base_scored else 0)
    passes = plan.evaluations + (data.validation_rows > 0) + (data.test_rows > 0) + (base_scored and last_split > 0)
    saves = plan.evaluations if plan.config.training.save_strategy != "no" else 0
    save_s = saves * (est.trainable * 12 + (est.parameters - est.trainable) * 4) / SAVE_BYTES_PER_S
    evaluation_s = eval_rows * eval_row_s + passes * EVAL_PASS_S[device] + save_s
    if task.model_kind == "decoder":
        # Predictions of a generation task are written token by token, a batch at a time.
        predicted = scored + (last_split if base_scored else 0)
        token_s = max(2 * est.parameters / rate, DECODE_TOKEN_FLOOR_S[device])
        evaluation_s += math.ceil(predicted / DECODE_BATCH) * plan.config.generation.max_new_tokens * token_s
    rows = (data.train_rows or 0) + data.validation_rows + data.test_rows
    startup_s = STARTUP_S[device] + (backbone.parameters or est.parameters) * 4 / LOAD_BYTES_PER_S + rows * PREPARE_S_PER_ROW
    same = calibration.same_backbone(key) if calibration else None
    if same is not None:
        startup_s = same.startup_s + rows * PREPARE_S_PER_ROW
        if same.seconds_per_eval_row is not None and same.task == plan.config.task.name:
            evaluation_s = eval_rows * same.seconds_per_eval_row  # its passes and saves measured with it
    train_s = (plan.steps or 0) * step_s
    # Early stopping ends the training and the evaluations during it that far in.
    share = min(1.0, plan.expected_epochs / plan.config.training.epochs) if plan.expected_epochs else 1.0
    during_s = plan.evaluations * (data.validation_rows * eval_row_s + EVAL_PASS_S[device]) + save_s
    if same is not None and same.seconds_per_eval_row is not None and same.task == plan.config.task.name:
        during_s = plan.evaluations * data.validation_rows * same.seconds_per_eval_row
    cut_s = (1 - share) * (train_s + min(during_s, evaluation_s))
    plan.parts = {"startup": startup_s, "train": train_s * share, "evaluation": evaluation_s - (1 - share) * min(during_s, evaluation_s)}
    plan.validation_pass_s = during_s / plan.evaluations if plan.evaluations else 0.0
    plan.ceiling_seconds = startup_s + train_s + evaluation_s if plan.steps else None
    plan.seconds = plan.ceiling_seconds - cut_s if plan.steps else None
