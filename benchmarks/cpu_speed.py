"""CPU benchmark: the studio's worker against a plain Trainer script, same model, data and steps.

Both fine-tune the bundled MiniLM for the same number of optimizer steps at the same batch size
on texts of varied length (8 to ~250 words, median ~60), where length grouping and padding to
each batch's longest should win, or with ``--lengths even`` on texts of one length (60 words),
where there is no padding to save and the studio must merely not be slower. Each side runs in
its own process, runs are interleaved, warm-up steps are excluded, and the median of the repeats is reported.
Tokens/s counts non-padding tokens (samples/s times the mean tokenized length of the data).

    python benchmarks/cpu_speed.py [--lengths varied|even] [--repeats 3] [--steps 24] [--batch 16]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", choices=("varied", "even"), default="varied")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=384)
    args = parser.parse_args()

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
            print(f"repeat {i + 1}: plain {plain[-1]['samples_per_s']:.1f} samples/s, studio {studio[-1]['samples_per_s']:.1f} samples/s", flush=True)
    a = median_of(plain, "samples_per_s")
    b = median_of(studio, "samples_per_s")
    print(f"\ndata: {rows} texts of {args.lengths} length, median {statistics.median(lengths):.0f} tokens (mean {mean_tokens:.0f}), batch {args.batch}, "
          f"{args.steps} steps ({WARMUP_STEPS} warm-up excluded), median of {args.repeats}")
    print(f"{'':8}{'samples/s':>12}{'tokens/s':>12}")
    print(f"{'plain':8}{a:12.1f}{a * mean_tokens:12.0f}")
    print(f"{'studio':8}{b:12.1f}{b * mean_tokens:12.0f}")
    print(f"ratio studio/plain: {b / a:.2f}x")
    ratios = [estimate_ratios(r) for r in studio]
    time_ratio, memory_ratio = median_of(ratios, "time_ratio"), median_of(ratios, "memory_ratio")
    print("measured / planned (the Train tab's estimate; 0.75-1.25 is the target): "
          f"time {time_ratio if time_ratio is None else round(time_ratio, 2)}, "
          f"memory {memory_ratio if memory_ratio is None else round(memory_ratio, 2)}")


if __name__ == "__main__":
    main()
