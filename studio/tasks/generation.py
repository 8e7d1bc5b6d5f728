"""Text generation: instruction -> response, chat, summarization, translation, question answering.

Three input shapes, all normalized to one conversation per row (``messages``: a list of
``{"role", "content"}`` with roles system / user / assistant):

* ``prompt`` / ``completion`` (question/answer, document/summary, source/translation...);
* Alpaca-style ``instruction`` / ``input`` (optional) / ``output``;
* chat: a ``messages`` list per row (JSONL, or JSON text in a CSV cell), multi-turn; ShareGPT's
  ``{"from": "human"|"gpt", "value"}`` turns are read too.

The user maps columns with ``data.columns`` (roles below); unmapped, the format is detected from
the column names. ``task.prompt_template`` shapes the user message of single-turn rows and
``task.system_prompt`` is put first in every conversation that has no system message.

The architecture comes from the backbone's ``config.json`` (``is_encoder_decoder``), never from
the user:

* decoder-only (causal LM): the conversation is rendered with the tokenizer's chat template, or
  ``DEFAULT_CHAT_TEMPLATE`` when it has none (that template is then saved with the model). The
  labels are -100 everywhere except the assistant turns (their text and end-of-turn token), so
  the loss covers only what the model must learn to write; padding is -100 too.
* encoder-decoder (seq2seq: T5, BART, Marian, mBART): the conversation before the last assistant
  turn is the source, that turn the target.

During training only the loss is evaluated. After training the test split gets its loss and
perplexity, and (up to ``generation.max_eval_examples`` rows) generations scored with ROUGE-1/2/L,
BLEU, chrF and exact match; the worker runs the same evaluation on the base model first
(``compare_with_base``), so the report shows what fine-tuning changed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from studio.errors import DataError
from studio.tasks.base import Problem, Task, TaskMeta, register

log = logging.getLogger(__name__)

IGNORE = -100
"""Label of positions the loss skips: prompt, system and user tokens, and padding."""

ROLES = ("system", "user", "assistant")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}

# A clear template for backbones without one (base models such as GPT-2). Every assistant turn
# ends with the end-of-sequence token, so the model learns where to stop.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '### System:\n' + message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### User:\n' + message['content'] + '\n\n' }}"
    "{% else %}{{ '### Assistant:\n' + message['content'] + (eos_token or '') + '\n\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Assistant:\n' }}{% endif %}"
)
_DEFAULT_MARKERS = ("### User:", "### System:", "### Assistant:")

# Column names of each format, best first (used when data.columns leaves a role unmapped).
NAMES = {
    "messages": ("messages", "conversations", "conversation", "chat", "dialogue", "dialog", "turns"),
    "instruction": ("instruction", "instructions", "task"),
    "input": ("input", "context"),
    "output": ("output", "response", "answer"),
    "prompt": ("prompt", "question", "source", "src", "input", "query", "text", "article", "document", "passage"),
    "completion": ("completion", "response", "answer", "target", "tgt", "output", "summary", "translation",
                   "reference", "label"),
    "system": ("system", "system_prompt"),
}
FORMATS = {
    "prompt_completion": ("prompt", "completion"),
    "alpaca": ("instruction", "input", "output"),
    "chat": ("messages",),
}
"""Format -> its roles; the first role(s) of each are required (``input`` is optional)."""
_REQUIRED = {"prompt_completion": ("prompt", "completion"), "alpaca": ("instruction", "output"), "chat": ("messages",)}
_TARGET = {"prompt_completion": "completion", "alpaca": "output"}
_SHOWN = 8  # rows listed per kind of problem

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Chinese characters and Japanese kana are one ROUGE token each (these scripts put no spaces between words).
_ROUGE_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff]|[^\W_]+")


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _text(value: Any) -> str:
    if _empty(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _rows(rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:_SHOWN]))
    return f"{shown} … ({len(rows)} in all)" if len(rows) > _SHOWN else shown


# ---- chat messages ---------------------------------------------------------------------------

class MessageError(ValueError):
    """A malformed conversation; the message names the row and the message."""


def parse_messages(value: Any, row: int) -> list[dict[str, str]]:
    """One row's conversation as a list of ``{"role", "content"}``; ``MessageError`` names the fault.

    Accepts a list (JSONL), JSON text (a CSV cell), ``{"messages": [...]}``, ShareGPT's
    ``from``/``value`` keys, and OpenAI-style content parts (``[{"type": "text", "text": ...}]``).
    Order rules: an optional system message first, then user and assistant turns alternating,
    starting with the user.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise MessageError(f"row {row}: the messages cell is empty")
        try:
            value = json.loads(text)
        except ValueError as e:
            value = _python_literal(text)  # a list written by Python's print (single quotes)
            if value is not None:
                return parse_messages(value, row)
            raise MessageError(f"row {row}: messages is not valid JSON ({getattr(e, 'msg', e)} at character "
                               f"{getattr(e, 'pos', 0) + 1}); write a list like "
                               '[{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]') from None
    if isinstance(value, dict) and isinstance(value.get("messages", value.get("conversations")), (list, np.ndarray)):
        value = value.get("messages", value.get("conversations"))
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list):
        raise MessageError(f"row {row}: messages must be a list of {{role, content}} objects, not {type(value).__name__}")
    if not value:
        raise MessageError(f"row {row}: the conversation has no messages")
    messages: list[dict[str, str]] = []
    for i, item in enumerate(value, start=1):
        where = f"row {row}, message {i}"
        if not isinstance(item, dict):
            raise MessageError(f"{where}: expected an object with role and content, got {str(item)[:40]!r}")
        sharegpt = "role" not in item and "from" in item
        role_key, content_key = ("from", "value") if sharegpt else ("role", "content")
        if role_key not in item:
            raise MessageError(f"{where}: no 'role' (keys found: {', '.join(map(str, item)) or 'none'})")
        if content_key not in item:
            raise MessageError(f"{where}: no '{content_key}' (keys found: {', '.join(map(str, item))})")
        raw_role = str(item[role_key]).strip().lower()
        role = _SHAREGPT_ROLES.get(raw_role) if sharegpt else (raw_role if raw_role in ROLES else None)
        if role is None:
            allowed = "human, gpt or system" if sharegpt else "system, user or assistant"
            raise MessageError(f"{where}: unknown role {item[role_key]!r}; use {allowed}")
        content = item[content_key]
        if isinstance(content, (list, np.ndarray)):  # content parts: keep the text ones
            parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
            if len(parts) != len(content) or not all(isinstance(p, str) for p in parts):
                raise MessageError(f"{where}: content parts other than text are not supported")
            content = "".join(parts)
        if content is not None and not isinstance(content, (str, int, float)):
            raise MessageError(f"{where}: content must be text, not {type(content).__name__}")
        messages.append({"role": role, "content": _text(content), "_index": i})  # type: ignore[dict-item]

    for position, message in enumerate(messages):
        i = message["_index"]
        if message["role"] == "system" and position != 0:
            raise MessageError(f"row {row}, message {i}: a system message can only come first")
    turns = [m for m in messages if m["role"] != "system"]
    if not turns:
        raise MessageError(f"row {row}: the conversation has only a system message")
    if turns[0]["role"] != "user":
        raise MessageError(f"row {row}, message {turns[0]['_index']}: the conversation starts with an assistant message; "
                           "it must start with a user message (after an optional system message)")
    for before, message in zip(turns, turns[1:]):
        if message["role"] == before["role"]:
            raise MessageError(f"row {row}, messages {before['_index']}-{message['_index']}: two {message['role']} messages "
                               "in a row; merge them, or put the other side's reply between them")
    for message in turns:
        if message["role"] == "user" and not message["content"]:
            raise MessageError(f"row {row}, message {message['_index']}: the user message is empty")
    if messages[0]["role"] == "system" and not messages[0]["content"]:
        messages = messages[1:]
    return messages


