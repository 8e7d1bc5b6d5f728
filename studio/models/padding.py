"""Padding for decoder-only backbones, which usually ship without a pad token.

Batches need one, so the end-of-sequence token pads (padding never reaches a loss: its labels
are ignored). A classification head on a decoder reads the last token that is not padding, so the
model's config must name the same pad token as the tokenizer, in training and whenever the model
is loaded again (a LoRA adapter's base comes from the backbone, which names none).
"""

from __future__ import annotations


def ensure_pad_token(tokenizer) -> None:
    """Give the tokenizer a pad token when it has none: its end-of-sequence (else unknown) token."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token


def align_pad_token(model, tokenizer) -> None:
    """Make the model's config name the tokenizer's pad token when it names none."""
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        config.pad_token_id = tokenizer.pad_token_id
