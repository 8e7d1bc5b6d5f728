"""A new task is one class and one registry line: a toy task registers itself, the registry and
the command line list it, its own options class types its keys of ``task:``, and every hook the
worker calls has a documented default."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import pytest

from studio.config import RunConfig
from studio.errors import ConfigError
from studio.tasks import base


@dataclass
class EchoOptions:
    times: int = 1
    """How often the text is repeated."""
    case: Literal["same", "upper"] = "same"

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ConfigError(f"bad value for 'task.times': {self.times} must be >= 1")


class Echo(base.Task):
    """Copies its input: the smallest task the contract allows, with options of its own."""

    name = "echo"
    title = "Echo"
    description = "repeats the text"
    roles = {"text": "the text"}
    required_roles = ("text",)
    example = {"text": "hello"}
    options = EchoOptions

    def normalize(self, df, config, source, labeled=True):
        return df[["text"]], []

    def fit(self, splits, cfg):
        return base.TaskMeta(task=self.name)

    def validate(self, splits, meta):
        return []

    def load_model(self, path, meta, config, **kwargs):
        return None

    def tokenize(self, df, tokenizer, meta, max_length):
        return df

    def collator(self, tokenizer, meta):
        return None

    def metric_names(self, meta):
        return "loss", False

    def compute_metrics(self, meta):
        return None

    def predict(self, model, tokenizer, df, meta, max_length, batch_size=32):
        return [{"text": text, "predicted": text} for text in df["text"]]


class Plain(Echo):
    """A task that declares no options."""

    name = "plain"
    options = base.Task.options


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    base.register(Echo)
    base.register(Plain)
    return Echo


def test_a_toy_task_registers_and_is_listed(registered, capsys):
    from studio.cli import main

    assert isinstance(base.get_task("echo"), Echo)
    assert Echo in base.list_tasks()
    assert main(["tasks"]) == 0
    assert "echo" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="registered twice"):
        base.register(type("Echo", (Echo,), {}))


def test_every_hook_the_worker_calls_has_a_default(registered):
    task = base.get_task("echo")
    splits = {"train": pd.DataFrame({"text": ["a"]}), "validation": pd.DataFrame({"text": ["b"]}),
              "test": pd.DataFrame({"text": ["c", "d"]})}
    meta = base.TaskMeta(task="echo")
    assert {split: len(rows) for split, rows in task.prediction_rows(splits, meta).items()} == {"validation": 1, "test": 2}
    assert task.loss_metrics(0.5) == {}
    assert task.peft_task_type == "SEQ_CLS" and task.hf_auto_class.startswith("AutoModelFor")
    assert task.compare_with_base is False
    assert task.full_metrics([], meta) == {} and task.render({"a": 1}) == {"a": 1}
    assert task.text_lengths(splits["train"], None) == []
    assert dataclasses.fields(base.Task.options) == ()  # no options unless the task declares them


def test_a_toy_tasks_options_reach_it_typed(registered):
    from studio.tasks import with_defaults

    config = RunConfig.from_dict({"task": {"name": "echo", "times": 3.0}})
    options = base.get_task("echo").options_of(config)
    assert options == EchoOptions(times=3, case="same") and isinstance(options.times, int)
    resolved = with_defaults(config)
    assert resolved.task.to_dict() == {"name": "echo", "times": 3, "case": "same"}
    assert resolved.model.backbone == "all-MiniLM-L6-v2"  # the bundled backbone of its kind (encoder)
    assert yaml_task(resolved) == {"name": "echo", "times": 3, "case": "same"}
    # A key another task takes is ignored, as configs saved with every task's keys hold them.
    assert base.get_task("echo").options_of(RunConfig.from_dict({"task": {"name": "echo", "problem_type": "auto"}})) == EchoOptions()


@pytest.mark.parametrize("task, words", [
    ({"name": "echo", "colour": "red"}, ["unknown config key 'task.colour'", "the echo task takes: name, times, case"]),
    ({"name": "echo", "time": 2}, ["'task.time'", "did you mean 'times'"]),
    ({"name": "echo", "times": "twice"}, ["'task.times'", "whole number"]),
    ({"name": "echo", "times": 0}, ["'task.times'", ">= 1"]),
    ({"name": "echo", "case": "lower"}, ["'task.case'", "same, upper"]),
    ({"name": "plain", "times": 2}, []),  # another task's key
    ({"name": "plain", "colour": "red"}, ["'task.colour'", "the plain task takes: name)"]),
])
def test_an_option_the_task_does_not_take_is_refused_naming_its_keys(registered, task, words):
    from studio.tasks import with_defaults

    config = RunConfig.from_dict({"task": task})  # the configuration keeps the options as written
    if not words:
        assert with_defaults(config).task.to_dict() == {"name": task["name"]}
        return
    with pytest.raises(ConfigError) as info:
        with_defaults(config)
    for word in words:
        assert word in str(info.value)


def test_options_must_be_a_dataclass(registered):
    with pytest.raises(TypeError, match="options must be a dataclass"):
        base.register(type("Loose", (Echo,), {"name": "loose", "options": dict}))


def test_the_data_tabs_form_sends_a_run_only_its_tasks_own_options():
    """The Data tab's form holds every task's options side by side (from each task's own class);
    the config it makes holds only the chosen task's."""
    from studio.ui.data_state import DataState, make_config, task_option_fields

    fields = {name: cls for cls, name in task_option_fields()}
    assert {"problem_type", "label_delimiter", "system_prompt", "prompt_template"} <= set(fields)
    assert all(name in {f.name for f in dataclasses.fields(cls)} for name, cls in fields.items())
    state = DataState(path="x.csv", task="classification", options={"label_delimiter": "|", "system_prompt": "Be brief."})
    assert make_config(state).task.options == {"label_delimiter": "|"}
    assert make_config(state, "generation").task.options == {"system_prompt": "Be brief."}


def yaml_task(config: RunConfig) -> dict:
    import yaml

    return yaml.safe_load(config.to_yaml())["task"]


def test_the_worker_reads_no_hook_by_name():
    """Hooks are declared on the base class, so the worker calls them instead of probing."""
    from pathlib import Path

    import studio.training

    for path in Path(studio.training.__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "getattr(task" not in text and "hasattr(task" not in text, path.name


def test_scoring_the_base_model_is_a_setting_with_the_tasks_default():
    """Generation scores the backbone before training unless told not to; other tasks only when asked."""
    from studio.config import RunConfig
    from studio.training.worker import scores_base_model

    def scores(task: str, value) -> bool:
        config = RunConfig.from_dict({"task": {"name": task}, "training": {"score_base_model": value}})
        return scores_base_model(config, base.get_task(task))

    assert scores("generation", None) is True and scores("generation", False) is False
    assert scores("classification", None) is False and scores("classification", True) is True
    with pytest.raises(Exception, match="score_base_model"):
        RunConfig.from_dict({"training": {"score_base_model": "sometimes"}})
