"""Preference tuning of the bundled SmolLM2 on the sample pairs (assets/data/preferences_en.jsonl),
DPO and ORPO with LoRA: the held-out preference accuracy (the share of test pairs whose chosen
answer the model finds more likely, per token, than the rejected one) before and after tuning,
the tuned model's reward accuracy and margin, how close the base and the tuned model's answers to
the test prompts come to the chosen answers (ROUGE-L F1, and to the rejected ones for contrast),
and the time. Minutes a run on a CPU (each step
scores the chosen and the rejected answer, and DPO the reference model too), so it is a
benchmark, not a test: the tests train a tiny model on the same code path.

    python benchmarks/preference_smollm2.py [--objectives dpo orpo] [--steps 24]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run(objective: str, steps: int, folder: Path) -> dict:
    from studio.cli import main

    config = yaml.safe_load((ROOT / "assets/configs/preferences_en.yaml").read_text(encoding="utf-8"))
    config["data"]["train"] = str(ROOT / "assets/data/preferences_en.jsonl")
    config["task"]["objective"] = objective
    config["training"].update({"max_steps": steps, "max_length": 64, "early_stopping_patience": 0, "eval_strategy": "no"})
    config["generation"].update({"max_new_tokens": 16, "max_eval_examples": 23})
    path = folder / f"{objective}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    workspace = folder / f"{objective}-workspace"
    started = time.time()
    if main(["train", str(path), "--workspace", str(workspace), "--quiet"]) != 0:
        sys.exit(f"{objective}: the run failed (see its worker.log under {workspace})")
    [run_dir] = [p for p in (workspace / "runs").iterdir() if not p.name.startswith(".")]
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    return {"seconds": round(time.time() - started), **{k: test.get(k) for k in (
        "preference_accuracy_base", "preference_accuracy", "reward_accuracy", "reward_margin")},
        **answer_style(run_dir / "predictions_test.jsonl")}


def answer_style(predictions: Path) -> dict:
    """Mean ROUGE-L F1 of the base and the tuned model's answers against the chosen and the rejected answers."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines() if line.strip()]

    def mean(answer: str, reference: str) -> float:
        return round(sum(scorer.score(r[reference], r[answer])["rougeL"].fmeasure for r in rows) / max(1, len(rows)), 3)

    return {"chosen_rouge_base": mean("base_generation", "chosen"), "chosen_rouge": mean("generation", "chosen"),
            "rejected_rouge_base": mean("base_generation", "rejected"), "rejected_rouge": mean("generation", "rejected")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", nargs="+", default=["dpo", "orpo"])
    parser.add_argument("--steps", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="preference-bench-") as tmp:
        for objective in args.objectives:
            figures = run(objective, args.steps, Path(tmp))
            gain = (figures["preference_accuracy"] or 0) - (figures["preference_accuracy_base"] or 0)
            print(f"{objective}: preference accuracy {figures['preference_accuracy_base']} -> {figures['preference_accuracy']} "
                  f"({gain:+.3f}), reward accuracy {figures['reward_accuracy']}, margin {figures['reward_margin']}, "
                  f"answers' ROUGE-L to the chosen {figures['chosen_rouge_base']} -> {figures['chosen_rouge']}, "
                  f"to the rejected {figures['rejected_rouge_base']} -> {figures['rejected_rouge']}, {figures['seconds']} s")


if __name__ == "__main__":
    main()
