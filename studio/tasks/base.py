"""The task contract and its registry.

A task is one module that subclasses ``Task`` and decorates the class with ``@register``. The
rest of the studio asks the registry for a task by name and only ever calls the methods below;
there is no ``if task == ...`` anywhere else.

A task's options (the keys of ``task:`` besides ``name``) are a dataclass the task declares as
``options``; the config keeps them as written and ``options_of`` types and checks them.

Data flows through a task like this (the worker drives it):

    read_file(path, **limits)  -> raw DataFrame (default: studio.data.read_table)
    normalize(df, cfg, split)  -> DataFrame with the task's role columns, cleaned; notes
    stratify_key(df)           -> column to stratify the split on (or None)
    fit(splits, cfg)           -> TaskMeta: label names, problem type... (JSON, saved with the model)
    validate(splits, meta)     -> problems across splits (errors stop the run)
    load_model / tokenize / collator / make_trainer / compute_metrics / predict
"""

from __future__ import annotations

import dataclasses
import difflib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal

import pandas as pd

from studio.config import parse_section
from studio.errors import ConfigError

if TYPE_CHECKING:  # heavy imports stay out of module import time (the web process imports tasks)
    from studio.config import RunConfig


IGNORE = -100
"""The label the loss skips (PyTorch's cross-entropy ``ignore_index``): prompt tokens, padding,
a word's later sub-tokens."""


@dataclass
class Problem:
    """A readable finding about the data; ``error`` stops the run, ``warning`` is shown."""

    level: Literal["error", "warning", "info"]
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


@dataclass
class TaskMeta:
    """What a trained model needs to be used again: saved as ``task.json`` beside the weights."""

    task: str
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, **self.info}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskMeta":
        data = dict(data)
        return cls(task=data.pop("task"), info=data)


@dataclass
class NoOptions:
    """The options of a task that takes none: its ``task:`` section holds only the ``name``."""


