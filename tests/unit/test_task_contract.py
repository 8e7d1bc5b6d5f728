"""A new task is one class and one registry line: a toy task registers itself, the registry and
the command line list it, and every hook the worker calls has a documented default."""

from __future__ import annotations

import pandas as pd
import pytest

from studio.tasks import base


class Echo(base.Task):
    """Copies its input: the smallest task the contract allows."""

    name = "echo"
    title = "Echo"
    description = "repeats the text"
    roles = {"text": "the text"}
    required_roles = ("text",)
    example = {"text": "hello"}

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


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    base.register(Echo)
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
