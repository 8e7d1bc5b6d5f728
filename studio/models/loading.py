"""Loading resolved backbones: tokenizers, and the one-time GGUF -> Hugging Face conversion."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from studio.models.resolve import ResolvedBackbone


def model_folder(resolved: ResolvedBackbone, cache_dir: Path) -> str:
    """A folder ``from_pretrained`` can load. A bundled GGUF is converted once into the cache."""
    if not resolved.gguf_file:
        return resolved.path
    name = resolved.entry.name if resolved.entry else Path(resolved.gguf_file).stem
    target = cache_dir / "models" / name
    if (target / "config.json").exists():
        return str(target)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    target.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a temporary folder and rename it, so a crash never leaves a half-converted model.
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, gguf_file=resolved.gguf_file)
        # dequantize=True unpacks every block into a plain dense model: one that can be saved,
        # trained and merged (weights left packed in GGUF blocks can do none of that).
        model = AutoModelForCausalLM.from_pretrained(
            resolved.path, gguf_file=resolved.gguf_file, dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
        )
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process converted it meanwhile
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def load_tokenizer(path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
