"""CPU benchmark: the studio's worker against a plain Trainer script, same model, data and steps,
for speed and for memory (the peak resident memory of each one's process tree, and the ratio).

Workload ``classification`` (default): both fine-tune the bundled MiniLM for the same number of optimizer steps at the same batch size
on texts of varied length (8 to ~250 words, median ~60), where length grouping and padding to
each batch's longest should win, or with ``--lengths even`` on texts of one length (60 words),
where there is no padding to save and the studio must merely not be slower. Each side runs in
its own process, runs are interleaved, warm-up steps are excluded, and the median of the repeats is reported.
Tokens/s counts non-padding tokens (samples/s times the mean tokenized length of the data).

Workload ``generation``: LoRA SFT of the bundled SmolLM2 (converted once into a model folder) on
the instructions sample, r=16 on every linear layer, batch 8, max length 112, fp32: a plain
transformers + peft Trainer script against the studio (no validation or test split on either
side, so neither scores anything after training).

    python benchmarks/cpu_speed.py [--lengths varied|even] [--repeats 3] [--steps 24] [--batch 16]
    python benchmarks/cpu_speed.py --workload generation [--repeats 1] [--steps 8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
from pathlib import Path

import pandas as pd
from harness import ROOT, estimate_ratios, median_of, run_plain, run_studio

WARMUP_STEPS = 3
EVEN_WORDS = 60


def review_texts(path: Path, rows: int, seed: int = 0, even: bool = False) -> Path:
    """Reviews glued together into texts whose word counts spread like real user data (or are all 60)."""
    sentences = pd.read_csv(ROOT / "assets" / "data" / "sentiment_en.csv")
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        target = EVEN_WORDS if even else min(250, max(8, int(rng.lognormvariate(4.1, 0.6))))  # median ~60 words
        first = sentences.sample(1, random_state=rng.randint(0, 10**6)).iloc[0]
        words = first["text"].split()
        while len(words) < target:
            words += sentences["text"].iloc[rng.randrange(len(sentences))].split()
        out.append({"text": " ".join(words[:target]), "label": first["label"]})
    pd.DataFrame(out).to_csv(path, index=False)
    return path


def studio_config(data: Path, args) -> dict:
    return {
        "name": "bench", "data": {"train": str(data), "split": {"validation": 0.0, "test": 0.0}},
        "training": {"max_steps": args.steps, "batch_size": args.batch, "max_length": args.max_length, "learning_rate": 5e-5,
                     "eval_strategy": "no", "save_strategy": "no"},
    }


def instruction_pairs(path: Path) -> Path:
    """The instructions sample as the plain script reads chat data (JSONL prompt/completion): the
    instruction and its input make the user's turn, as the studio's generation task makes it."""
    rows = pd.read_json(ROOT / "assets" / "data" / "instructions_en.jsonl", lines=True).fillna("")
    with open(path, "w", encoding="utf-8") as f:
        for row in rows.itertuples():
            prompt = f"{row.instruction}\n\n{row.input}" if row.input else row.instruction
            f.write(json.dumps({"prompt": prompt, "completion": row.output}, ensure_ascii=False) + "\n")
    return path


def generation_config(args) -> dict:
    return {
        "name": "bench-generation", "task": {"name": "generation"},
        "data": {"train": str(ROOT / "assets" / "data" / "instructions_en.jsonl"), "split": {"validation": 0.0, "test": 0.0},
                 "columns": {"instruction": "instruction", "input": "input", "output": "output"}},
        "model": {"backbone": "SmolLM2-135M-Instruct"}, "method": {"kind": "lora", "lora": {"r": args.lora_r}},
        "training": {"max_steps": args.steps, "batch_size": args.batch, "max_length": args.max_length, "learning_rate": 1e-3,
                     "precision": "fp32", "eval_strategy": "no", "save_strategy": "no"},
    }


def generation(args, tmp: Path) -> tuple[list[dict], list[dict], str]:
    """Plain transformers + peft against the studio on the SmolLM2 LoRA SFT job, interleaved."""
    from studio.models.loading import model_folder
    from studio.models.resolve import resolve_backbone

    # One converted model for both sides: the studio's workspaces share this cache.
    cache = Path(os.environ.get("STUDIO_BENCH_CACHE", Path(tempfile.gettempdir()) / "studio-bench-cache"))
    model_dir = model_folder(resolve_backbone("SmolLM2-135M-Instruct", kind="decoder"), cache)
    data = instruction_pairs(tmp / "instructions.jsonl")
    from studio.config import LoraConfig

    lora = ["--task", "causal", "--lora-r", str(args.lora_r), "--lora-dropout", str(LoraConfig().dropout), "--learning-rate", "1e-3"]
    plain, studio = [], []
    for i in range(args.repeats):
        plain.append(run_plain(model_dir, data, steps=args.steps, batch=args.batch, max_length=args.max_length, warmup=WARMUP_STEPS,
                               extra=lora))
        workspace = tmp / f"ws{i}"
        workspace.mkdir()
        (workspace / "cache").symlink_to(cache, target_is_directory=True)
        studio.append(run_studio(generation_config(args), workspace, warmup=WARMUP_STEPS))
        report_repeat(i, plain[-1], studio[-1])
    return plain, studio, f"SmolLM2-135M LoRA r={args.lora_r} SFT on the instructions sample"


def report_repeat(i: int, plain: dict, studio: dict) -> None:
    print(f"repeat {i + 1}: plain {plain['samples_per_s']:.2f} samples/s, {plain['tree_peak_gib']:.2f} GiB; "
          f"studio {studio['samples_per_s']:.2f} samples/s, {studio['tree_peak_gib']:.2f} GiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("classification", "generation"), default="classification")
    parser.add_argument("--lengths", choices=("varied", "even"), default="varied")
    parser.add_argument("--repeats", type=int, default=None, help="default: 3 (classification), 1 (generation)")
    parser.add_argument("--steps", type=int, default=None, help="default: 24 (classification), 8 (generation)")
    parser.add_argument("--batch", type=int, default=None, help="default: 16 (classification), 8 (generation)")
    parser.add_argument("--max-length", type=int, default=None, help="default: 384 (classification), 112 (generation)")
    parser.add_argument("--lora-r", type=int, default=16, help="generation: the LoRA rank")
    args = parser.parse_args()
    generating = args.workload == "generation"
    for name, classifying, generation_default in (("repeats", 3, 1), ("steps", 24, 8), ("batch", 16, 8), ("max_length", 384, 112)):
        if getattr(args, name) is None:
            setattr(args, name, generation_default if generating else classifying)
    if generating:
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread each side, as the side-by-side this job comes from
        with tempfile.TemporaryDirectory() as tmp:
            plain, studio, what = generation(args, Path(tmp))
        mean_tokens = statistics.mean(r["mean_tokens"] for r in studio)
        print(f"\n{what}: batch {args.batch}, max length {args.max_length}, {args.steps} steps ({WARMUP_STEPS} warm-up excluded), "
              f"median of {args.repeats}")
        report(plain, studio, mean_tokens)
        return

    from studio.models.resolve import resolve_backbone

    model_dir = resolve_backbone("all-MiniLM-L6-v2").path
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = args.steps * args.batch
        data = review_texts(tmp / f"{args.lengths}.csv", rows, even=args.lengths == "even")
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        lengths = [min(args.max_length, len(ids)) for ids in tokenizer(pd.read_csv(data)["text"].tolist())["input_ids"]]
        mean_tokens = statistics.mean(lengths)
        plain, studio = [], []
        for i in range(args.repeats):  # interleaved, so drifts in machine load hit both sides
            plain.append(run_plain(model_dir, data, steps=args.steps, batch=args.batch, max_length=args.max_length, warmup=WARMUP_STEPS))
            studio.append(run_studio(studio_config(data, args), tmp / f"ws{i}", warmup=WARMUP_STEPS))
            report_repeat(i, plain[-1], studio[-1])
    print(f"\ndata: {rows} texts of {args.lengths} length, median {statistics.median(lengths):.0f} tokens (mean {mean_tokens:.0f}), batch {args.batch}, "
          f"{args.steps} steps ({WARMUP_STEPS} warm-up excluded), median of {args.repeats}")
    report(plain, studio, mean_tokens)


def report(plain: list[dict], studio: list[dict], mean_tokens: float) -> None:
    """Speed and peak memory of both sides, their ratios, and the studio's estimates beside what it measured."""
    a, b = median_of(plain, "samples_per_s"), median_of(studio, "samples_per_s")
    memory_a, memory_b = median_of(plain, "tree_peak_gib"), median_of(studio, "tree_peak_gib")
    print(f"{'':8}{'samples/s':>12}{'tokens/s':>12}{'peak GiB':>10}")
    print(f"{'plain':8}{a:12.2f}{a * mean_tokens:12.0f}{memory_a:10.2f}")
    print(f"{'studio':8}{b:12.2f}{b * mean_tokens:12.0f}{memory_b:10.2f}")
    print(f"ratio studio/plain: speed {b / a:.2f}x, peak memory {memory_b / memory_a:.2f}x (process tree RSS; the goal is <= 1.1x)")
    recorded, estimated = median_of(studio, "peak_memory_gib"), median_of(studio, "estimated_peak_gib")
    if recorded is not None and estimated:
        print(f"the run's own memory figure: peak {recorded:.2f} GiB above its start, estimated {estimated:.2f} GiB "
              f"(measured/estimated {recorded / estimated:.2f}; 0.75-1.25 is the target)")
    ratios = [estimate_ratios(r) for r in studio]
    time_ratio, memory_ratio = median_of(ratios, "time_ratio"), median_of(ratios, "memory_ratio")
    print("measured / planned (the Train tab's estimate; 0.75-1.25 is the target): "
          f"time {time_ratio if time_ratio is None else round(time_ratio, 2)}, "
          f"memory {memory_ratio if memory_ratio is None else round(memory_ratio, 2)}")


if __name__ == "__main__":
    main()
