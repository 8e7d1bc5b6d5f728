"""GPU benchmark: the studio's default run against a plain Trainer script on four workloads.

Sized for one H200: about 8.5 minutes for all four workloads once each (most of it process
start-up, model building and the first compilation of flex attention in each worker; the
training steps themselves take seconds). ``--budget-s`` (default 450) is the most the whole
script may take: a run starts only when the longest run of its model so far (else of any model)
would still end inside it, with time kept for the maths check, and no run may outlast it, so a
tight allowance gets the first workloads and a line saying what was left out. Models are random-initialised
with the real shapes (the compute is the same as with pretrained weights); tokenizers are the
bundled ones (SmolLM2's BPE for the decoders, MiniLM's BERT WordPiece, the vocabulary of
BERT-base, for the encoder), so no hub access is needed.

| workload     | model shape            | data                                   | plain script               |
|--------------|------------------------|----------------------------------------|----------------------------|
| qwen05-full  | Qwen2.5-0.5B, full SFT | chat, 32-1024 tokens (median ~300)     | batch 8, pad to longest, bf16 |
| qwen05-lora  | same, LoRA r=16 all-linear | same                               | same, LoRA                 |
| qwen15-full  | Qwen2.5-1.5B, full SFT | same                                   | same                       |
| bert-cls     | BERT-base, 2 classes   | texts, 8-256 tokens (median ~60)       | batch 8, pad to longest, fp32 (faster than its bf16) |

The studio side is the worker with its defaults (batch from a token budget, bf16, packing with
flex or flash attention, fused AdamW, ...), only max_steps and max_length fixed. Both run the
same number of optimizer steps on the same data and seed, each in its own process; runs are
interleaved, warm-up steps (compilation included) are left out of the timing, and the median of
the repeats is reported. Tokens/s counts non-padding tokens; MFU is against 989 TFLOP/s (dense
bf16), from 6 FLOPs per parameter and token (4 for frozen LoRA weights), attention not counted.
A final check runs the same eight examples through the 0.5B model padded (sdpa) and packed (the
studio's attention) and compares the losses (same maths). Each run's line splits its wall time
into setup (process start, imports, data, model loading), training (warm-up and compilation
included) and what came after (saving, exit), and the last line adds them up, so the time a
tight allowance needs can be planned. Peaks are the GPU allocator's on both sides (with
``--tiny`` on a CPU: the plain script's whole resident memory, the studio's part above its start).

    python benchmarks/gpu_speed.py [--workloads qwen05-full,bert-cls] [--repeats 2] [--budget-s 450] [--out results.json]
    python benchmarks/gpu_speed.py --tiny   # a CPU smoke run of this script with tiny shapes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import ROOT, estimate_ratios, median_of, run_plain, run_studio

PEAK_FLOPS = 989e12

QWEN = dict(model_type="qwen2", hidden_act="silu", max_position_embeddings=32768, rope_theta=1_000_000.0,
            rms_norm_eps=1e-6, tie_word_embeddings=True, vocab_size=151936, use_cache=False)
SHAPES = {
    "qwen05": dict(QWEN, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2),
    "qwen15": dict(QWEN, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2),
    "bert": dict(model_type="bert", hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                 vocab_size=30522, max_position_embeddings=512),
}
TINY = {
    "qwen05": dict(QWEN, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=49152),
    "qwen15": dict(QWEN, hidden_size=96, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=49152),
    "bert": dict(model_type="bert", hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 vocab_size=30522, max_position_embeddings=512),
}
WORKLOADS = {
    # name: (shape, tokenizer, lora rank)
    "qwen05-full": ("qwen05", "causal", None),
    "bert-cls": ("bert", "encoder", None),
    "qwen05-lora": ("qwen05", "causal", 16),
    "qwen15-full": ("qwen15", "causal", None),
}
PLAIN_BATCH = 8
MATHS_CHECK_S = 45
"""Kept for the final maths check: one process that loads the 0.5B model twice and compiles the
packed attention once (a guess, with room to spare; the check prints how long it took)."""


# ---- models and data ------------------------------------------------------------------------

def bundled_tokenizers(folder: Path) -> Path:
    """Tokenizer files of the bundled backbones, in ``folder/causal`` and ``folder/encoder``."""
    from studio.models.loading import model_folder
    from studio.models.resolve import resolve_backbone

    for kind, name in (("causal", "SmolLM2-135M-Instruct"), ("encoder", "all-MiniLM-L6-v2")):
        source = Path(model_folder(resolve_backbone(name), folder / "cache"))
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for path in source.iterdir():
            if path.is_file() and (path.name.startswith(("tokenizer", "vocab", "merges", "special_tokens")) or path.suffix == ".jinja"):
                shutil.copy(path, folder / kind / path.name)
    return folder


def build_model(shape: dict[str, Any], tokenizer_dir: Path, out: Path) -> Path:
    """A randomly initialised model of ``shape`` saved with the tokenizer, as a local backbone."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    if (out / "config.json").exists():
        return out
    values = dict(shape)
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    cls = AutoModelForSequenceClassification if config.model_type == "bert" else AutoModelForCausalLM
    started = time.time()
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = cls.from_config(config, dtype=torch.float32)
    model.save_pretrained(out)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the runs need the GPU's memory, not this process's cached blocks
    for path in tokenizer_dir.iterdir():
        shutil.copy(path, out / path.name)
    print(f"built {out.name} in {time.time() - started:.0f}s", flush=True)
    return out


