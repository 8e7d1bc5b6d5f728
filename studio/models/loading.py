"""Loading resolved backbones: tokenizers, and the one-time GGUF -> Hugging Face conversion."""

from __future__ import annotations

import os
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
    worker has converted it, else the tokenizer alone, written once into the cache, with the
    model's config.json beside it (its shape: the plan before launch estimates memory and time
    from it, as the worker does from the converted model's).

    Reading a GGUF tokenizer imports torch (transformers' GGUF reader does), and the caller may
    be the web server: a child process writes it, in seconds (converting the weights takes the
    worker half a minute and more)."""
    converted = cache_dir / "models" / name
    if (converted / "config.json").exists():
        return str(converted)
    target = cache_dir / "tokenizers" / name
    if (target / "tokenizer_config.json").exists() and (target / "config.json").exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    code = ("import sys; from transformers import AutoConfig, AutoTokenizer; "
            "AutoTokenizer.from_pretrained(sys.argv[1], gguf_file=sys.argv[2]).save_pretrained(sys.argv[3]); "
            "AutoConfig.from_pretrained(sys.argv[1], gguf_file=sys.argv[2]).save_pretrained(sys.argv[3])")
    try:
        done = subprocess.run([sys.executable, "-c", code, folder, gguf_file, str(tmp)], capture_output=True, text=True,
                              timeout=600)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"reading the tokenizer of {gguf_file} failed:\n{tail}")
        try:
            tmp.rename(target)
        except OSError:  # another process wrote it meanwhile, or an older release wrote no config.json
            if not (target / "tokenizer_config.json").exists():
                raise
            if not (target / "config.json").exists():
                os.replace(tmp / "config.json", target / "config.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def model_folder(resolved: ResolvedBackbone, cache_dir: Path) -> str:
    """A folder ``from_pretrained`` can load. A bundled GGUF is converted once into the cache, in
    a child process: dequantizing holds the GGUF blocks and the dense fp32 model at once (a
    gigabyte for a 135M model), and memory a process has once held stays in its peak and partly
    in its heap; the run that asked for the folder should not carry that into its training."""
    if not resolved.gguf_file:
        return resolved.path
    target = converted_folder(resolved, cache_dir)
    name = target.name
    if (target / "config.json").exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a temporary folder and rename it, so a crash never leaves a half-converted model.
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        convert_in_child(resolved.path, resolved.gguf_file, tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process converted it meanwhile
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def convert_in_child(folder: str, gguf_file: str, out: Path) -> None:
    """``convert_gguf`` in a child process of this Python (it takes half a minute and more)."""
    # The child imports this package from where this process did, installed or not.
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "studio.models.loading", folder, gguf_file, str(out)],
                          capture_output=True, text=True, timeout=3600, env=env)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"converting {gguf_file} to a model folder failed:\n{tail}")


def convert_gguf(folder: str, gguf_file: str, out: Path) -> None:
    """The GGUF model and its tokenizer saved as a dense Hugging Face model folder in ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    # dequantize=True unpacks every block into a plain dense model: one that can be saved,
    # trained and merged (weights left packed in GGUF blocks can do none of that).
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32,
                                                 quantization_config=GgufConfig(dequantize=True))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def load_tokenizer(path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)


if __name__ == "__main__":  # the child process of ``convert_in_child``
    convert_gguf(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
