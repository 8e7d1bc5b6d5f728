"""Loading resolved backbones: tokenizers, and the one-time GGUF -> Hugging Face conversion."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from studio.models.resolve import ResolvedBackbone


def converted_folder(resolved: ResolvedBackbone, cache_dir: Path) -> Path:
    """Where the Hugging Face copy of a bundled GGUF lives in the cache (converted or not yet)."""
    name = resolved.entry.name if resolved.entry else Path(resolved.gguf_file or resolved.path).stem
    return cache_dir / "models" / name


def tokenizer_folder(resolved: ResolvedBackbone, cache_dir: Path) -> str:
    """A folder holding the backbone's tokenizer, with no weights converted (see ``gguf_tokenizer``)."""
    if not resolved.gguf_file:
        return resolved.path
    return gguf_tokenizer(resolved.path, resolved.gguf_file, cache_dir, converted_folder(resolved, cache_dir).name)


def gguf_tokenizer(folder: str, gguf_file: str, cache_dir: Path, name: str) -> str:
    """The tokenizer of a GGUF model as a normal tokenizer folder: the converted model's once the
    worker has converted it, else the tokenizer alone, written once into the cache.

    Reading a GGUF tokenizer imports torch (transformers' GGUF reader does), and the caller may
    be the web server: a child process writes it, in seconds (converting the weights takes the
    worker half a minute and more)."""
    converted = cache_dir / "models" / name
    if (converted / "config.json").exists():
        return str(converted)
    target = cache_dir / "tokenizers" / name
    if (target / "tokenizer_config.json").exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    code = ("import sys; from transformers import AutoTokenizer; "
            "AutoTokenizer.from_pretrained(sys.argv[1], gguf_file=sys.argv[2]).save_pretrained(sys.argv[3])")
    try:
        done = subprocess.run([sys.executable, "-c", code, folder, gguf_file, str(tmp)], capture_output=True, text=True,
                              timeout=600)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"reading the tokenizer of {gguf_file} failed:\n{tail}")
        try:
            tmp.rename(target)
        except OSError:  # another process wrote it meanwhile
            if not (target / "tokenizer_config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def model_folder(resolved: ResolvedBackbone, cache_dir: Path) -> str:
    """A folder ``from_pretrained`` can load. A bundled GGUF is converted once into the cache
    (this imports torch: the worker does it, never the web server)."""
    if not resolved.gguf_file:
        return resolved.path
    target = converted_folder(resolved, cache_dir)
    name = target.name
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
