"""Typed run configuration: dataclasses, YAML in and out, dotted overrides, presets.

A ``RunConfig`` is everything needed to rerun a fine-tune. Fields left ``None`` in the training
section are filled by a preset (``quick`` / ``balanced`` / ``best``) sized for the backbone, so a
user only writes what they want to change; the run directory keeps the fully resolved config.

This module knows no task. The ``task:`` section is the task's name and its options as written
(``task: {name: classification, problem_type: auto}`` is ``TaskSection(name, options)``); what
the options mean belongs to the task, so the tasks layer types and checks them with the task's
own options class (``Task.options``), through ``parse_section`` here. The tasks layer also fills
in what a config leaves to the task (``studio.tasks.with_defaults``: the task's option defaults
and, when ``model.backbone`` is unset, the bundled backbone of the task's model kind) when a run
is submitted.

Longer than 500 lines: every section of a config, its checks and the presets are read in one
file, so a key's meaning, default and help are found in one place.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from studio.errors import ConfigError


@dataclass
class SplitConfig:
    """Shares of the training file held out when no separate validation/test file is given."""

    validation: float = 0.1
    test: float = 0.1
    stratify: bool = True


@dataclass
class DataConfig:
    train: Optional[str] = None
    """Training file (CSV, TSV, JSONL, JSON, Parquet, or a task-specific format)."""
    validation: Optional[str] = None
    test: Optional[str] = None
    dataset: Optional[str] = None
    """Name of a dataset saved in the workspace, instead of file paths."""
    columns: dict[str, str] = field(default_factory=dict)
    """Task role -> column name, e.g. {text: review, label: sentiment}. Missing roles are detected."""
    split: SplitConfig = field(default_factory=SplitConfig)
    seed: int = 42
    encoding: str = "auto"
    """Text encoding of the files: auto detects it (UTF-8, GB18030, Windows-1252, ... else Latin-1); or a name such as gb18030, cp1251, latin-1."""


@dataclass
class DecodingConfig:
    """How a generation model writes its answers: in the evaluation after training and in predict."""

    strategy: Literal["greedy", "sampling"] = "greedy"
    """greedy: always the most likely next token (repeatable); sampling: draw with temperature and top_p."""
    temperature: float = 0.7
    """Sampling only: below 1 sticks closer to likely words, above 1 is more varied."""
    top_p: float = 0.9
    """Sampling only: draw from the smallest set of tokens holding this share of the probability."""
    max_new_tokens: int = 128
    """Longest answer, in tokens; generation also stops at the model's end-of-turn token."""
    repetition_penalty: float = 1.0
    """Above 1 discourages repeating the same words (small models loop); 1 = off."""
    max_eval_examples: int = 100
    """Test examples answered (and scored with ROUGE/BLEU/chrF) after training; 0 = loss and perplexity only."""


@dataclass
class TaskSection:
    """The ``task:`` section: the task's name and its options, plain data as written (the YAML
    keeps them side by side). The task's options class types them (``Task.options_of``)."""

    name: str = "classification"
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}


@dataclass
class ModelConfig:
    backbone: Optional[str] = None
    """Catalog name, hub id, or a local folder the admin allowed; unset: the task's bundled default."""
    trust_remote_code: bool = False
    allow_unreadable: bool = False
    """Train even when the backbone's tokenizer cannot read most of the data (nearly all of a sample's tokens unknown)."""
    from_run: Optional[str] = None
    """Start from a finished generation run of this workspace (its run id): its model, or its LoRA adapter merged into its backbone, takes the place of the backbone."""


@dataclass
class LoraConfig:
    r: int = 16
    alpha: int = 32
    # 0 as peft's own default: with dropout each adapter keeps a dropped copy of its input for
    # backward (0.74 GiB, a fifth of the SmolLM2 LoRA job's peak on a CPU).
    dropout: float = 0.0
    target_modules: Union[str, list[str]] = "auto"
    """'auto' picks the attention/MLP projections of the backbone's architecture."""


