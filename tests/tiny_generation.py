"""Tiny generation models built from configs (seconds to train) and word-level tokenizers whose
tokens are known in advance, so tests can name exactly which positions are masked."""

from __future__ import annotations

import random
from pathlib import Path

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""A ChatML template like the bundled SmolLM2's, without its default system message."""

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]

# Toy language: "name the colour of <thing>" -> "<thing> is <colour>", and counting words.
THINGS = {
    "grass": "green", "sky": "blue", "snow": "white", "coal": "black", "sun": "yellow", "blood": "red",
    "leaf": "green", "sea": "blue", "milk": "white", "night": "black", "lemon": "yellow", "cherry": "red",
    "frog": "green", "ink": "black", "cloud": "white", "banana": "yellow", "rose": "red", "lake": "blue",
}
WORDS = sorted(
    set(THINGS) | set(THINGS.values())
    | set("### System User Assistant : user assistant system what colour is the of name a be brief short answer please "
          "hello hi there thanks bye say it again one two three four five count to and how are you fine good "
          "summarize translate question reply with only colour word".split())
)


def vocabulary() -> dict[str, int]:
    return {token: i for i, token in enumerate(SPECIALS + WORDS + [",", ".", "?", "!"])}


def word_tokenizer(chat_template: str | None = CHATML, model_max_length: int = 256):
    """A fast word-level tokenizer: one token per word or punctuation mark, specials kept whole."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocabulary(), unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"], model_max_length=model_max_length,
    )
    if chat_template:
        tokenizer.chat_template = chat_template
    return tokenizer


def t5_tokenizer(model_max_length: int = 256):
    """A word-level tokenizer shaped like T5's: <pad> 0, </s> 1 appended to every text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = [w for w in vocabulary() if w not in ("<pad>", "</s>", "<unk>")]
    vocab = {token: i for i, token in enumerate(["<pad>", "</s>", "<unk>"] + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece(prefix="##")
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                                   model_max_length=model_max_length)


def tiny_causal_lm(folder: Path, chat_template: str | None = CHATML) -> Path:
    """A 2-layer Llama with the word-level tokenizer, saved as a Hugging Face folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = word_tokenizer(chat_template)
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>") if chat_template else tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def tiny_t5(folder: Path) -> Path:
    """A 2-layer T5 (encoder-decoder) with the T5-shaped word tokenizer."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = t5_tokenizer()
    tokenizer.save_pretrained(folder)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=64, d_ff=128, d_kv=16, num_layers=2, num_decoder_layers=2, num_heads=4,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    return folder


def colour_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Learnable prompt/completion rows: 'what colour is the sky ?' -> 'sky is blue .'"""
    rng = random.Random(seed)
    things = sorted(THINGS)
    return [{"prompt": f"what colour is the {t} ?", "completion": f"{t} is {THINGS[t]} ."}
            for t in (rng.choice(things) for _ in range(n))]