def _python_literal(text: str) -> Any:
    import ast

    if not text.startswith("["):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, list) else None


def _strip_index(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def split_last_turn(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], str | None]:
    """(the conversation before the last assistant message, that message) — the prompt and the
    reference of an evaluation. Without an assistant message: (the conversation, None)."""
    for k in range(len(messages) - 1, -1, -1):
        if messages[k]["role"] == "assistant":
            return messages[:k], messages[k]["content"]
    return list(messages), None


# ---- templates and masking -------------------------------------------------------------------

def chat_template(tokenizer) -> str:
    return getattr(tokenizer, "chat_template", None) or DEFAULT_CHAT_TEMPLATE


def _uses_default(tokenizer) -> bool:
    return chat_template(tokenizer) == DEFAULT_CHAT_TEMPLATE


def render_chat(tokenizer, messages: list[dict[str, str]], *, add_generation_prompt: bool = False) -> str:
    """The conversation as the model reads it: the tokenizer's chat template, else the default one.

    A template that refuses system messages (some do) gets the system text merged into the first
    user message instead.
    """
    from jinja2 import TemplateError

    template = chat_template(tokenizer)
    try:
        return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    except TemplateError as e:
        if messages and messages[0]["role"] == "system" and len(messages) > 1:
            merged = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}] + list(messages[2:])
            return render_chat(tokenizer, merged, add_generation_prompt=add_generation_prompt)
        raise DataError(f"the backbone's chat template refused a conversation: {e}") from None


