"""Which kind of backbone a model is: 'seq2seq' (encoder-decoder: T5, BART, Marian, mBART) or
'causal' (decoder-only), decided from its config.json or the catalog, never asked of the user.

It belongs with the models, not a task: it reads a backbone's files (local folder, catalog entry
or the Hugging Face cache) as JSON, without transformers, so the web server can call it without
importing torch.
"""

from __future__ import annotations

from pathlib import Path

# Keys only encoder-decoder configs carry (T5's num_decoder_layers, BART/Marian/mBART's
# encoder_layers and decoder_layers).
ENCODER_DECODER_KEYS = ("num_decoder_layers", "decoder_layers", "encoder_layers")


def architecture_of(path: str | Path) -> str:
    """'seq2seq' for an encoder-decoder backbone, else 'causal', from its config.json alone.

    Saved configs write ``is_encoder_decoder`` only where it is true (it differs from the
    default); without it, the encoder/decoder layer counts tell. Read as JSON, not through
    transformers, so the web server can call this without importing torch."""
    from studio.models.resolve import read_model_config

    config = read_model_config(path)
    if "is_encoder_decoder" in config:
        return "seq2seq" if config["is_encoder_decoder"] else "causal"
    return "seq2seq" if any(key in config for key in ENCODER_DECODER_KEYS) else "causal"


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