@dataclass
class MethodConfig:
    kind: Literal["full", "lora", "qlora"] = "full"
    """full: every weight; lora: adapters on a frozen base; qlora: adapters on a 4-bit (NF4) base, CUDA GPUs only."""
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class TrainingConfig:
    preset: Literal["quick", "balanced", "best"] = "balanced"
    epochs: Optional[float] = None
    max_steps: Optional[int] = None
    """When set (>0), overrides epochs."""
    learning_rate: Optional[float] = None
    batch_size: Optional[int] = None
    gradient_accumulation: int = 1
    max_length: Optional[int] = None
    """Tokens per example; None picks the 99th percentile of the training data (capped)."""
    warmup: float = 0.06
    """Share of the optimizer steps (< 1) or a number of steps (>= 1)."""
    weight_decay: float = 0.01
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    eval_strategy: Literal["auto", "epoch", "steps", "no"] = "auto"
    """auto: about four times an epoch, so early stopping ends close to the best score; or each epoch, every eval_steps, never."""
    eval_steps: Optional[int] = None
    save_strategy: Literal["auto", "epoch", "steps", "best", "no"] = "auto"
    """auto: a checkpoint whenever the validation score improves (best), each epoch when there is no validation."""
    save_total_limit: int = 2
    early_stopping_patience: Optional[int] = None
    """Evaluations without improvement before stopping (epochs are then a ceiling); 0 disables early stopping."""
    metric: str = "auto"
    """Validation metric for early stopping and the best checkpoint; 'auto' = the task's headline."""
    score_base_model: Optional[bool] = None
    """Score the backbone before fine-tuning too, so the report shows what training changed (costs one evaluation); None = on for generation."""
    score_test: bool = True
    """Score the test split after training; a sweep's trials set it false (they are compared on validation only, and only the best is scored on test)."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """'auto' = bf16 where it is faster (a GPU, or a CPU with AMX units), else fp32."""
    seed: int = 42
    logging_steps: Optional[int] = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    group_by_length: Optional[bool] = None
    """Batch examples of similar length together (less padding); None = on when lengths vary."""
    dataloader_workers: Optional[int] = None
    """Processes preparing batches; None = 0 on a CPU (they would compete with training), 4 on a GPU."""
    tf32: Optional[bool] = None
    """TensorFloat-32 matrix maths on NVIDIA Ampere or newer; None = on where supported."""
    optimizer: Literal["auto", "adamw_torch_fused", "adamw_torch"] = "auto"
    """'auto' = fused AdamW (one kernel for all parameters)."""
    gradient_checkpointing: Optional[bool] = None
    """Recompute activations in the backward pass to save memory; None = only when the estimate says the run would not fit."""
    compile: bool = False
    """torch.compile the model (faster steps after a slow first one; needs a GPU to pay off)."""
    batch_tokens: Optional[int] = None
    """Token budget of one step on a GPU: the batch grows from batch_size until it holds about this many tokens; None = the most the GPU memory allows (up to 16k), 0 = keep batch_size."""
    packing: Optional[bool] = None
    """Padding-free packing of a batch into one row for causal LMs (no padding tokens); None = on a GPU with flash-attention or flex attention."""
    attention: Literal["auto", "sdpa", "eager", "flex_attention", "flash_attention_2"] = "auto"
    """Attention kernel; 'auto' = one that keeps packed examples apart when packing, else the model's default."""
    liger: Optional[bool] = None
    """Liger kernels (fused linear cross-entropy) for causal LMs; None = on a GPU when the liger-kernel package is installed."""


