"""The preference task: ``PreferenceTuning``, the plug-in the worker calls.

It reads pairs (``pairs``), trains with TRL's DPO or ORPO trainer (``trainers``, through the
task's ``make_trainer``) and after training scores the test pairs (``scores``) and writes the
tuned and the starting model's answers to the test prompts beside the chosen answer.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from studio.errors import DataError
from studio.models.padding import ensure_pad_token
from studio.tasks.base import Problem, Task, TaskMeta, register
from studio.tasks.generation.chat import DEFAULT_CHAT_TEMPLATE
from studio.tasks.generation.decoding import generate
from studio.tasks.generation.formats import cell_text
from studio.tasks.generation.task import few_rows_and_answer_cap
from studio.tasks.preference.options import PreferenceOptions
from studio.tasks.preference.pairs import NAMES, PairError, read_pair
from studio.tasks.preference.scores import answer_ids, answer_logps, pair_scores, starting_model, summary

log = logging.getLogger(__name__)

_SHOWN = 8  # rows listed per kind of problem


def _rows(rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:_SHOWN]))
    return f"{shown} … ({len(rows)} in all)" if len(rows) > _SHOWN else shown


@register
class PreferenceTuning(Task):
    name = "preference"
    title = "Preference tuning"
    description = ("Teach a model which of two answers is better (DPO or ORPO): give a prompt with a chosen and a "
                   "rejected answer per row, as text columns or as chat message lists.")
    roles = {
        "prompt": "the question or instruction both answers reply to (text, or a messages list)",
        "chosen": "the better answer (text, or a messages list ending with it)",
        "rejected": "the worse answer to the same prompt (text, or a messages list ending with it)",
        "system": "optional: a system message per row",
    }
    required_roles = ("chosen", "rejected")
    example = {"prompt": "How do I keep basil fresh?",
               "chosen": "Stand the stems in a glass of water on the counter, like cut flowers.",
               "rejected": "Basil."}
    model_kind = "decoder"
    backbone_kinds = ("decoder",)
    options = PreferenceOptions
    peft_task_type = "CAUSAL_LM"
    hf_auto_class = "AutoModelForCausalLM"

    def __init__(self) -> None:
        self.reference = None
        """The starting model beside a fully tuned one (for the base figures and answers)."""

    # ---- data --------------------------------------------------------------------------------
    def _columns(self, df: pd.DataFrame, config, source: str, labeled: bool) -> dict[str, str]:
        from studio.data.columns import missing_columns_message

        mapping = dict(config.data.columns)
        unknown = sorted(set(mapping) - set(self.roles))
        if unknown:
            raise DataError(f"data.columns names role(s) {', '.join(unknown)} that preference tuning does not use; "
                            f"its roles are: {', '.join(self.roles)}")
        absent = {role: column for role, column in mapping.items()
                  if column not in df.columns and (labeled or role not in ("chosen", "rejected"))}
        if absent:
            raise DataError(missing_columns_message(source, absent, df))
        lowered = {str(c).strip().lower(): c for c in df.columns}
        for role, names in NAMES.items():
            if role not in mapping:
                found = next((lowered[n] for n in names if n in lowered and lowered[n] not in mapping.values()), None)
                if found is not None:
                    mapping[role] = found
        needed = ("chosen", "rejected") if labeled else ("prompt",)
        missing = [r for r in needed if r not in mapping]
        if missing:
            found = ", ".join(map(str, df.columns[:30])) or "(none)"
            raise DataError(f"file {source} has no column for the {' and '.join(missing)} answer(s) of a preference pair; "
                            f"columns found: {found}. Give prompt, chosen and rejected columns (or chosen and rejected "
                            f"message lists), or map them with data.columns.{missing[0]}")
        return {r: c for r, c in mapping.items() if c in df.columns}

    def normalize(self, df, config, source, labeled=True):
        mapping = self._columns(df, config, source, labeled)
        options = self.options_of(config)
        errors: list[str] = []
        empty_answer: list[int] = []
        identical: list[int] = []
        empty_prompt: list[int] = []
        kept: list[dict[str, Any]] = []
        chat = False
        for position, record in enumerate(df.to_dict("records"), start=1):
            system = cell_text(record.get(mapping["system"])) if "system" in mapping else ""
            try:
                if labeled:
                    pair = read_pair(record, mapping, position, system or (options.system_prompt or "").strip())
                else:  # a file to answer: prompts only
                    pair = read_pair({**record, "_": ""}, {**mapping, "chosen": "_", "rejected": "_"}, position,
                                     system or (options.system_prompt or "").strip())
            except PairError as e:
                errors.append(str(e))
                continue
            chat = chat or any(isinstance(record.get(mapping.get(r)), (list, dict)) or str(record.get(mapping.get(r), "")).lstrip().startswith("[")
                               for r in ("chosen", "rejected") if r in mapping)
            if not pair["prompt"]:
                empty_prompt.append(position)
                continue
            if labeled and (not pair["chosen"] or not pair["rejected"]):
                empty_answer.append(position)
                continue
            if labeled and pair["chosen"] == pair["rejected"]:
                identical.append(position)
                continue
            kept.append({"_row": position, **pair})

        problems: list[Problem] = []
        for message in errors[:_SHOWN]:
            problems.append(Problem("error", f"{source}: {message}"))
        if len(errors) > _SHOWN:
            problems.append(Problem("error", f"{source}: {len(errors) - _SHOWN} more row(s) that cannot be read as pairs"))
        if empty_answer:
            problems.append(Problem("warning", f"{source}: dropped {len(empty_answer)} pair(s) with an empty chosen or rejected "
                                               f"answer, nothing to compare (rows {_rows(empty_answer)})"))
        if identical:
            problems.append(Problem("warning", f"{source}: dropped {len(identical)} pair(s) whose chosen and rejected answers are "
                                               f"the same text, nothing to prefer (rows {_rows(identical)})"))
        if empty_prompt:
            problems.append(Problem("warning", f"{source}: dropped {len(empty_prompt)} pair(s) with an empty prompt "
                                               f"(rows {_rows(empty_prompt)})"))
        if not kept:
            listed = [p.message for p in problems if p.level == "error"] or \
                [f"{source}: no row has a prompt with two different answers"]
            raise DataError("the data cannot be used as it is:\n" + "\n".join(f"  - {m}" for m in listed))
        out = pd.DataFrame({
            "_row": pd.Series([k["_row"] for k in kept], dtype="int64"),
            "prompt": pd.Series([k["prompt"] for k in kept], dtype=object),
            "chosen": pd.Series([k["chosen"] for k in kept], dtype=object),
            "rejected": pd.Series([k["rejected"] for k in kept], dtype=object),
        })
        if not labeled:
            out = out.drop(columns=["chosen", "rejected"])
        out.attrs["columns"] = mapping
        out.attrs["format"] = "chat" if chat else "prompt_chosen_rejected"
        return out, problems

    def fit(self, splits, config):
        import dataclasses

        train = splits["train"]
        options = self.options_of(config)
        return TaskMeta(self.name, {
            "format": train.attrs.get("format"),
            "columns": train.attrs.get("columns", {}),
            "architecture": "causal",
            "objective": options.objective,
            "beta": options.beta,
            "system_prompt": options.system_prompt,
            "generation": dataclasses.asdict(config.generation),
            "seed": config.training.seed,
        })

    def validate(self, splits, meta, config):
        return few_rows_and_answer_cap(
            splits, config, too_few="the training data has {n} usable pair(s); preference tuning needs at least a few",
            capped="after training the first {cap} of {n} test prompts are answered by the starting and the tuned model "
                   "(generation.max_eval_examples); rewards cover them too")

    # ---- model -------------------------------------------------------------------------------
    def load_model(self, path, meta, config, **kwargs):
        import torch
        from transformers import AutoModelForCausalLM

        kwargs.setdefault("dtype", torch.float32)
        model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=config.model.trust_remote_code, **kwargs)
        adapter = meta.info.get("start_adapter")
        if adapter:  # continuing from a LoRA run: its adapter merged into the base is the starting model
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        return model

    def prepare_tokenizer(self, tokenizer, meta):
        ensure_pad_token(tokenizer)
        if not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE  # saved with the model, so it is used again at inference

    def tokenize(self, df, tokenizer, meta, max_length):
        """The pairs as TRL reads them (a prompt conversation, the two answers as assistant
        messages; TRL tokenizes them itself) and ``input_ids``, the prompt with the chosen answer,
        for the lengths and token counts the worker reports."""
        from datasets import Dataset

        self.prepare_tokenizer(tokenizer, meta)
        prompts = [list(p) for p in df["prompt"]]
        ids = []
        for prompt, chosen in zip(prompts, df["chosen"]):
            p, a = answer_ids(tokenizer, prompt, chosen)
            ids.append((p + a)[:max_length])
        return Dataset.from_dict({
            "prompt": prompts,
            "chosen": [[{"role": "assistant", "content": c}] for c in df["chosen"]],
            "rejected": [[{"role": "assistant", "content": r}] for r in df["rejected"]],
            "input_ids": ids,
        })

    def text_lengths(self, df, tokenizer):
        lengths = []
        for prompt, chosen, rejected in zip(df["prompt"], df["chosen"], df["rejected"]):
            p, c = answer_ids(tokenizer, list(prompt), chosen)
            _, r = answer_ids(tokenizer, list(prompt), rejected)
            lengths.append(len(p) + max(len(c), len(r)))
        return lengths

    def collator(self, tokenizer, meta):
        return None  # TRL's preference trainers pad the pairs themselves

    def make_trainer(self, meta, config, tokenizer, **parts):
        from studio.tasks.preference.trainers import preference_trainer

        trainer = preference_trainer(
            meta.info.get("objective", "dpo"), float(meta.info.get("beta", 0.1)), model=parts["model"], args=parts["args"],
            tokenizer=tokenizer, train_dataset=parts["train_dataset"], eval_dataset=parts.get("eval_dataset"),
            callbacks=parts.get("callbacks"), max_length=config.training.max_length,
        )
        self.reference = getattr(trainer, "ref_model", None)
        if self.reference is None and not hasattr(trainer.model, "disable_adapter"):
            import copy

            # ORPO has no reference model: keep the starting weights to show what tuning changed.
            self.reference = copy.deepcopy(trainer.model).eval()
        return trainer

    def metric_names(self, meta):
        return "loss", False

    def compute_metrics(self, meta):
        return None  # TRL's trainers log the rewards themselves

    def prediction_rows(self, splits, meta):
        """The first ``generation.max_eval_examples`` test pairs (validation without a test split):
        each is answered twice (starting and tuned model), which is slow."""
        cap = int(meta.info.get("generation", {}).get("max_eval_examples", 100))
        for split in ("test", "validation"):
            if split in splits and len(splits[split]):
                return {split: splits[split].head(cap)} if cap else {}
        return {}

    def full_metrics(self, predictions, meta):
        return summary(predictions)

    # ---- predictions -------------------------------------------------------------------------
    def predict(self, model, tokenizer, df, meta, max_length, batch_size=32):
        prompts = [list(p) for p in df["prompt"]]
        answers = generate(model, tokenizer, prompts, meta, max_length=max_length, batch_size=min(batch_size, 16))
        labeled = "chosen" in df.columns and "rejected" in df.columns
        scores: list[dict[str, Any]] = [{} for _ in prompts]
        base_answers: list[str | None] = [None] * len(prompts)
        with starting_model(model, self.reference) as start:
            if start is not None and labeled:
                base_answers = generate(start, tokenizer, prompts, meta, max_length=max_length, batch_size=min(batch_size, 16))
            if labeled:
                both = [*df["chosen"], *df["rejected"]]
                start_logps = answer_logps(start, tokenizer, prompts * 2, both, max_length) if start is not None else None
        if labeled:
            tuned_logps = answer_logps(model, tokenizer, prompts * 2, both, max_length)
            scores = pair_scores(tuned_logps, start_logps, meta.info.get("objective", "dpo"), float(meta.info.get("beta", 0.1)))
        results = []
        for i, prompt in enumerate(prompts):
            last_user = next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")
            item: dict[str, Any] = {"prompt": last_user}
            if len(prompt) > 1:
                item["context"] = prompt[:-1]
            if labeled:
                item["chosen"] = df["chosen"].iloc[i]
                item["rejected"] = df["rejected"].iloc[i]
            item["generation"] = answers[i]
            if base_answers[i] is not None:
                item["base_generation"] = base_answers[i]
            item.update(scores[i])
            results.append(item)
        return results

    def render(self, prediction):
        row = {"prompt": prediction.get("prompt", "")}
        if prediction.get("context"):
            row["context"] = "\n".join(f"{m['role']}: {m['content']}" for m in prediction["context"])
        for key in ("chosen", "rejected", "generation", "base_generation", "reward_margin", "correct"):
            if key in prediction:
                row[key] = prediction[key]
        return row
