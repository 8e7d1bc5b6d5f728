"""The baseline: a sequence-classification fine-tune written the way users usually write it.

Fixed batch size, the whole dataset tokenized with padding to the longest text of each map
chunk (``padding="longest"`` in a batched ``map``), the default collator and optimizer. Prints
one JSON line with its timings so ``cpu_speed.py`` can compare it with the studio's worker.

    python benchmarks/plain_trainer.py MODEL_DIR DATA.csv STEPS BATCH MAX_LENGTH
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

WARMUP_STEPS = 3


class Clock(TrainerCallback):
    def __init__(self):
        self.times: dict[int, float] = {}

    def on_step_end(self, args, state, control, **kwargs):
        self.times[state.global_step] = time.perf_counter()


def main() -> None:
    model_dir, data, steps, batch, max_length = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    df = pd.read_csv(data)
    labels = sorted(df["label"].unique())
    df["label"] = df["label"].map({label: i for i, label in enumerate(labels)})
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dataset = Dataset.from_pandas(df[["text", "label"]])
    dataset = dataset.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length, padding="longest"), batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=len(labels))
    clock = Clock()
    args = TrainingArguments(
        output_dir="/tmp/plain-trainer-bench", per_device_train_batch_size=batch, max_steps=steps,
        learning_rate=5e-5, seed=42, report_to="none", save_strategy="no", logging_steps=10_000, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, callbacks=[clock])
    trainer.train()
    measured = steps - WARMUP_STEPS
    seconds = clock.times[steps] - clock.times[WARMUP_STEPS]
    print(json.dumps({"seconds": seconds, "steps": measured, "samples_per_s": measured * batch / seconds,
                      "peak_rss_mb": _peak_rss_mb(), "threads": torch.get_num_threads()}))


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
