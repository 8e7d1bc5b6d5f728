"""Tokenized splits cached per dataset and tokenizer, so a rerun, a resume or a new run on the
same data with the same backbone skips tokenization.

The key hashes everything the token ids depend on: the split's exact rows (the run's
data/<split>.jsonl), the task and its fitted metadata (label set, architecture), max_length and
the tokenizer (its files, chat template and pad token). Entries are Arrow files written by
``datasets`` (no pickle), stored under ``<workspace>/cache/tokenized/<key>`` and written to a
temporary folder first, then renamed, so a crash never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

# Bump when tokenization code changes in a way that alters the ids for the same inputs.
FORMAT_VERSION = 1
TOKENIZER_FILES = ("tokenizer", "vocab", "merges", "special_tokens_map", "added_tokens", "spiece", "sentencepiece")


def tokenizer_fingerprint(tokenizer, model_dir: str | Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).iterdir()) if Path(model_dir).is_dir() else []:
        if path.is_file() and (path.name.startswith(TOKENIZER_FILES) or path.suffix == ".model"):
            digest.update(path.name.encode())
            digest.update(_file_hash(path).encode())
    digest.update(type(tokenizer).__name__.encode())
    digest.update(str(getattr(tokenizer, "chat_template", None)).encode())
    digest.update(str(getattr(tokenizer, "pad_token", None)).encode())
    digest.update(str(getattr(tokenizer, "padding_side", None)).encode())
    return digest.hexdigest()


def cache_key(*, split_file: Path, task: str, meta: dict[str, Any], max_length: int, tokenizer_id: str) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"v": FORMAT_VERSION, "task": task, "meta": meta, "max_length": max_length,
                              "tokenizer": tokenizer_id}, sort_keys=True, default=str).encode())
    digest.update(_file_hash(split_file).encode())
    return digest.hexdigest()[:32]


def cached(root: Path, key: str, build: Callable[[], Any]):
    """(dataset, True) when stored under ``key``; else (``build()``'s result, False), stored for next time."""
    from datasets import load_from_disk

    entry = root / key
    if (entry / "dataset_info.json").is_file():
        try:
            return load_from_disk(str(entry)), True
        except Exception as error:  # noqa: BLE001 - a damaged entry is rebuilt, never fatal
            log.warning("tokenized cache entry %s unreadable (%s); tokenizing again", key, error)
            shutil.rmtree(entry, ignore_errors=True)
    dataset = build()
    staging = root / f".{key}.{os.getpid()}.tmp"
    try:
        root.mkdir(parents=True, exist_ok=True)
        dataset.save_to_disk(str(staging))
        os.replace(staging, entry)
        dataset = load_from_disk(str(entry))  # memory-mapped: workers share it instead of copying
    except OSError as error:  # a full or read-only cache must not fail the run
        log.warning("could not cache tokenized data (%s)", error)
        shutil.rmtree(staging, ignore_errors=True)
    return dataset, False


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
