"""Predicting a whole file with a finished run: the one path ``studio predict`` and the
Playground's file upload share.

The file is read and normalized by the run's task as unlabeled data (a gold column, when there
is one, is kept for comparison by the task itself), predicted in chunks so a caller can show
progress, and written next to nothing until it is complete: a temporary file renamed at the end,
so an interrupted prediction never leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from studio.data.export import escape_formulas
from studio.tasks.base import Problem

CHUNK_ROWS = 256
"""Rows predicted between two progress reports."""


@dataclass
class PredictedFile:
    path: Path
    rows: int
    problems: list[Problem] = field(default_factory=list)


def default_output(source: Path) -> Path:
    """``reviews.csv`` -> ``reviews.predictions.csv`` beside it."""
    return source.with_name(source.stem + ".predictions.csv")


def predict_file(trained, source: str | Path, output: str | Path | None = None,
                 progress: Callable[[int, int], None] | None = None) -> PredictedFile:
    """Predict every row of ``source`` with ``trained`` (a ``TrainedModel``) and write the rows as
    the Evaluate tab shows them (plus class probabilities as JSON) to ``output``: JSON lines for a
    ``.jsonl``/``.json`` name, else CSV with formula-like cells escaped. ``progress(done, total)``
    is called after each chunk."""
    source = Path(source)
    out = Path(output) if output else default_output(source)
    task = trained.task
    table = task.read_file(source)
    df, problems = task.normalize(table.df, trained.config, source.name, labeled=False)
    rows = []
    total = len(df)
    for start in range(0, total, CHUNK_ROWS):
        for prediction in trained.predict(df.iloc[start : start + CHUNK_ROWS]):
            extra = {"probabilities": json.dumps(prediction["probabilities"], ensure_ascii=False)} \
                if "probabilities" in prediction else {}
            rows.append(task.render(prediction) | extra)
        if progress:
            progress(min(start + CHUNK_ROWS, total), total)
    write_rows(pd.DataFrame(rows), out)
    return PredictedFile(out, len(rows), list(problems))


def write_rows(frame: pd.DataFrame, out: Path) -> None:
    partial = out.with_name(f".{out.name}.partial")
    try:
        if out.suffix.lower() in (".jsonl", ".json"):
            frame.to_json(partial, orient="records", lines=True, force_ascii=False)
        else:
            escape_formulas(frame).to_csv(partial, index=False)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
