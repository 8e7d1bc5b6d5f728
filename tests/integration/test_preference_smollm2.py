"""Preference tuning of the bundled SmolLM2 on the sample pairs (assets/data/preferences_en.jsonl):
DPO and ORPO with LoRA raise the held-out preference accuracy (the share of test pairs whose
chosen answer the model finds more likely, per token, than the rejected one) above the model's
before tuning, and the tuned model's implicit reward ranks most test pairs right. Slow: a few
dozen steps on a CPU each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import train_quietly

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["dpo", "orpo"])
def test_preference_tuning_smollm2_beats_the_base_model_on_held_out_pairs(tmp_path, objective):
    config = yaml.safe_load((ROOT / "assets/configs/preferences_en.yaml").read_text(encoding="utf-8"))
    config["data"]["train"] = str(ROOT / "assets/data/preferences_en.jsonl")
    config["task"]["objective"] = objective
    config["training"].update({"max_steps": 24, "max_length": 64, "early_stopping_patience": 0, "eval_strategy": "no"})
    config["generation"].update({"max_new_tokens": 16, "max_eval_examples": 23})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    run = train_quietly(path, tmp_path).run
    test = json.loads((run / "metrics.json").read_text())["test"]
    print(objective, {k: test[k] for k in ("reward_accuracy", "reward_margin", "preference_accuracy", "preference_accuracy_base")})
    assert test["preference_accuracy"] > test["preference_accuracy_base"]
    assert test["reward_accuracy"] > 0.6 and test["reward_margin"] > 0
    rows = [json.loads(line) for line in (run / "predictions_test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(row["generation"] and row["base_generation"] and row["chosen"] for row in rows)
