"""Real language: the bundled MiniLM fine-tuned through the CLI on the sample sentiment set."""

from __future__ import annotations

import json

import pytest

from studio.cli import main
from tests.conftest import ASSETS

pytestmark = pytest.mark.slow


def _run(workspace, *extra):
    assert main(["train", str(ASSETS / "configs" / "sentiment_en.yaml"), "--workspace", str(workspace.root), "--quiet", *extra]) == 0
    (run,) = [p for p in workspace.runs.iterdir() if not p.name.startswith(".")]
    return run, json.loads((run / "metrics.json").read_text())


def test_default_preset_learns_english_sentiment(workspace):
    run, metrics = _run(workspace)
    assert metrics["test"]["accuracy"] >= 0.8, metrics["test"]
    assert metrics["test"]["examples"] >= 50


def test_lora_on_the_bundled_encoder_learns(workspace):
    run, metrics = _run(workspace, "--set", "method.kind=lora", "--set", "training.epochs=2")
    assert (run / "model" / "adapter_config.json").exists()
    assert metrics["test"]["accuracy"] >= 0.7, metrics["test"]