def word_pool(tokenizer_dir: Path) -> list[str]:
    """Whole words the tokenizer keeps as one token, so text length in tokens is controlled."""
    from transformers import AutoTokenizer

    vocab = AutoTokenizer.from_pretrained(tokenizer_dir).get_vocab()
    byte_level = any(token.startswith("Ġ") for token in vocab)  # GPT-2 style BPE marks a leading space with Ġ
    words = []
    for token in vocab:
        word = token[1:] if byte_level and token.startswith("Ġ") else (None if byte_level else token)
        if word and word.isalpha() and word.islower() and 3 <= len(word) <= 9:
            words.append(word)
    words = sorted(set(words))
    return words[:5000]


def lognormal_lengths(rng: random.Random, n: int, median: int, sigma: float, low: int, high: int) -> list[int]:
    return [min(high, max(low, int(rng.lognormvariate(math.log(median), sigma)))) for _ in range(n)]


def chat_data(path: Path, words: list[str], rows: int, seed: int = 0) -> Path:
    """Prompt/completion pairs of 32-1024 tokens (median ~300) after the chat template."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for total in lognormal_lengths(rng, rows, 300, 0.55, 32, 1000):
            body = max(4, total - 30)  # the template and special tokens add about 30
            prompt = max(2, body // 4)
            f.write(json.dumps({"prompt": " ".join(rng.choices(words, k=prompt)),
                                "completion": " ".join(rng.choices(words, k=body - prompt))}) + "\n")
    return path


def text_data(path: Path, words: list[str], rows: int, seed: int = 0) -> Path:
    """Two-class texts of 8-256 tokens (median ~60); the label follows a marker word, so it can be learned."""
    import csv

    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for n in lognormal_lengths(rng, rows, 60, 0.7, 8, 250):
            label = rng.choice(["good", "bad"])
            text = rng.choices(words, k=n - 1)
            text.insert(rng.randrange(n), words[0] if label == "good" else words[1])
            writer.writerow([" ".join(text), label])
    return path


# ---- one workload ---------------------------------------------------------------------------

def studio_config(name: str, model_dir: Path, data: Path, steps: int, lora: int | None, causal: bool) -> dict[str, Any]:
    return {
        "name": name,
        "task": {"name": "generation" if causal else "classification"},
        "data": {"train": str(data), "split": {"validation": 0.0, "test": 0.0}},
        "model": {"backbone": str(model_dir)},
        "method": {"kind": "lora", "lora": {"r": lora, "alpha": 2 * lora}} if lora else {"kind": "full"},
        "training": {"max_steps": steps, "max_length": 1024 if causal else 256, "learning_rate": 5e-5,
                     "eval_strategy": "no", "save_strategy": "no", "logging_steps": 5},
    }


def flops_per_token(shape: dict[str, Any], lora: int | None, causal: bool) -> float:
    from studio.models.estimate import estimate

    est = estimate(shape, batch_size=1, seq_len=1, lora_r=lora, causal_lm=causal)
    return est.flops_per_step if est else float("nan")


def maths_check(model_dir: Path, data: Path, attention: str) -> dict[str, Any]:
    """The same eight examples, padded with sdpa and packed with the studio's attention: the
    losses must agree (up to bf16 rounding)."""
    import pandas as pd
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.tasks.generation.chat import CausalCollator
    from studio.training.speed import PackedCausalCollator

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = pd.read_json(data, lines=True).head(8)
    features = []
    for prompt, completion in zip(rows["prompt"], rows["completion"]):
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}],
                                             tokenize=False)
        ids = tokenizer(text, add_special_tokens=False, truncation=True, max_length=1024)["input_ids"]
        features.append({"input_ids": ids, "labels": ids})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    losses = {}
    pad = tokenizer.pad_token_id or 0
    for name, impl, collate in (("padded", "sdpa", CausalCollator(pad)), ("packed", attention, PackedCausalCollator(pad))):
        model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation=impl, dtype=torch.float32).to(device)
        model.config.use_cache = False
        batch = {k: v.to(device) for k, v in collate(features).items()}
        with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            losses[name] = model(**batch).loss.item()
        del model
    return {**losses, "relative_difference": abs(losses["packed"] - losses["padded"]) / losses["padded"], "attention": attention}


def summarize(name: str, plain: list[dict], studio: list[dict], fpt: float) -> dict[str, Any]:
    a_tok, b_tok = median_of(plain, "tokens_per_s"), median_of(studio, "tokens_per_s")
    a_smp, b_smp = median_of(plain, "samples_per_s"), median_of(studio, "samples_per_s")
    row = {"workload": name, "repeats": min(len(plain), len(studio)),
           "plain_tokens_per_s": a_tok, "studio_tokens_per_s": b_tok, "plain_samples_per_s": a_smp, "studio_samples_per_s": b_smp,
           "ratio_tokens": b_tok / a_tok if a_tok and b_tok else None, "ratio_samples": b_smp / a_smp if a_smp and b_smp else None,
           "plain_mfu": a_tok * fpt / PEAK_FLOPS if a_tok else None, "studio_mfu": b_tok * fpt / PEAK_FLOPS if b_tok else None,
           "plain_peak_gib": median_of(plain, "peak_memory_gib"), "studio_peak_gib": median_of(studio, "peak_memory_gib"),
           "studio_estimated_gib": median_of(studio, "estimated_peak_gib"),
           "time_ratio": median_of([estimate_ratios(r) for r in studio], "time_ratio"),
           "memory_ratio": median_of([estimate_ratios(r) for r in studio], "memory_ratio")}
    for side, runs in (("plain", plain), ("studio", studio)):
        row[f"{side}_phases_s"] = {phase: median_of([r["phases_s"] for r in runs], phase) for phase in ("setup", "train", "after")}
    if studio:
        row["studio_settings"] = studio[-1]["settings"]
        row["studio_losses"] = studio[-1]["losses"]
    if plain:
        row["plain_losses"] = plain[-1]["losses"]
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    def fmt(value, spec):
        width = int("".join(c for c in spec.split(",")[0].split(".")[0] if c.isdigit()) or 0)
        return format(value, spec) if isinstance(value, (int, float)) else "-".rjust(width)

    print(f"\n{'workload':13}{'n':>3}{'plain tok/s':>13}{'studio tok/s':>14}{'ratio':>7}{'plain smp/s':>13}{'studio smp/s':>14}"
          f"{'ratio':>7}{'MFU a':>7}{'MFU b':>7}{'peak a':>8}{'peak b':>8}{'est b':>7}")
    for r in rows:
        print(f"{r['workload']:13}{r['repeats']:3}{fmt(r['plain_tokens_per_s'], '13,.0f')}{fmt(r['studio_tokens_per_s'], '14,.0f')}"
              f"{fmt(r['ratio_tokens'], '7.2f')}{fmt(r['plain_samples_per_s'], '13,.1f')}{fmt(r['studio_samples_per_s'], '14,.1f')}"
              f"{fmt(r['ratio_samples'], '7.2f')}{fmt(r['plain_mfu'], '7.1%')}{fmt(r['studio_mfu'], '7.1%')}"
              f"{fmt(r['plain_peak_gib'], '8.1f')}{fmt(r['studio_peak_gib'], '8.1f')}{fmt(r['studio_estimated_gib'], '7.1f')}")
    print("targets: qwen05-full tokens ratio >= 6, bert-cls samples ratio >= 4; estimate within 25% of the peak (peak b vs est b)")
    print("\nmeasured / planned (the Train tab's estimate; within 0.75-1.25 is the target):")
    for r in rows:
        print(f"  {r['workload']:13} time {fmt(r.get('time_ratio'), '5.2f')}  memory {fmt(r.get('memory_ratio'), '5.2f')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=8, help="steps left out of the timing (compilation happens there)")
    parser.add_argument("--budget-s", type=float, default=450, help="the most the whole script may take, in seconds")
    parser.add_argument("--tokenizers", type=Path, help="folder with causal/ and encoder/ tokenizer files (default: the bundled models')")
    parser.add_argument("--work-dir", type=Path, help="where models, data and runs go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here (after every run)")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes and few steps: a smoke test of this script on a CPU")
    parser.add_argument("--no-maths-check", action="store_true")
    args = parser.parse_args()

    started = time.time()
    shapes = TINY if args.tiny else SHAPES
    if args.tiny:
        args.steps, args.warmup = min(args.steps, 6), min(args.warmup, 2)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="studio-gpu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tokenizers = args.tokenizers or bundled_tokenizers(work / "tokenizers")
    names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = set(names) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")

    # Enough rows that neither side sees an example twice within the measured steps.
    rows = {"causal": 70 * args.steps, "encoder": 130 * args.steps}
    words = {kind: word_pool(tokenizers / kind) for kind in ("causal", "encoder")}
    data = {"causal": chat_data(work / "chat.jsonl", words["causal"], rows["causal"]),
            "encoder": text_data(work / "texts.csv", words["encoder"], rows["encoder"])}
    results: dict[str, dict[str, list]] = {name: {"plain": [], "studio": []} for name in names}
    failures: list[str] = []
    report: dict[str, Any] = {}

    def save() -> None:
        report.update(rows=[summarize(n, results[n]["plain"], results[n]["studio"],
                                      flops_per_token(shapes[WORKLOADS[n][0]], WORKLOADS[n][2], WORKLOADS[n][1] == "causal"))
                            for n in names], failures=failures, elapsed_s=round(time.time() - started, 1))
        if args.out:
            args.out.write_text(json.dumps(report, indent=2, default=str))

    maths_check = not args.no_maths_check and "qwen05" in {WORKLOADS[n][0] for n in names}
    walls: dict[str, list[float]] = {}  # wall seconds of each model shape's runs so far

    def left_s() -> float:
        return args.budget_s - (time.time() - started) - (MATHS_CHECK_S if maths_check else 0)

    for repeat in range(args.repeats):
        for name in names:
            shape, kind, lora = WORKLOADS[name]
            causal = kind == "causal"
            for side in ("plain", "studio"):
                expected = max(walls.get(shape) or [w for ws in walls.values() for w in ws] or [0.0])
                if expected * 1.1 > left_s():
                    failures.append(f"{name} {side} repeat {repeat + 1}: skipped (a run takes ~{expected:.0f}s, "
                                    f"{max(0.0, left_s()):.0f}s of the budget left)")
                    print(f"[{time.time() - started:5.0f}s] {name} {side}: skipped, not enough of the budget left", flush=True)
                    continue
                timeout = min(300.0, max(10.0, left_s()))
                slot = time.time()
                try:
                    model_dir = build_model(shapes[shape], tokenizers / kind, work / "models" / shape)
                    if side == "plain":
                        extra = ["--task", "causal", "--bf16"] if causal else []
                        if lora:
                            extra += ["--lora-r", str(lora)]
                        result = run_plain(model_dir, data[kind], steps=args.steps, batch=PLAIN_BATCH,
                                           max_length=1024 if causal else 256, warmup=args.warmup, extra=extra, timeout=timeout)
                    else:
                        result = run_studio(studio_config(name, model_dir, data[kind], args.steps, lora, causal),
                                            work / "workspace", warmup=args.warmup, timeout=timeout)
                    results[name][side].append(result)
                    walls.setdefault(shape, []).append(time.time() - slot)  # building the model included
                    took = result["phases_s"]
                    print(f"[{time.time() - started:5.0f}s] {name:12} {side:6} repeat {repeat + 1}: {result['tokens_per_s']:10,.0f} tokens/s "
                          f"{result['samples_per_s']:8.1f} samples/s  peak {result.get('peak_memory_gib')} GiB  wall {result['wall_s']}s "
                          f"(setup {took['setup']}s, training {took['train']}s, after {took['after']}s)"
                          + (f"  batch {result['settings']['batch_size']} {result['settings']['precision']} packing={result['settings']['packing']}"
                             f" attention={result['settings']['attention']}" if side == "studio" else ""), flush=True)
                except Exception as error:  # noqa: BLE001 - one broken workload must not hide the others
                    failures.append(f"{name} {side} repeat {repeat + 1}: {error}")
                    print(f"[{time.time() - started:5.0f}s] {name} {side} FAILED: {str(error)[-2000:]}", flush=True)
                save()

    if maths_check and (work / "models" / "qwen05" / "config.json").exists():
        studio_runs = [r for n in names if WORKLOADS[n][0] == "qwen05" for r in results[n]["studio"]]
        attention = (studio_runs[-1]["settings"]["attention"] if studio_runs else None) or "sdpa"
        checked = time.time()
        try:
            out = subprocess.run([sys.executable, __file__, "--maths-check-only", str(work / "models" / "qwen05"), str(data["causal"]), attention],
                                 capture_output=True, text=True, timeout=MATHS_CHECK_S + max(0.0, left_s()), cwd=ROOT)
            report["maths_check"] = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"error": out.stderr[-2000:]}
            report["maths_check"]["wall_s"] = round(time.time() - checked, 1)
        except Exception as error:  # noqa: BLE001
            report["maths_check"] = {"error": str(error)}
        print("same maths (8 examples, padded sdpa vs packed):", report["maths_check"], flush=True)
    save()
    print_table(report["rows"])
    for failure in failures:
        print("not measured:", failure[:500])
    runs = [r for n in names for side in ("plain", "studio") for r in results[n][side]]
    spent = {phase: sum(r["phases_s"][phase] or 0 for r in runs) for phase in ("setup", "train", "after")}
    total = time.time() - started
    print(f"total {total:.0f}s: runs' setup {spent['setup']:.0f}s, training {spent['train']:.0f}s, after training "
          f"{spent['after']:.0f}s; the rest ({total - sum(r['wall_s'] for r in runs):.0f}s) built models and data and checked the maths")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--maths-check-only":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(maths_check(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])))
    else:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        main()
