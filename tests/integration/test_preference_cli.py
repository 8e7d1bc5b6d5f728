"""Preference tuning end to end through the CLI with the tiny random Llama (seconds): DPO and ORPO
with LoRA, DPO in full, the live reward figures, the test pairs' rewards and both models' answers,
and a run that continues from a finished generation run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from studio.runs.events import read_events
from tests.conftest import train_quietly, write_csv
from tests.tiny_generation import THINGS, colour_rows, tiny_causal_lm


@pytest.fixture(scope="module")
def causal_lm(tmp_path_factory) -> Path:
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama"))


def pair_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """'what colour is the sky ?': chosen 'sky is blue .', rejected a wrong colour."""
    rng = random.Random(seed)
    colours = sorted(set(THINGS.values()))
    rows = []
    for _ in range(n):
        thing = rng.choice(sorted(THINGS))
        wrong = rng.choice([c for c in colours if c != THINGS[thing]])
        rows.append({"prompt": f"what colour is the {thing} ?", "chosen": f"{thing} is {THINGS[thing]} .",
                     "rejected": f"{thing} is {wrong} ."})
    return rows


def make_config(folder: Path, backbone: str, train: Path, *, task=None, method="lora", model=None, **training) -> Path:
    config = {
        "name": "pref",
        "task": {"name": "preference", **(task or {})},
        "data": {"train": str(train), "split": {"validation": 0.15, "test": 0.15}},
        "model": {"backbone": backbone, **(model or {})},
        "method": {"kind": method},
        "training": {"epochs": 3, "learning_rate": 5e-3, "batch_size": 8, "early_stopping_patience": 0, "warmup": 0,
                     "max_length": 32, **training},
        "generation": {"max_new_tokens": 6, "max_eval_examples": 8},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("objective", ["dpo", "orpo"])
def test_lora_preference_run_reports_rewards_live_and_on_test(tmp_path, causal_lm, objective):
    data = write_csv(tmp_path / "pairs.csv", pair_rows(80))
    trained = train_quietly(make_config(tmp_path, str(causal_lm), data, task={"objective": objective, "beta": 0.5},
                                        epochs=4), tmp_path)
    run = trained.run
    events, _ = read_events(run)
    live = [e for e in events if e.get("kind") == "log" and "reward_accuracy" in e]
    assert live, "training logs carry TRL's reward accuracy"
    later = [e["reward_margin"] for e in live[len(live) // 2:]]
    assert sum(later) / len(later) > 0, "the tuned model's chosen answers gain on the rejected ones (training pairs)"
    evals = [e for e in events if e.get("kind") == "eval" and e.get("split") == "validation" and "epoch" in e]
    assert evals and all("reward_accuracy" in e["metrics"] and "reward_margin" in e["metrics"] for e in evals)
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]
    for key in ("reward_accuracy", "reward_margin", "preference_accuracy", "preference_accuracy_base", "loss"):
        assert isinstance(test[key], float), key
    # A random two-layer model does not generalise reliably from 80 pairs: learning on held-out
    # pairs is the slow test's (SmolLM2); here the figures must be there and be shares.
    assert 0 <= test["reward_accuracy"] <= 1 and 0 <= test["preference_accuracy_base"] <= 1
    rows = read_jsonl(run / "predictions_test.jsonl")
    assert rows and {"prompt", "chosen", "rejected", "generation", "base_generation", "reward_margin", "correct"} <= set(rows[0])
    assert (run / "model" / "adapter_config.json").exists() and not (run / "model" / "ref").exists()


def test_full_dpo_keeps_the_starting_model_as_reference(tmp_path, causal_lm):
    data = write_csv(tmp_path / "pairs.csv", pair_rows(60))
    trained = train_quietly(make_config(tmp_path, str(causal_lm), data, method="full", learning_rate=1e-3, epochs=2), tmp_path)
    test = json.loads((trained.run / "metrics.json").read_text())["test"]
    assert 0 <= test["reward_accuracy"] <= 1 and "preference_accuracy_base" in test
    assert (trained.run / "model" / "model.safetensors").exists()


def test_continuing_from_a_lora_generation_run_starts_from_its_merged_weights(tmp_path, causal_lm):
    """``model.from_run``: the new run's backbone is the generation run's, its adapter is merged
    before training (the starting model is the SFT model, not the bare backbone)."""
    import torch

    from studio.config import RunConfig
    from studio.tasks import get_task, with_defaults
    from studio.tasks.base import TaskMeta
    from studio.training.prepare import prepare_run

    sft_data = write_csv(tmp_path / "colours.csv", colour_rows(40))
    sft_config = {"name": "sft", "task": {"name": "generation"}, "data": {"train": str(sft_data)},
                  "model": {"backbone": str(causal_lm)}, "method": {"kind": "lora"},
                  "training": {"epochs": 1, "learning_rate": 5e-2, "batch_size": 8, "early_stopping_patience": 0},
                  "generation": {"max_new_tokens": 4, "max_eval_examples": 2}}
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(sft_config), encoding="utf-8")
    sft = train_quietly(path, tmp_path)

    pairs = write_csv(tmp_path / "pairs.csv", pair_rows(20))
    config = with_defaults(RunConfig.load(make_config(tmp_path, "SmolLM2-135M-Instruct", pairs, model={"from_run": sft.run.name})))
    prepared = prepare_run(config, sft.workspace)
    assert prepared.config.model.backbone == str(causal_lm)  # the SFT run's backbone, not the one written
    meta = TaskMeta.from_dict(json.loads((prepared.run_dir / "task.json").read_text()))
    assert meta.info["from_run"] == sft.run.name and meta.info["start_adapter"].endswith("model")

    task = get_task("preference")
    started = task.load_model(str(causal_lm), meta, prepared.config)
    bare = task.load_model(str(causal_lm), TaskMeta("preference"), prepared.config)
    from studio.inference.loading import load_trained

    merged = load_trained(sft.run).model.merge_and_unload()
    name = "model.layers.0.self_attn.q_proj.weight"
    weights = dict(started.named_parameters())
    assert torch.allclose(weights[name], dict(merged.named_parameters())[name], atol=1e-6)
    assert not torch.allclose(weights[name], dict(bare.named_parameters())[name])


def test_from_run_names_a_run_that_is_not_there(tmp_path, causal_lm):
    from studio.config import RunConfig
    from studio.errors import ConfigError
    from studio.tasks import with_defaults
    from studio.training.prepare import prepare_run
    from studio.workspace import Workspace

    pairs = write_csv(tmp_path / "pairs.csv", pair_rows(10))
    config = with_defaults(RunConfig.load(make_config(tmp_path, str(causal_lm), pairs, model={"from_run": "nope-1"})))
    with pytest.raises(ConfigError, match="no run 'nope-1' in this workspace"):
        prepare_run(config, Workspace.at(tmp_path / "ws"))
