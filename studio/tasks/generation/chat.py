"""A conversation as the model reads it, and the labels it learns from.

Decoder-only (causal LM): the conversation is rendered with the tokenizer's chat template (or
``DEFAULT_CHAT_TEMPLATE``), tokenized, and labelled -100 everywhere except the assistant turns, so
the loss covers only what the model must write; ``truncate`` keeps answer tokens when a row is too
long and ``CausalCollator`` pads a batch. Encoder-decoder (seq2seq): the conversation before the
last assistant turn is the source, that turn the target (``seq2seq_pair``).
"""

from __future__ import annotations

from typing import Any

from studio.errors import DataError
from studio.tasks.base import IGNORE
from studio.tasks.generation.formats import split_last_turn

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
# Turn headers of that template; a reply is cut at the first one (a base model may write on).
DEFAULT_MARKERS = ("### User:", "### System:", "### Assistant:")


# ---- templates and masking -------------------------------------------------------------------

def chat_template(tokenizer) -> str:
    return getattr(tokenizer, "chat_template", None) or DEFAULT_CHAT_TEMPLATE


def uses_default(tokenizer) -> bool:
    """True when the tokenizer has no chat template of its own, so ``DEFAULT_CHAT_TEMPLATE`` applies."""
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