@dataclass
class RunConfig:
    name: Optional[str] = None
    task: TaskSection = field(default_factory=TaskSection)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    generation: DecodingConfig = field(default_factory=DecodingConfig)
    """Decoding of generation tasks (evaluation after training, predict); other tasks ignore it."""

    # ---- YAML -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["task"] = self.task.to_dict()  # the options sit beside the name, as in the YAML
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml(), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "RunConfig":
        return _build(cls, data or {}, "")

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"config file {path} is not UTF-8 text (byte {e.start})") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
            raise ConfigError(f"config file {path} is not valid YAML{at}: {getattr(e, 'problem', e)}") from None
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections, not {type(data).__name__}")
        config = cls.from_dict(data)
        config.resolve_paths(path.parent)
        return config

    def resolve_paths(self, base: Path) -> None:
        """Make data paths written relative to a config file relative to that file's folder."""
        for role in ("train", "validation", "test"):
            value = getattr(self.data, role)
            if value and not Path(value).is_absolute() and (base / value).exists():
                setattr(self.data, role, str((base / value).resolve()))

    def with_overrides(self, overrides: list[str]) -> "RunConfig":
        """Apply ``section.key=value`` strings (values parsed as YAML scalars) and re-validate."""
        data = self.to_dict()
        for item in overrides:
            key, sep, raw = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"override {item!r} must look like section.key=value")
            parts = key.strip().split(".")
            node = data
            for i, part in enumerate(parts[:-1]):
                child = node.get(part) if isinstance(node, dict) else None
                if not isinstance(child, dict):
                    known = sorted(k for k, v in node.items() if isinstance(v, dict)) if isinstance(node, dict) else []
                    raise ConfigError(f"unknown config section '{'.'.join(parts[: i + 1])}'" + _suggest(part, known))
                node = child
            node[parts[-1]] = _parse_override(raw)
        return RunConfig.from_dict(data)


def _parse_override(raw: str) -> Any:
    """A command-line value as YAML (numbers, booleans, lists), but text stays exactly as typed:
    YAML would read '|' or '>' as block markers and '#...' as a comment."""
    text = raw.strip()
    if not text or text in ("null", "~"):
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if value is None or isinstance(value, str) else value


# ---- strict construction from plain data ---------------------------------------------------

def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{hint} (known: {', '.join(choices)})" if choices else hint


