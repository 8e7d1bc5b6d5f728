"""Where a run's memory goes: one studio run in its own process, its process tree's resident
memory sampled while it runs, and the peak of each phase the worker's events mark.

The phases are read off the run's events.jsonl after it ends: each sample belongs to the
latest marking event written before it (the worker's status changes, its settings, the base
model's scoring, the classical baseline, training steps, the memory event after training and
the scoring of each split). Memory figures do not depend on the machine's load as times do.

    python benchmarks/memory_profile.py generation [--steps 6] [--fresh-cache]
    python benchmarks/memory_profile.py classification [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from harness import ROOT, run_studio


def phase_of(event: dict) -> str | None:
    """The phase an event starts, or None when it starts none."""
    kind = event.get("kind")
    if kind == "status" and event.get("status") in ("starting", "running"):
        return {"starting": "imports, data, tokenizer", "running": "trainer built"}[event["status"]]
    if kind == "settings":
        return "model loading"
    if kind == "log":
        message = str(event.get("message", ""))
        if message.startswith("scoring the base model"):
            return "base model scoring"
        if message.startswith("classical baseline"):
            return "after baseline"
        if message.startswith("scoring the "):
            return f"scoring {message.split()[2]}"
    if kind == "progress":
        return "training"
    if kind == "memory":
        return "saving"
    return None


def peaks_by_phase(samples: list[tuple[float, int]], events: list[dict]) -> list[tuple[str, float]]:
    """(phase, peak GiB) in the order the phases came."""
    marks = [(e["t"], phase) for e in events if "t" in e and (phase := phase_of(e))]
    peaks: dict[str, int] = {}
    for t, rss in samples:
        current = "process start"
        for mark_t, phase in marks:
            if mark_t <= t:
                current = phase
        peaks[current] = max(peaks.get(current, 0), rss)
    return [(phase, rss / 1024**3) for phase, rss in peaks.items()]


def generation_config(steps: int) -> dict:
    """The instructions sample's LoRA SFT of the bundled SmolLM2 (batch 8, max length 112, fp32)."""
    return {
        "name": "memory-generation", "task": {"name": "generation"},
        "data": {"train": str(ROOT / "assets" / "data" / "instructions_en.jsonl"),
                 "columns": {"instruction": "instruction", "input": "input", "output": "output"}},
        "model": {"backbone": "SmolLM2-135M-Instruct"}, "method": {"kind": "lora"},
        "training": {"max_steps": steps, "batch_size": 8, "max_length": 112, "learning_rate": 1e-3, "precision": "fp32",
                     "eval_strategy": "no", "save_strategy": "no"},
        "generation": {"max_new_tokens": 64, "max_eval_examples": 20},
    }


def classification_config(steps: int) -> dict:
    """The sentiment sample's full fine-tune of the bundled MiniLM."""
    return {
        "name": "memory-classification",
        "data": {"train": str(ROOT / "assets" / "data" / "sentiment_en.csv")},
        "model": {"backbone": "all-MiniLM-L6-v2"},
        "training": {"max_steps": steps, "batch_size": 16, "max_length": 128, "precision": "fp32",
                     "eval_strategy": "no", "save_strategy": "no"},
    }


def set_value(config: dict, assignment: str) -> None:
    """``section.key=value`` into a config dict, the value read as YAML."""
    import yaml

    key, value = assignment.split("=", 1)
    *sections, last = key.split(".")
    for section in sections:
        config = config.setdefault(section, {})
    config[last] = yaml.safe_load(value)


def profile(config: dict, workspace: Path, cache: Path | None = None) -> dict:
    """Run the studio's worker on ``config`` and measure its memory; ``cache``: a workspace cache
    to share (a converted model, tokenized data) instead of starting from an empty one."""
    if cache is not None and not (workspace / "cache").exists():
        workspace.mkdir(parents=True, exist_ok=True)
        cache.mkdir(parents=True, exist_ok=True)
        (workspace / "cache").symlink_to(cache, target_is_directory=True)
    result = run_studio(config, workspace, warmup=1)
    memory = next((e for e in result["events"] if e["kind"] == "memory"), {})
    return {"peak_gib": result["tree_peak_gib"], "phases": peaks_by_phase(result["memory_samples"], result["events"]),
            "recorded_peak_gib": memory.get("peak_gib"), "estimated_gib": memory.get("estimated_gib"),
            "planned_memory_gib": result["planned_memory_gib"], "run_dir": result["run_dir"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", choices=("generation", "classification"))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--fresh-cache", action="store_true",
                        help="start from an empty workspace cache (the GGUF conversion and tokenization included)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line too")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config value to change, e.g. training.score_base_model=false (YAML value)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    config = (generation_config if args.job == "generation" else classification_config)(args.steps)
    for assignment in args.set:
        set_value(config, assignment)
    shared = Path(tempfile.gettempdir()) / "studio-memory-profile-cache"
    with tempfile.TemporaryDirectory() as tmp:
        result = profile(config, Path(tmp) / "ws", cache=None if args.fresh_cache else shared)
    print(f"{args.job}: {args.steps} steps, peak RSS of the process tree {result['peak_gib']:.2f} GiB")
    for phase, gib in result["phases"]:
        print(f"  {phase:28}{gib:7.2f} GiB")
    print(f"the run recorded: peak {result['recorded_peak_gib']} GiB above its start, estimated {result['estimated_gib']} GiB; "
          f"planned before launch {result['planned_memory_gib']} GiB")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
