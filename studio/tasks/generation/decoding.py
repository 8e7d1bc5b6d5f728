"""Batched generation: the model's replies to conversations, decoded with the run's settings.

Used after training (the test split's generations), for the base-model comparison and by the
playground, which overrides the decoding settings with its sliders. Causal LMs read left-padded
chat-template prompts; seq2seq models read the source text.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from studio.models.padding import ensure_pad_token
from studio.tasks.base import TaskMeta
from studio.tasks.generation.chat import DEFAULT_MARKERS, render_chat, seq2seq_source, uses_default


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
    default_template = not seq2seq and uses_default(tokenizer)
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
                    cut = min((i for i in (text.find(m) for m in DEFAULT_MARKERS) if i >= 0), default=len(text))
                    text = text[:cut]
                outputs.append(text.strip())
    finally:
        model.train(was_training)
    return outputs
