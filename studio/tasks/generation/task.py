"""The text-generation task: instruction -> response, chat, summarization, translation, question
answering, with a causal or a seq2seq backbone.

``TextGeneration`` is the plug-in the worker calls: it detects the input format and normalizes rows
into conversations (``formats``), picks the architecture from the backbone's config
(``studio.models.architecture``), tokenizes and collates (``chat``), and after training generates
(``decoding``) and scores (``metrics``) the first ``generation.max_eval_examples`` test rows.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import pandas as pd

from studio.errors import DataError
from studio.models.architecture import architecture_of, guess_architecture
from studio.models.catalog import default_for
from studio.models.padding import ensure_pad_token
from studio.tasks.base import Problem, Task, TaskMeta, register
from studio.tasks.generation.chat import (
    DEFAULT_CHAT_TEMPLATE, IGNORE, CausalCollator, encode_full, render_chat, seq2seq_pair, truncate,
)
from studio.tasks.generation.decoding import generate
from studio.tasks.generation.formats import (
    FORMATS, NAMES, REQUIRED, TARGET, MessageError, cell_text, parse_messages, split_last_turn, strip_index,
)
from studio.tasks.generation.metrics import exact_match, generation_metrics, rouge
from studio.tasks.generation.options import GenerationOptions

log = logging.getLogger(__name__)

_SHOWN = 8  # rows listed per kind of problem


def _rows(rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:_SHOWN]))
    return f"{shown} … ({len(rows)} in all)" if len(rows) > _SHOWN else shown


def few_rows_and_answer_cap(splits, config, *, too_few: str, capped: str) -> list[Problem]:
    """The checks of a task whose model writes answers: too few training rows ({n}) is an error,
    and a note when the evaluation after training answers only the first ``max_eval_examples``
    ({cap}) of the test split's {n} rows (the validation split's without a test split)."""
    problems: list[Problem] = []
    train = splits.get("train")
    if train is not None and len(train) < 2:
        problems.append(Problem("error", too_few.format(n=len(train))))
    cap = config.generation.max_eval_examples
    test = splits.get("test") if splits.get("test") is not None and len(splits["test"]) else splits.get("validation")
    if cap and test is not None and len(test) > cap:
        problems.append(Problem("info", capped.format(cap=cap, n=len(test))))
    return problems


@register
class TextGeneration(Task):
    name = "generation"
    title = "Text generation"
    description = ("Teach a model to write answers: instructions, chat, summaries, translations, question answering. "
                   "Give prompt + completion, instruction + input + output (Alpaca), or a messages list (chat).")
    roles = {
        "prompt": "the input: a question, a document to summarize, a sentence to translate",
        "completion": "the answer the model should write",
        "instruction": "Alpaca style: the instruction",
        "input": "Alpaca style: extra input for the instruction (optional)",
        "output": "Alpaca style: the answer",
        "messages": "chat: a list of {role, content} messages (system, user, assistant), JSON text in a CSV",
        "system": "optional: a system message per row",
    }
    required_roles = ("prompt", "completion")
    formats = FORMATS
    """The three shapes of data; a file uses the roles of one of them (``system`` with any)."""
    example = {"prompt": "Summarize: The library opens an hour later on Mondays from March.",
               "completion": "From March the library opens an hour later on Mondays."}
    model_kind = "decoder"
    backbone_kinds = ("decoder", "seq2seq")
    options = GenerationOptions
    peft_task_type = "CAUSAL_LM"
    """LoRA task type; ``load_model`` switches it to SEQ_2_SEQ_LM for an encoder-decoder backbone."""
    hf_auto_class = "AutoModelForCausalLM"
    compare_with_base = True
    """The worker scores the base model on the same rows before fine-tuning."""

    def __init__(self) -> None:
        self.architecture = "causal"

    # ---- data --------------------------------------------------------------------------------
    def _columns(self, df: pd.DataFrame, config, source: str, labeled: bool) -> tuple[str, dict[str, str]]:
        from studio.data.columns import missing_columns_message

        mapping = {role: column for role, column in config.data.columns.items()}
        unknown = sorted(set(mapping) - set(self.roles))
        if unknown:
            raise DataError(f"data.columns names role(s) {', '.join(unknown)} that text generation does not use; "
                            f"its roles are: {', '.join(self.roles)}")
        if not labeled:  # a file to predict needs no answers (nor the optional roles the training file had)
            mapping = {r: c for r, c in mapping.items() if c in df.columns or r not in ("completion", "output", "input", "system")}
        absent = {role: column for role, column in mapping.items() if column not in df.columns}
        if absent:
            raise DataError(missing_columns_message(source, absent, df))
        mapped = {fmt for fmt, roles in FORMATS.items() if any(r in mapping for r in roles)}
        if len(mapped) > 1:
            shown = "; ".join(f"{fmt.replace('_', '/')}: {', '.join(r for r in FORMATS[fmt] if r in mapping)}" for fmt in sorted(mapped))
            raise DataError(f"data.columns mixes the roles of different formats ({shown}); map prompt + completion, "
                            "or instruction + input + output, or messages")
        columns = [str(c) for c in df.columns]
        lowered = {c.strip().lower(): c for c in columns}

        def find(role: str, taken: set[str]) -> str | None:
            for name in NAMES[role]:
                if name in lowered and lowered[name] not in taken:
                    return lowered[name]
            return None

        if mapped:
            fmt = mapped.pop()
        elif find("messages", set()):
            fmt = "chat"
        elif find("instruction", set()):
            fmt = "alpaca"
        else:
            fmt = "prompt_completion"
        taken = set(mapping.values())
        for role in FORMATS[fmt] + ("system",):
            if role not in mapping:
                guess = find(role, taken)
                if guess:
                    mapping[role] = guess
                    taken.add(guess)
        if fmt == "prompt_completion" and "prompt" not in mapping and not labeled:
            from studio.data.columns import guess_text_column

            guess = guess_text_column(df, exclude=list(taken))
            if guess:
                mapping["prompt"] = guess
        needed = [r for r in REQUIRED[fmt] if labeled or r != TARGET.get(fmt)]
        missing = [r for r in needed if r not in mapping]
        if missing:
            found = ", ".join(columns[:30]) or "(none)"
            if fmt == "prompt_completion" and not any(r in config.data.columns for r in FORMATS[fmt]):
                raise DataError(
                    f"file {source}: cannot tell which columns hold the prompt and the answer; columns found: {found}. "
                    "Map them with data.columns: prompt + completion, or instruction + input + output (Alpaca), "
                    "or messages (chat)"
                )
            roles = ", ".join(missing)
            raise DataError(f"file {source} has no column for the {roles} role of the {fmt.replace('_', '/')} format; "
                            f"columns found: {found}; map it with data.columns.{missing[0]}")
        return fmt, {r: c for r, c in mapping.items() if r in FORMATS[fmt] + ("system",)}

    def normalize(self, df, config, source, labeled=True):
        fmt, mapping = self._columns(df, config, source, labeled)
        options = self.options_of(config)
        template = options.prompt_template
        problems: list[Problem] = []
        if template and fmt == "chat":
            problems.append(Problem("warning", f"{source}: task.prompt_template is not used for chat data (messages are kept as written)"))
        errors: list[str] = []
        empty_prompt: list[int] = []
        empty_target: list[int] = []
        no_answer: list[int] = []
        rows: list[int] = []
        conversations: list[list[dict[str, str]]] = []
        system_column = mapping.get("system")
        for position, record in enumerate(df.to_dict("records"), start=1):
            system = cell_text(record.get(system_column)) if system_column else ""
            system = system or (options.system_prompt or "").strip()
            if fmt == "chat":
                try:
                    messages = parse_messages(record.get(mapping["messages"]), position)
                except MessageError as e:
                    errors.append(str(e))
                    continue
                answers = [m for m in messages if m["role"] == "assistant"]
                if labeled and not answers:
                    no_answer.append(position)
                    continue
                blank = next((m for m in answers if not m["content"]), None)
                if labeled and blank is not None:
                    empty_target.append(position)
                    continue
                messages = strip_index(messages)
                if system and messages[0]["role"] != "system":
                    messages.insert(0, {"role": "system", "content": system})
            else:
                if fmt == "alpaca":
                    instruction = cell_text(record.get(mapping["instruction"]))
                    extra = cell_text(record.get(mapping["input"])) if "input" in mapping else ""
                    prompt = instruction + ("\n\n" + extra if extra else "") if instruction else ""
                    fields = {"prompt": prompt, "instruction": instruction, "input": extra}
                else:
                    prompt = cell_text(record.get(mapping["prompt"]))
                    fields = {"prompt": prompt, "instruction": prompt, "input": ""}
                target_column = mapping.get(TARGET[fmt])
                target = cell_text(record.get(target_column)) if target_column else ""
                if not prompt:
                    empty_prompt.append(position)
                    continue
                if labeled and not target:
                    empty_target.append(position)
                    continue
                user = template.format(**fields) if template else prompt
                messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
                if target:
                    messages.append({"role": "assistant", "content": target})
            rows.append(position)
            conversations.append(messages)

        for message in errors[:_SHOWN]:
            problems.append(Problem("error", f"{source}: {message}"))
        if len(errors) > _SHOWN:
            problems.append(Problem("error", f"{source}: {len(errors) - _SHOWN} more row(s) with malformed messages"))
        if no_answer:
            problems.append(Problem("error", f"{source}: conversation(s) without an assistant message, so there is nothing "
                                             f"to learn (rows {_rows(no_answer)}); add the assistant's reply"))
        what = {"chat": "an empty assistant message", "alpaca": "an empty output", "prompt_completion": "an empty completion"}[fmt]
        if empty_target:
            problems.append(Problem("warning", f"{source}: dropped {len(empty_target)} row(s) with {what}, "
                                               f"nothing to learn from them (rows {_rows(empty_target)})"))
        if empty_prompt:
            role = "instruction" if fmt == "alpaca" else "prompt"
            problems.append(Problem("warning", f"{source}: dropped {len(empty_prompt)} row(s) with an empty {role} "
                                               f"(rows {_rows(empty_prompt)})"))
        if not conversations:
            listed = [p.message for p in problems if p.level == "error"] or [f"{source}: every row has an empty prompt or answer"]
            raise DataError("the data cannot be used as it is:\n" + "\n".join(f"  - {m}" for m in listed))
        out = pd.DataFrame({"_row": pd.Series(rows, dtype="int64"), "messages": pd.Series(conversations, dtype=object)})
        out.attrs["columns"] = mapping
        out.attrs["format"] = fmt
        return out, problems

    def fit(self, splits, config):
        train = splits["train"]
        options = self.options_of(config)
        # The Data tab checks data before a backbone is chosen: the one a submitted run would get.
        self.architecture = guess_architecture(config.model.backbone or default_for(self.model_kind))
        return TaskMeta(self.name, {
            "format": train.attrs.get("format"),
            "columns": train.attrs.get("columns", {}),
            "architecture": self.architecture,
            "system_prompt": options.system_prompt,
            "prompt_template": options.prompt_template,
            "generation": dataclasses.asdict(config.generation),
            "seed": config.training.seed,
        })

    def validate(self, splits, meta, config):
        return few_rows_and_answer_cap(
            splits, config, too_few="the training data has {n} usable row(s); a fine-tune needs at least a few",
            capped="the evaluation after training answers the first {cap} of {n} test rows "
                   "(generation.max_eval_examples); the loss uses them all")

    # ---- model -------------------------------------------------------------------------------
    def _use(self, architecture: str) -> None:
        self.architecture = architecture
        seq2seq = architecture == "seq2seq"
        self.peft_task_type = "SEQ_2_SEQ_LM" if seq2seq else "CAUSAL_LM"
        self.hf_auto_class = "AutoModelForSeq2SeqLM" if seq2seq else "AutoModelForCausalLM"

    def load_model(self, path, meta, config, **kwargs):
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

        architecture = architecture_of(path)
        meta.info["architecture"] = architecture
        self._use(architecture)
        kwargs.setdefault("dtype", torch.float32)  # trained in fp32 (mixed precision casts on the fly)
        cls = AutoModelForSeq2SeqLM if architecture == "seq2seq" else AutoModelForCausalLM
        return cls.from_pretrained(path, trust_remote_code=config.model.trust_remote_code, **kwargs)

    def _architecture(self, meta: TaskMeta | None) -> str:
        if meta is not None and meta.info.get("architecture"):
            self._use(meta.info["architecture"])
        return self.architecture

    def prepare_tokenizer(self, tokenizer, meta):
        ensure_pad_token(tokenizer)
        if self._architecture(meta) != "seq2seq" and not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE  # saved with the model, so it is used again at inference

    def tokenize(self, df, tokenizer, meta, max_length):
        from datasets import Dataset

        self.prepare_tokenizer(tokenizer, meta)
        conversations = [list(m) for m in df["messages"]]
        if self._architecture(meta) == "seq2seq":
            pairs = [seq2seq_pair(m) for m in conversations]
            enc = tokenizer([s for s, _ in pairs], text_target=[t or "" for _, t in pairs], truncation=True, max_length=max_length)
            return Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": enc["labels"]})
        ids, labels, cut = [], [], 0
        for messages in conversations:
            row_ids, row_labels = encode_full(tokenizer, messages)
            cut += len(row_ids) > max_length
            row_ids, row_labels = truncate(row_ids, row_labels, max_length)
            ids.append(row_ids)
            labels.append(row_labels)
        if cut:
            log.warning("%d of %d conversations are longer than max_length %d tokens and were cut", cut, len(ids), max_length)
        return Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids], "labels": labels})

    def text_lengths(self, df, tokenizer):
        conversations = [list(m) for m in df["messages"]]
        if self.architecture == "seq2seq":
            pairs = [seq2seq_pair(m) for m in conversations]
            sources = tokenizer([s for s, _ in pairs])["input_ids"]
            targets = tokenizer([t or "" for _, t in pairs])["input_ids"]
            return [max(len(s), len(t)) for s, t in zip(sources, targets)]
        texts = [render_chat(tokenizer, m) for m in conversations]
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def collator(self, tokenizer, meta):
        ensure_pad_token(tokenizer)
        if self._architecture(meta) == "seq2seq":
            from transformers import DataCollatorForSeq2Seq

            return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE, pad_to_multiple_of=8)
        return CausalCollator(tokenizer.pad_token_id)

    def metric_names(self, meta):
        return "loss", False

    def compute_metrics(self, meta):
        return None  # the Trainer then evaluates the loss only, without keeping every logit

    def loss_metrics(self, loss: float) -> dict[str, float | None]:
        """Metrics that follow from a split's mean token loss (the worker adds them)."""
        return {"perplexity": math.exp(loss) if loss < 700 else None}

    def prediction_rows(self, splits: dict[str, pd.DataFrame], meta: TaskMeta) -> dict[str, pd.DataFrame]:
        """Rows answered after training: the first ``max_eval_examples`` of the test split (the
        validation split when there is no test split); generation is slow, the loss covers the rest."""
        cap = int(meta.info.get("generation", {}).get("max_eval_examples", 100))
        for split in ("test", "validation"):
            if split in splits and len(splits[split]):
                return {split: splits[split].head(cap)} if cap else {}
        return {}

    def full_metrics(self, predictions, meta):
        scored = [p for p in predictions if p.get("reference") is not None]
        if not scored:
            return {}
        return generation_metrics([p["generation"] for p in scored], [p["reference"] for p in scored])

    # ---- predictions -------------------------------------------------------------------------
    def predict(self, model, tokenizer, df, meta, max_length, batch_size=32):
        conversations = [list(m) for m in df["messages"]]
        rows = []
        prompts = []
        for messages in conversations:
            context, reference = split_last_turn(messages)
            rows.append((context, reference))
            prompts.append(context)
        generations = generate(model, tokenizer, prompts, meta, max_length=max_length, batch_size=min(batch_size, 16))
        results = []
        for (context, reference), text in zip(rows, generations):
            last_user = next((m["content"] for m in reversed(context) if m["role"] == "user"), "")
            earlier = context[: max(i for i, m in enumerate(context) if m["role"] == "user")] if last_user else context
            item: dict[str, Any] = {"prompt": last_user, "reference": reference, "generation": text}
            if earlier:
                item["context"] = earlier
            if reference is not None:
                item["rougeL"] = round(rouge(text, reference)["rougeL"], 4)
                item["exact_match"] = exact_match(text, reference)
            results.append(item)
        return results

    def render(self, prediction):
        row = {"prompt": prediction.get("prompt", "")}
        if prediction.get("context"):
            row["context"] = "\n".join(f"{m['role']}: {m['content']}" for m in prediction["context"])
        if prediction.get("reference") is not None:
            row["reference"] = prediction["reference"]
        row["generation"] = prediction.get("generation", "")
        for key in ("rougeL", "exact_match"):
            if key in prediction:
                row[key] = prediction[key]
        return row