def parse_section(cls: type, data: Any, prefix: str) -> Any:
    """A dataclass from plain data, strictly: unknown keys and values of the wrong type are
    refused naming the key (``prefix`` + field, e.g. 'task.problem_type'), and the class's
    ``_check`` runs. The tasks layer builds a task's options with it."""
    return _build(cls, data, prefix)


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"'{prefix or 'config'}' must be a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = f"{prefix}{unknown[0]}"
        raise ConfigError(f"unknown config key '{key}'" + _suggest(str(unknown[0]), names))
    kwargs = {name: _coerce(hints[name], data[name], f"{prefix}{name}") for name in names if name in data}
    obj = cls(**kwargs)
    check = getattr(obj, "_check", None)
    if check:
        check()
    return obj


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is TaskSection:
        return _task_section(value, key)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, key + ".")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key)
            except ConfigError as e:
                errors.append(e.message)
        raise ConfigError(errors[-1] if len(errors) == 1 else f"bad value for '{key}': {value!r}")
    if origin is Literal:
        if isinstance(value, bool) and value not in args:
            # YAML 1.1 reads a bare no/off/yes/on as a boolean: map it back to the choice that was written.
            value = next((a for a in args if isinstance(a, str) and a in (("yes", "on", "true") if value else ("no", "off", "false"))), value)
        if value not in args:
            raise ConfigError(f"bad value for '{key}': {value!r}; choose one of: {', '.join(map(str, args))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"bad value for '{key}': expected a list, got {value!r}")
        return [_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"bad value for '{key}': expected a mapping, got {value!r}")
        return {str(k): _coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"bad value for '{key}': expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"bad value for '{key}': expected a whole number, got {value!r}")
    if tp is float:
        if isinstance(value, str):  # YAML reads 5e-5 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"bad value for '{key}': expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"bad value for '{key}': expected text, got {value!r}")
    return value


def _task_section(value: Any, key: str) -> TaskSection:
    """``name`` is the task's; every other key is an option, kept as written for the task to type."""
    if value is None:
        return TaskSection()
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}' must be a mapping of keys, got {value!r}")
    options = {str(k): v for k, v in value.items() if k != "name"}
    if "name" not in value:
        return TaskSection(options=options)
    return TaskSection(_coerce(str, value["name"], f"{key}.name"), options)


def _positive(key: str, value: float | int | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"bad value for '{key}': {value!r} must be {'>= 0' if allow_zero else '> 0'}")


def _split_check(self: SplitConfig) -> None:
    for name in ("validation", "test"):
        v = getattr(self, name)
        if not 0 <= v < 1:
            raise ConfigError(f"bad value for 'data.split.{name}': {v!r} must be a share between 0 and 1")
    if self.validation + self.test >= 0.9:
        raise ConfigError("bad value for 'data.split': validation + test must leave at least 10% for training")


def _lora_check(self: LoraConfig) -> None:
    _positive("method.lora.r", self.r)
    _positive("method.lora.alpha", self.alpha)
    if not 0 <= self.dropout < 1:
        raise ConfigError(f"bad value for 'method.lora.dropout': {self.dropout!r} must be in [0, 1)")


def _training_check(self: TrainingConfig) -> None:
    _positive("training.epochs", self.epochs)
    _positive("training.max_steps", self.max_steps, allow_zero=True)
    _positive("training.learning_rate", self.learning_rate)
    if self.learning_rate is not None and self.learning_rate >= 1:
        raise ConfigError(f"bad value for 'training.learning_rate': {self.learning_rate!r} is far too large (try 2e-5 to 2e-4)")
    _positive("training.batch_size", self.batch_size)
    _positive("training.gradient_accumulation", self.gradient_accumulation)
    _positive("training.max_length", self.max_length)
    _positive("training.batch_tokens", self.batch_tokens, allow_zero=True)
    if self.max_length is not None and self.max_length < 8:
        raise ConfigError(f"bad value for 'training.max_length': {self.max_length} leaves no room for text (use >= 8)")
    _positive("training.warmup", self.warmup, allow_zero=True)
    _positive("training.weight_decay", self.weight_decay, allow_zero=True)
    _positive("training.eval_steps", self.eval_steps)
    _positive("training.save_total_limit", self.save_total_limit)
    _positive("training.early_stopping_patience", self.early_stopping_patience, allow_zero=True)
    _positive("training.logging_steps", self.logging_steps)
    if self.eval_strategy == "steps" and not self.eval_steps:
        raise ConfigError("bad value for 'training.eval_steps': required when eval_strategy is 'steps'")


SplitConfig._check = _split_check  # type: ignore[attr-defined]
LoraConfig._check = _lora_check  # type: ignore[attr-defined]
TrainingConfig._check = _training_check  # type: ignore[attr-defined]


def _decoding_check(self: DecodingConfig) -> None:
    _positive("generation.temperature", self.temperature)
    if not 0 < self.top_p <= 1:
        raise ConfigError(f"bad value for 'generation.top_p': {self.top_p!r} must be in (0, 1]")
    _positive("generation.max_new_tokens", self.max_new_tokens)
    if self.max_new_tokens > 8192:
        raise ConfigError(f"bad value for 'generation.max_new_tokens': {self.max_new_tokens} is more than 8192")
    _positive("generation.repetition_penalty", self.repetition_penalty)
    _positive("generation.max_eval_examples", self.max_eval_examples, allow_zero=True)


def _credentials_check(self: "RunConfig") -> None:
    # config.yaml is shown to the team, exported and copied into model cards: no token may enter it.
    from studio.credentials import token_keys

    for key in token_keys(self.to_dict()):
        raise ConfigError(f"config key '{key}' holds what looks like an access token (hf_...); a run's config is saved "
                          "in config.yaml, which the whole team can read and download",
                          hint="remove it from the config; set HF_TOKEN in the server's environment instead "
                               "(the worker inherits it and nothing writes it down)")


RunConfig._check = _credentials_check  # type: ignore[attr-defined]
DecodingConfig._check = _decoding_check  # type: ignore[attr-defined]


# ---- presets -------------------------------------------------------------------------------

SizeClass = Literal["small", "base", "large"]


def size_class(parameters: int | None) -> SizeClass:
    """Backbones under 100M parameters are 'small', under 1B 'base', the rest 'large'."""
    if parameters is None or parameters < 100_000_000:
        return "small"
    return "base" if parameters < 1_000_000_000 else "large"


# Values per (preset, size). Small encoders such as MiniLM need a higher learning rate than
# BERT-base; large models get fewer epochs and a lower rate. 'best' trains longer and relies on
# early stopping to keep the best checkpoint.
# Validation decides how long to train: "balanced" and "best" give an epoch ceiling and a patience
# in evaluations (about four an epoch with eval_strategy auto, so 4 is about one epoch without a
# better score); the best checkpoint is restored at the end. "quick" trains one epoch, no stopping.
PRESETS: dict[str, dict[SizeClass, dict[str, Any]]] = {
    "quick": {
        "small": dict(epochs=1, learning_rate=1e-4, batch_size=32, early_stopping_patience=0),
        "base": dict(epochs=1, learning_rate=5e-5, batch_size=16, early_stopping_patience=0),
        "large": dict(epochs=1, learning_rate=2e-5, batch_size=8, early_stopping_patience=0),
    },
    "balanced": {
        "small": dict(epochs=10, learning_rate=1e-4, batch_size=16, early_stopping_patience=4),
        "base": dict(epochs=8, learning_rate=3e-5, batch_size=16, early_stopping_patience=4),
        "large": dict(epochs=4, learning_rate=1e-5, batch_size=8, early_stopping_patience=4),
    },
    "best": {
        "small": dict(epochs=20, learning_rate=8e-5, batch_size=16, early_stopping_patience=6),
        "base": dict(epochs=15, learning_rate=2e-5, batch_size=16, early_stopping_patience=6),
        "large": dict(epochs=6, learning_rate=1e-5, batch_size=8, early_stopping_patience=6),
    },
}
EVALUATIONS_PER_EPOCH = 4
"""Evaluations an epoch with eval_strategy auto: early stopping can then end within a quarter
epoch of the best score, for the price of scoring the validation split four times an epoch."""


def optimizer_steps(rows: int, batch_size: int, accumulation: int, epochs: float | None, max_steps: int | None,
                    devices: int = 1) -> int:
    """Optimizer steps of a run, as the Trainer counts them (``max_steps`` wins when set)."""
    if max_steps:
        return max_steps
    per_epoch = math.ceil(rows / (batch_size * accumulation * max(1, devices)))
    return math.ceil(per_epoch * (epochs or 1))


def evaluation_schedule(training: "TrainingConfig", steps_per_epoch: int) -> tuple[str, int | None]:
    """(strategy, steps between evaluations) as the Trainer takes them; 'auto' evaluates every
    quarter epoch (every step of a run shorter than four steps an epoch)."""
    if training.eval_strategy == "auto":
        return "steps", max(1, math.ceil(steps_per_epoch / EVALUATIONS_PER_EPOCH))
    return training.eval_strategy, training.eval_steps


def save_schedule(training: "TrainingConfig", evaluates: bool) -> str:
    """When checkpoints are written: 'auto' keeps the best one when there is a validation score,
    else one each epoch; 'best' without evaluation falls back to each epoch."""
    chosen = training.save_strategy
    if chosen == "auto":
        return "best" if evaluates else "epoch"
    return chosen if chosen != "best" or evaluates else "epoch"

# LoRA trains few parameters and wants a higher learning rate than full fine-tuning: the preset's
# rate times five, at most 5e-4 (apply_preset).
LORA_LR_FACTOR = 5.0
LORA_LR_CEILING = 5e-4


def apply_preset(config: RunConfig, parameters: int | None) -> RunConfig:
    """Return a copy whose unset training fields are filled from the preset for this backbone size."""
    resolved = RunConfig.from_dict(config.to_dict())
    values = PRESETS[resolved.training.preset][size_class(parameters)]
    for key, value in values.items():
        if getattr(resolved.training, key) is None:
            if key == "learning_rate" and resolved.method.kind in ("lora", "qlora"):
                value = min(value * LORA_LR_FACTOR, LORA_LR_CEILING)
            setattr(resolved.training, key, value)
    return resolved


def field_help(cls: type) -> dict[str, str]:
    """Docstrings written under fields (used by the CLI and the UI's advanced section)."""
    import ast
    import inspect

    source = inspect.getsource(cls)
    tree = ast.parse(source)
    helps: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant):
            helps[node.target.id] = str(nxt.value.value)  # type: ignore[union-attr]
    return helps