def assistant_spans(tokenizer, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of every assistant turn in it: the text
    the model writes, through its end-of-turn marker (trailing whitespace excluded).

    The span of turn i runs from the end of the conversation before it plus the generation prompt
    to the end of the conversation through it. A template that rewrites earlier turns breaks that
    prefix property; then the assistant text itself is searched for.
    """
    full = render_chat(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    cursor = 0
    eos = getattr(tokenizer, "eos_token", None)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render_chat(tokenizer, messages[:i], add_generation_prompt=True)
        through = render_chat(tokenizer, messages[: i + 1])
        if full.startswith(through) and through.startswith(before) and len(before) >= cursor:
            start, end = len(before), len(through)
        else:
            start = full.find(message["content"], cursor)
            if start < 0:
                continue
            end = start + len(message["content"])
            rest = full[end:]
            if eos and rest.lstrip(" ").startswith(eos):
                end += len(rest) - len(rest.lstrip(" ")) + len(eos)
        while end > start and full[end - 1].isspace():
            end -= 1
        spans.append((start, end))
        cursor = end
    return full, spans


def encode_conversation(tokenizer, messages: list[dict[str, str]], max_length: int) -> tuple[list[int], list[int]]:
    """Token ids and labels of one conversation for a causal LM: labels copy the ids on the
    assistant turns and are -100 elsewhere. Longer than ``max_length``: the end is cut, unless
    that would cut every assistant token, then the window keeps half context, half answer."""
    return truncate(*encode_full(tokenizer, messages), max_length)


def encode_full(tokenizer, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """``encode_conversation`` without the length limit."""
    text, spans = assistant_spans(tokenizer, messages)
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        labels = [
            token if end > start and any(start < s_end and end > s_start for s_start, s_end in spans) else IGNORE
            for token, (start, end) in zip(ids, enc["offset_mapping"])
        ]
    else:  # no offsets: tokenize the masked and the learned pieces one after the other
        ids, labels = [], []
        cursor = 0
        for s_start, s_end in spans + [(len(text), len(text))]:
            for piece, learned in ((text[cursor:s_start], False), (text[s_start:s_end], True)):
                if piece:
                    piece_ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
                    ids += piece_ids
                    labels += piece_ids if learned else [IGNORE] * len(piece_ids)
            cursor = s_end
    return ids, labels


def truncate(ids: list[int], labels: list[int], max_length: int) -> tuple[list[int], list[int]]:
    if len(ids) > max_length:
        first = next((k for k, label in enumerate(labels) if label != IGNORE), None)
        if first is None or first < max_length:
            ids, labels = ids[:max_length], labels[:max_length]
        else:
            start = min(first - max_length // 2, len(ids) - max_length)
            ids, labels = ids[start : start + max_length], labels[start : start + max_length]
    return ids, labels


def seq2seq_pair(messages: list[dict[str, str]]) -> tuple[str, str | None]:
    """(source, target) for an encoder-decoder: the conversation before the last assistant turn
    and that turn (None when there is none)."""
    context, target = split_last_turn(messages)
    return seq2seq_source(context), target


def seq2seq_source(context: list[dict[str, str]]) -> str:
    """An encoder's input: the user's text for a single turn, else 'User: ... / Assistant: ...'
    lines; a system message goes first, followed by a blank line."""
    system = [m["content"] for m in context if m["role"] == "system"]
    turns = [m for m in context if m["role"] != "system"]
    if len(turns) == 1:
        body = turns[0]["content"]
    else:
        body = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in turns)
    return "\n\n".join(system + [body]) if system else body


class CausalCollator:
    """Pads a batch on the right: ids with the pad token, attention 0, labels -100."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = 8):
        self.pad_token_id = pad_token_id
        self.multiple = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.multiple:
            longest = -(-longest // self.multiple) * self.multiple
        batch = {"input_ids": [], "attention_mask": [], "labels": []}
        for f in features:
            pad = longest - len(f["input_ids"])
            batch["input_ids"].append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            batch["attention_mask"].append([1] * len(f["input_ids"]) + [0] * pad)
            batch["labels"].append(list(f["labels"]) + [IGNORE] * pad)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


def ensure_pad_token(tokenizer) -> None:
    """Batches need a pad token; base models often have none, so the end-of-sequence token pads
    (padding never reaches the loss: its labels are -100)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token


# ---- architecture ----------------------------------------------------------------------------

# Keys only encoder-decoder configs carry (T5's num_decoder_layers, BART/Marian/mBART's
# encoder_layers and decoder_layers).
_ENCODER_DECODER_KEYS = ("num_decoder_layers", "decoder_layers", "encoder_layers")


def architecture_of(path: str | Path) -> str:
    """'seq2seq' for an encoder-decoder backbone, else 'causal', from its config.json alone.

    Saved configs write ``is_encoder_decoder`` only where it is true (it differs from the
    default); without it, the encoder/decoder layer counts tell. Read as JSON, not through
    transformers, so the web server can call this without importing torch."""
    from studio.models.resolve import read_model_config

    config = read_model_config(path)
    if "is_encoder_decoder" in config:
        return "seq2seq" if config["is_encoder_decoder"] else "causal"
    return "seq2seq" if any(key in config for key in _ENCODER_DECODER_KEYS) else "causal"


def guess_architecture(backbone: str) -> str:
    """The architecture of ``model.backbone`` before it is loaded, without downloading anything."""
    from studio.models import catalog
    from studio.models.resolve import cached_snapshot

    local = Path(backbone).expanduser()
    if local.is_dir():
        return architecture_of(local)
    entry = catalog.find(backbone)
    if entry:
        return "seq2seq" if entry.kind == "seq2seq" else "causal"
    cached = cached_snapshot(backbone)
    return architecture_of(cached) if cached else "causal"


# ---- metrics ---------------------------------------------------------------------------------

def is_chinese(texts: Iterable[str]) -> bool:
    """True when most texts hold Chinese characters: then BLEU uses sacrebleu's 'zh' tokenizer."""
    texts = [t for t in texts if t]
    if not texts:
        return False
    return sum(1 for t in texts if _HAN.search(t)) >= len(texts) / 2


class RougeTokenizer:
    """Lower-cased words; each Chinese character (and kana) is a token of its own (no spaces to split on).
    For English text this gives the tokens of rouge-score's default tokenizer, accents kept."""

    def tokenize(self, text: str) -> list[str]:
        return _ROUGE_TOKEN.findall((text or "").lower())


def _normalize(text: str) -> str:
    return " ".join((text or "").split())


def exact_match(prediction: str, reference: str) -> bool:
    """Equal once surrounding and repeated whitespace is ignored (case and punctuation count)."""
    return _normalize(prediction) == _normalize(reference)


_SCORER = None


def _rouge_scorer():
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=RougeTokenizer())
    return _SCORER


def rouge(prediction: str, reference: str) -> dict[str, float]:
    scores = _rouge_scorer().score(reference or "", prediction or "")
    return {name: float(score.fmeasure) for name, score in scores.items()}


def generation_metrics(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Corpus scores of generated texts against references.

    ROUGE-1/2/L: mean F1 over examples, 0-1 (``RougeTokenizer``). BLEU and chrF: sacrebleu's corpus
    scores, 0-100, BLEU tokenized with 'zh' when the references are Chinese, '13a' otherwise.
    exact_match: share of generations equal to their reference (``exact_match``).
    """
    import sacrebleu

    if not references:
        return {}
    per_row = [rouge(p, r) for p, r in zip(predictions, references)]
    zh = is_chinese(references)
    out = {name: float(np.mean([s[name] for s in per_row])) for name in ("rouge1", "rouge2", "rougeL")}
    out["bleu"] = float(sacrebleu.corpus_bleu(predictions, [references], tokenize="zh" if zh else "13a").score)
    out["chrf"] = float(sacrebleu.corpus_chrf(predictions, [references]).score)
    out["exact_match"] = float(np.mean([exact_match(p, r) for p, r in zip(predictions, references)]))
    return out


# ---- the task --------------------------------------------------------------------------------

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
        needed = [r for r in _REQUIRED[fmt] if labeled or r != _TARGET.get(fmt)]
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
        template = config.task.prompt_template
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
            system = _text(record.get(system_column)) if system_column else ""
            system = system or (config.task.system_prompt or "").strip()
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
                messages = _strip_index(messages)
                if system and messages[0]["role"] != "system":
                    messages.insert(0, {"role": "system", "content": system})
            else:
                if fmt == "alpaca":
                    instruction = _text(record.get(mapping["instruction"]))
                    extra = _text(record.get(mapping["input"])) if "input" in mapping else ""
                    prompt = instruction + ("\n\n" + extra if extra else "") if instruction else ""
                    fields = {"prompt": prompt, "instruction": instruction, "input": extra}
                else:
                    prompt = _text(record.get(mapping["prompt"]))
                    fields = {"prompt": prompt, "instruction": prompt, "input": ""}
                target_column = mapping.get(_TARGET[fmt])
                target = _text(record.get(target_column)) if target_column else ""
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
        self.architecture = guess_architecture(config.model.backbone)
        return TaskMeta(self.name, {
            "format": train.attrs.get("format"),
            "columns": train.attrs.get("columns", {}),
            "architecture": self.architecture,
            "system_prompt": config.task.system_prompt,
            "prompt_template": config.task.prompt_template,
            "generation": dataclasses.asdict(config.generation),
            "seed": config.training.seed,
        })

    def validate(self, splits, meta, config):
        problems: list[Problem] = []
        train = splits.get("train")
        if train is not None and len(train) < 2:
            problems.append(Problem("error", f"the training data has {len(train)} usable row(s); a fine-tune needs at least a few"))
        cap = config.generation.max_eval_examples
        test = splits.get("test") if splits.get("test") is not None and len(splits["test"]) else splits.get("validation")
        if cap and test is not None and len(test) > cap:
            problems.append(Problem("info", f"the evaluation after training answers the first {cap} of {len(test)} test rows "
                                            "(generation.max_eval_examples); the loss uses them all"))
        return problems

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


def decoding_options(meta: TaskMeta | None, **overrides: Any) -> dict[str, Any]:
    """The run's ``generation`` settings (saved in task.json), with overrides (a playground's sliders)."""
    from studio.config import DecodingConfig

    values = {**dataclasses.asdict(DecodingConfig()), **((meta.info.get("generation") or {}) if meta else {}), **overrides}
    return values


def generate(model, tokenizer, conversations: list[list[dict[str, str]]], meta: TaskMeta | None = None, *,
             max_length: int = 512, batch_size: int = 8, **overrides: Any) -> list[str]:
    """The model's reply to each conversation (each ending with a user message), decoded with the
    run's settings. Causal LMs read the chat template with the generation prompt (left-padded,
    the prompt's start cut when it is longer than ``max_length``); seq2seq models the source text."""
    import copy

    import torch

    options = decoding_options(meta, **overrides)
    ensure_pad_token(tokenizer)
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    device = next(model.parameters()).device
    config = copy.deepcopy(model.generation_config)
    sampling = options["strategy"] == "sampling"
    eos = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    eos = [e for e in eos + [tokenizer.eos_token_id] if e is not None]
    config.update(
        max_new_tokens=int(options["max_new_tokens"]), do_sample=sampling,
        temperature=float(options["temperature"]) if sampling else None,
        top_p=float(options["top_p"]) if sampling else None, top_k=None,
        repetition_penalty=float(options["repetition_penalty"]),
        pad_token_id=tokenizer.pad_token_id, eos_token_id=sorted(set(eos)) or None,
    )
    if sampling:
        torch.manual_seed(int((meta.info.get("seed") if meta else None) or 42))
    default_template = not seq2seq and _uses_default(tokenizer)
    was_training = model.training
    model.eval()
    outputs: list[str] = []
    try:
        for start in range(0, len(conversations), batch_size):
            chunk = conversations[start : start + batch_size]
            if seq2seq:
                batch = tokenizer([seq2seq_source(c) for c in chunk],
                                  truncation=True, max_length=max_length, padding=True, return_tensors="pt")
                prompt_width = 0
            else:
                encoded = [tokenizer(render_chat(tokenizer, c, add_generation_prompt=True), add_special_tokens=False)["input_ids"][-max_length:]
                           for c in chunk]
                prompt_width = max(len(ids) for ids in encoded)
                pad = tokenizer.pad_token_id
                batch = {
                    "input_ids": torch.tensor([[pad] * (prompt_width - len(ids)) + ids for ids in encoded]),
                    "attention_mask": torch.tensor([[0] * (prompt_width - len(ids)) + [1] * len(ids) for ids in encoded]),
                }
            batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
            with torch.inference_mode():
                out = model.generate(**batch, generation_config=config)
            for row in out[:, prompt_width:]:
                text = tokenizer.decode(row, skip_special_tokens=True)
                if default_template:  # a base model may go on writing the next turn
                    cut = min((i for i in (text.find(m) for m in _DEFAULT_MARKERS) if i >= 0), default=len(text))
                    text = text[:cut]
                outputs.append(text.strip())
    finally:
        model.train(was_training)
    return outputs
