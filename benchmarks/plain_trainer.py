"""The baseline: a fine-tune written the way users usually write it with the HF Trainer.

Fixed batch size, the default optimizer and attention, padding to the longest example of each
batch, everything else left at its default. Two tasks:

- classification (default): a sequence-classification head, the data tokenized in a batched
  ``map``, the tokenizer handed to the Trainer (so batches are padded to their longest text);
- causal: a causal LM on chat data (JSONL with ``prompt``/``completion``), the chat template
  applied by the tokenizer, ``DataCollatorForLanguageModeling(mlm=False)`` (pad to longest,
  loss on every non-padding token); ``--lora-r`` adds LoRA on every linear layer.

On a GPU, ``--bf16`` turns on mixed precision as such scripts do. Prints one JSON line with its
timings so the speed benchmarks can compare it with the studio's worker.

    python benchmarks/plain_trainer.py MODEL_DIR DATA STEPS BATCH MAX_LENGTH [--task causal] [--lora-r 16] [--bf16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import pandas as pd
import torch
from datasets import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments

DEFAULT_WARMUP_STEPS = 3


class Clock(TrainerCallback):
    """Each optimizer step's end (perf_counter), and when training began and ended (wall clock,
    so the benchmark can split the process's time into setup, training and the rest)."""

    def __init__(self):
        self.times: dict[int, float] = {}
        self.began = self.ended = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.began = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        self.times[state.global_step] = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.ended = time.time()


def classification(model_dir: str, data: str, max_length: int):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    df = pd.read_csv(data)
    labels = sorted(df["label"].unique())
    df["label"] = df["label"].map({label: i for i, label in enumerate(labels)})
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dataset = Dataset.from_pandas(df[["text", "label"]])
    dataset = dataset.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=len(labels))
    lengths = [len(ids) for ids in dataset["input_ids"]]
    return model, dataset, tokenizer, None, lengths


def causal(model_dir: str, data: str, max_length: int, lora_r: int | None, lora_dropout: float = 0.0):
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling

    df = pd.read_json(data, lines=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}, {"role": "assistant", "content": c}], tokenize=False)
             for p, c in zip(df["prompt"], df["completion"])]
    dataset = Dataset.from_dict({"text": texts})
    dataset = dataset.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length, add_special_tokens=False),
                          batched=True, remove_columns=["text"])
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if lora_r:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=lora_r, lora_alpha=2 * lora_r, lora_dropout=lora_dropout,
                                                 target_modules="all-linear"))
    lengths = [len(ids) for ids in dataset["input_ids"]]
    return model, dataset, tokenizer, DataCollatorForLanguageModeling(tokenizer, mlm=False), lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("data")
    parser.add_argument("steps", type=int)
    parser.add_argument("batch", type=int)
    parser.add_argument("max_length", type=int)
    parser.add_argument("--task", choices=["classification", "causal"], default="classification")
    parser.add_argument("--lora-r", type=int, default=None)
    parser.add_argument("--lora-dropout", type=float, default=0.0)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--warmup-steps", type=int, default=DEFAULT_WARMUP_STEPS, help="steps left out of the timing")
    args = parser.parse_args()

    torch.manual_seed(42)
    if args.task == "causal":
        model, dataset, tokenizer, collator, lengths = causal(args.model_dir, args.data, args.max_length, args.lora_r, args.lora_dropout)
    else:
        model, dataset, tokenizer, collator, lengths = classification(args.model_dir, args.data, args.max_length)
    clock = Clock()
    losses: list[float] = []

    class Losses(TrainerCallback):
        def on_log(self, a, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    training = TrainingArguments(
        output_dir="/tmp/plain-trainer-bench", per_device_train_batch_size=args.batch, max_steps=args.steps,
        learning_rate=args.learning_rate, seed=42, report_to="none", save_strategy="no", logging_steps=5,
        disable_tqdm=True, bf16=args.bf16 and torch.cuda.is_available(),
    )
    trainer = Trainer(model=model, args=training, train_dataset=dataset, processing_class=tokenizer, data_collator=collator,
                      callbacks=[clock, Losses()])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    measured = args.steps - args.warmup_steps
    seconds = clock.times[args.steps] - clock.times[args.warmup_steps]
    print(json.dumps({
        "seconds": seconds, "steps": measured, "samples_per_s": measured * args.batch / seconds,
        "mean_tokens": statistics.mean(lengths), "peak_memory_gib": _peak_memory_gib(),
        "losses": losses, "threads": torch.get_num_threads(), "train_began_t": clock.began, "train_ended_t": clock.ended,
    }))


def _peak_memory_gib() -> float:
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 1024**3, 3)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3)


if __name__ == "__main__":
    main()
