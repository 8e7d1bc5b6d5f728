"""Token counts of a run's data, measured without importing torch in the calling process.

Preparing a run (in the web server, at submit time) and profiling data in the Data tab need the
token count of every row, to choose ``max_length`` and to draw the length histogram. The
tokenizer is loaded in this process when that needs no torch (``light_tokenizer``); otherwise
(custom tokenizer code, a slow-only tokenizer, a class AutoTokenizer may swap for another) a
short-lived child process loads it with AutoTokenizer, as the worker will, measures and exits,
so the server stays small.

``python -m studio.training.lengths <request.pkl>`` is that child; it is not a user command.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from studio.data.text import sample_texts
from studio.models.coverage import SAMPLE_ROWS, measure_coverage
from studio.models.light_tokenizer import light_tokenizer

CHILD_TIMEOUT_S = 600


@dataclass
class TokenCounts:
    lengths: dict[str, list[int]]
    """Untruncated token count of every row, per split."""
    model_max_length: int | None
    """The tokenizer's declared limit (None when it declares none)."""
    coverage: dict[str, Any] | None = None
    """``Coverage.to_dict()`` of a sample of the training rows: what the tokenizer could not read."""


def count_tokens(task, splits: dict[str, pd.DataFrame], folder: str, trust_remote_code: bool = False) -> TokenCounts:
    """Token counts of ``splits`` with the tokenizer in ``folder``, as the worker will count them."""
    tokenizer = light_tokenizer(folder, trust_remote_code)
    if tokenizer is not None:
        return measure(task, splits, tokenizer)
    return _measure_in_child(task, splits, folder, trust_remote_code)


def measure(task, splits: dict[str, pd.DataFrame], tokenizer) -> TokenCounts:
    lengths = {name: task.text_lengths(df, tokenizer) for name, df in splits.items()}
    train = splits.get("train")
    coverage = measure_coverage(tokenizer, sample_texts(train, SAMPLE_ROWS)).to_dict() if train is not None else None
    return TokenCounts(lengths, getattr(tokenizer, "model_max_length", None), coverage)


def _measure_in_child(task, splits, folder, trust_remote_code) -> TokenCounts:
    with tempfile.TemporaryDirectory(prefix="studio-lengths-") as tmp:
        request, answer = Path(tmp) / "request.pkl", Path(tmp) / "answer.pkl"
        with open(request, "wb") as f:
            pickle.dump({"task": task, "splits": splits, "folder": folder, "trust_remote_code": trust_remote_code,
                         "answer": str(answer)}, f)
        done = subprocess.run([sys.executable, "-m", "studio.training.lengths", str(request)],
                              capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
        if not answer.exists():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise RuntimeError(f"measuring token lengths failed (exit status {done.returncode}):\n{tail}")
        with open(answer, "rb") as f:
            result = pickle.load(f)
    if "error" in result:
        # The child's own exception (a tokenizer that cannot be read, a model that needs code the
        # user did not trust), raised here as if the tokenizer had been loaded in this process.
        raise result["error"]
    return TokenCounts(result["lengths"], result["model_max_length"], result.get("coverage"))


def _child(request_path: str) -> int:
    with open(request_path, "rb") as f:
        request: dict[str, Any] = pickle.load(f)
    try:
        from studio.models.loading import load_tokenizer

        tokenizer = load_tokenizer(request["folder"], request["trust_remote_code"])
        counts = measure(request["task"], request["splits"], tokenizer)
        # Plain data: this module runs as __main__ here, so its classes would not unpickle there.
        result: dict[str, Any] = {"lengths": counts.lengths, "model_max_length": counts.model_max_length,
                                  "coverage": counts.coverage}
    except Exception as error:  # noqa: BLE001 - handed to the parent, which raises it
        try:
            pickle.dumps(error)
            result = {"error": error}
        except Exception:  # noqa: BLE001 - an exception that cannot travel: its text does
            result = {"error": RuntimeError(f"{type(error).__name__}: {error}")}
    with open(request["answer"], "wb") as f:
        pickle.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