class Task(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    roles: ClassVar[dict[str, str]]
    """Column roles the task reads -> what each holds (shown to users mapping columns)."""
    required_roles: ClassVar[tuple[str, ...]]
    example: ClassVar[dict[str, Any]]
    """One example row, in the roles' terms."""
    model_kind: ClassVar[str] = "encoder"
    """What the task's model does: 'encoder' (a head reads the text), 'decoder'/'seq2seq' (it
    writes text); the default backbone is the bundled one of this kind."""
    backbone_kinds: ClassVar[tuple[str, ...]] = ("encoder", "decoder")
    """The kinds of backbone the task trains (the Train tab lists them, a submission checks them):
    a head reads an encoder's or a decoder-only model's hidden states alike."""
    peft_task_type: str = "SEQ_CLS"
    """The PEFT task type a LoRA adapter is made for (a task may set it per run in ``fit``)."""
    hf_auto_class: str = "AutoModelForSequenceClassification"
    """The transformers class that loads the trained model (the model card's example)."""
    predicts_tokenized_rows: ClassVar[bool] = False
    """The prediction pass feeds the model the split's tokenized rows (``tokenize``), in order,
    one forward pass per batch: the split's loss can then come out of that pass (see
    ``studio.training.scoring.LossInPredictions``) instead of an evaluation of its own."""
    compare_with_base: ClassVar[bool] = False
    """Score the backbone before fine-tuning too, so the report shows what training changed."""
    options: ClassVar[type] = NoOptions
    """The dataclass of the task's options: the keys of ``task:`` besides ``name``, typed and
    checked like every config section (a field's docstring is its help; ``__post_init__`` may
    refuse a value with a ``ConfigError``). Default: no options."""

    def options_of(self, config: "RunConfig") -> Any:
        """This run's options for the task, typed (an instance of ``options``)."""
        return read_options(type(self), config.task.options)

    # ---- data --------------------------------------------------------------------------------
    def read_file(self, path: str | Path, **limits):
        """Read one user file; tasks with their own formats (CoNLL...) override this. ``limits``
        are ``read_table``'s ``max_rows`` and ``max_decoded_bytes`` (``readers.read_limits``
        makes them from the workspace's settings); without them, the defaults apply."""
        from studio.data.readers import read_table

        return read_table(path, **limits)

    @abstractmethod
    def normalize(self, df: pd.DataFrame, config: "RunConfig", source: str, labeled: bool = True) -> tuple[pd.DataFrame, list[Problem]]:
        """Map the user's columns to the task's roles and drop unusable rows. ``source`` names the file;
        ``labeled=False`` (prediction input) makes the gold columns optional."""

    def stratify_key(self, df: pd.DataFrame) -> str | None:
        return None

    @abstractmethod
    def fit(self, splits: dict[str, pd.DataFrame], config: "RunConfig") -> TaskMeta:
        """Learn what the model's head needs from the training split (label set, problem type)."""

    def validate(self, splits: dict[str, pd.DataFrame], meta: TaskMeta, config: "RunConfig") -> list[Problem]:
        return []

    # ---- model -------------------------------------------------------------------------------
    @abstractmethod
    def load_model(self, path: str, meta: TaskMeta, config: "RunConfig", **kwargs: Any):
        """Load the backbone (or a trained model) with the right head for this task."""

    @abstractmethod
    def tokenize(self, df: pd.DataFrame, tokenizer, meta: TaskMeta, max_length: int):
        """Turn a normalized split into a ``datasets.Dataset`` of model inputs and labels."""

    def make_trainer(self, meta: TaskMeta, config: "RunConfig", tokenizer, **parts: Any):
        """The trainer of a run. ``parts`` are the worker's ``Trainer`` arguments: model, args
        (``TrainingArguments``: the schedule, evaluation and saving), train_dataset, eval_dataset,
        data_collator, compute_metrics and callbacks. Default: transformers' ``Trainer`` with them.
        A task with a training objective of its own (preference tuning through TRL) returns a
        ``Trainer`` subclass that keeps the callbacks and the schedule of ``args``."""
        from transformers import Trainer

        return Trainer(**parts)

    def prepare_tokenizer(self, tokenizer, meta: TaskMeta) -> None:
        """Changes this task makes to the tokenizer before tokenizing (pad token, chat template).

        Called before every tokenization, and also when tokenized data comes from the cache, so
        the tokenizer saved with the model is the same either way."""

    def text_lengths(self, df: pd.DataFrame, tokenizer) -> list[int]:
        """Token counts per row (untruncated) for profiling and choosing max_length."""
        return []

    @abstractmethod
    def collator(self, tokenizer, meta: TaskMeta):
        ...

    @abstractmethod
    def metric_names(self, meta: TaskMeta) -> tuple[str, bool]:
        """The headline metric's name and whether greater is better."""

    @abstractmethod
    def compute_metrics(self, meta: TaskMeta) -> Callable[[Any], dict[str, Any]]:
        """A function of the Trainer's ``EvalPrediction`` returning a flat dict of numbers."""

    def full_metrics(self, predictions: list[dict[str, Any]], meta: TaskMeta) -> dict[str, Any]:
        """Rich metrics from stored predictions (per-class tables, confusion matrix)."""
        return {}

    def loss_metrics(self, loss: float) -> dict[str, float | None]:
        """Metrics that follow from a split's mean loss (e.g. perplexity); none by default."""
        return {}

    def baseline(self, splits: dict[str, pd.DataFrame], meta: TaskMeta) -> dict[str, Any] | None:
        """A classical model fitted on the train split in seconds and scored on the validation
        and test splits with ``full_metrics`` (``metrics.json``'s ``baseline``), to show what
        fine-tuning adds; None (the default) when the task has none."""
        return None

    # ---- predictions -------------------------------------------------------------------------
    @abstractmethod
    def predict(self, model, tokenizer, df: pd.DataFrame, meta: TaskMeta, max_length: int, batch_size: int = 32) -> list[dict[str, Any]]:
        """One JSON-able dict per row, holding the inputs, the gold value (if any) and the prediction."""

    def prediction_rows(self, splits: dict[str, pd.DataFrame], meta: TaskMeta) -> dict[str, pd.DataFrame]:
        """The rows predicted after training, by split: all of validation and test by default."""
        return {split: splits[split] for split in ("validation", "test") if split in splits}

    def render(self, prediction: dict[str, Any]) -> dict[str, Any]:
        """A flat row for the evaluation table; the default shows the prediction as it is."""
        return prediction


_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise RuntimeError(f"task name {cls.name!r} registered twice")
    if not dataclasses.is_dataclass(cls.options):
        raise TypeError(f"task {cls.name!r}: options must be a dataclass, not {cls.options!r}")
    _REGISTRY[cls.name] = cls
    return cls


def get_task(name: str) -> Task:
    from studio import tasks  # noqa: F401  (importing the package registers every task)

    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ConfigError(f"unknown task '{name}'; choose one of: {', '.join(sorted(_REGISTRY))}") from None


def list_tasks() -> list[type[Task]]:
    from studio import tasks  # noqa: F401

    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def read_options(task: type[Task], written: dict[str, Any]) -> Any:
    """``task.options`` from the keys written under ``task:``. A key another task takes is
    ignored, as it always was: configs saved before each task had its own options hold every
    task's keys, and a saved dataset or the Data tab's choices may be trained with another task.
    Any other key is refused, naming the keys this task takes."""
    own = [f.name for f in dataclasses.fields(task.options)]
    others = {f.name for other in _REGISTRY.values() if other is not task for f in dataclasses.fields(other.options)}
    for key in written:
        if key not in own and key not in others:
            close = difflib.get_close_matches(key, own, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown config key 'task.{key}'{hint} (the {task.name} task takes: {', '.join(['name', *own])})")
    return parse_section(task.options, {key: value for key, value in written.items() if key in own}, "task.")
