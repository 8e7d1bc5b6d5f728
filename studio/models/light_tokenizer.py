"""A tokenizer for counting tokens in a process that must not import torch (the web server).

``AutoTokenizer`` imports torch (transformers' configuration module does, to know which model
classes exist), which costs the server seconds and hundreds of megabytes the first time a user
checks data or submits a run. Yet for most model folders AutoTokenizer only reads the tokenizer
class named in ``tokenizer_config.json`` and calls that class's ``from_pretrained``, and the
class itself (built on the ``tokenizers`` library, from ``tokenizer.json``) needs no torch.

``light_tokenizer`` takes that path where it gives what AutoTokenizer would, and returns None
everywhere else: no ``tokenizer.json``, custom code (``auto_map``, ``trust_remote_code``), no
declared class or one transformers does not ship, and ``LlamaTokenizer``, which AutoTokenizer
may swap for another class after looking at the model's config. Callers then ask a short-lived
child process (``studio.training.lengths``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Declared classes AutoTokenizer does not simply load as named (it looks at the model's config
# and the tokenizer file first and may pick another class).
SWAPPED_BY_AUTO = {"LlamaTokenizer"}


def light_tokenizer(folder: str | Path, trust_remote_code: bool = False) -> Any | None:
    """The tokenizer AutoTokenizer would load from ``folder``, loaded without torch; else None."""
    folder = Path(folder)
    if trust_remote_code or not (folder / "tokenizer.json").is_file():
        return None
    try:
        declared = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(declared, dict) or declared.get("auto_map"):
        return None
    cls = shipped_class(declared.get("tokenizer_class"))
    if cls is None:
        return None
    try:
        return cls.from_pretrained(str(folder))
    except Exception:  # noqa: BLE001 - whatever the light path cannot read, the child process can report
        return None


def shipped_class(name: Any) -> type | None:
    """The transformers tokenizer class called ``name`` (``...Fast`` names are the same class),
    when it is a fast one that AutoTokenizer would use as it is."""
    if not isinstance(name, str) or not name:
        return None
    base = name.removesuffix("Fast")
    if base in SWAPPED_BY_AUTO:
        return None
    import transformers
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    if base in ("PreTrainedTokenizer", "PythonBackend"):
        return None  # a slow tokenizer: AutoTokenizer converts it, which is its business
    for candidate in (base, base + "Fast", name):
        try:
            cls = getattr(transformers, candidate)
        except (AttributeError, ImportError):
            continue
        if isinstance(cls, type) and issubclass(cls, TokenizersBackend):
            return cls
    return None
