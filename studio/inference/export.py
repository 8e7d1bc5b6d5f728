"""Export a finished run's model as a plain Hugging Face folder (``studio export``, the UI).

A LoRA run saves only its adapter; ``merge=True`` folds the adapter into the base weights so the
result loads with ``AutoModelFor...from_pretrained`` alone (and converts to GGUF, serves with any
runtime), at the size of the full model. Without merging, the adapter folder is copied as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from studio.errors import StudioError
from studio.runs import RunDir

def export_model(run_dir: str | Path, output: str | Path, *, merge: bool = False, overwrite: bool = False) -> Path:
    """Write the run's model to ``output`` (a new folder) and return it.

    ``merge``: a LoRA adapter is merged into its base model (no effect on a fully fine-tuned run).
    The folder is written beside ``output`` and renamed into place, so a failure leaves nothing.
    """
    run_dir = Path(run_dir)
    output = Path(output).expanduser().resolve()
    folder = RunDir(run_dir)
    model_dir = folder.model
    if not folder.has_model():
        raise StudioError(f"run {run_dir.name} has no finished model (model/task.json is missing); was it completed?")
    taken = output.is_file() or (output.is_dir() and any(output.iterdir()))
    if taken and not overwrite:
        raise StudioError(f"{output} already exists and is not empty; choose a new folder")
    is_adapter = (model_dir / "adapter_config.json").exists()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        if is_adapter and merge:
            from studio.inference.loading import load_trained

            trained = load_trained(run_dir, device="cpu")
            merged = trained.model.merge_and_unload()
            merged.save_pretrained(staging)
            trained.tokenizer.save_pretrained(staging)
            meta = {**trained.meta.to_dict(), "merged_from_adapter": True}
            (staging / "task.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        else:
            shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        if folder.config.exists():
            shutil.copy2(folder.config, staging / "training_config.yaml")
        if folder.card.exists() and not (is_adapter and merge):  # the card describes the run's own files
            shutil.copy2(folder.card, staging / "README.md")
        if output.is_dir():
            shutil.rmtree(output)
        elif output.exists():
            output.unlink()
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output
