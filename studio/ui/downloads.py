"""A run's files as the browser downloads them: the model as a zip (with its config, model card
and metrics), the config as YAML, the predictions as CSV with formula-like cells escaped.

Each download is built for one request in a folder of its own and deleted once sent
(the web server's ``/download/<run>/<kind>`` route, after the one owner check in
``Services.check_may_download``). Nothing is left in a folder other users could reach.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

from studio.errors import StudioError
from studio.ui import words
from studio.ui.i18n import t
from studio.ui.services import Services

KINDS = ("model", "config", "predictions")
PREDICTION_SPLITS = ("test", "validation")


def available(services: Services, run_id: str) -> list[str]:
    """The kinds a run has files for now."""
    folder = services.jobs.folder(run_id)
    kinds = []
    if folder.has_model():
        kinds.append("model")
    if folder.config.exists():
        kinds.append("config")
    if any(folder.predictions(split).exists() for split in PREDICTION_SPLITS):
        kinds.append("predictions")
    return kinds


def build(services: Services, run_id: str, kind: str, folder: Path) -> Path:
    """Write one download of a run into ``folder`` and return its path."""
    makers = {"model": model_zip, "config": config_file, "predictions": predictions_csv}
    if kind not in makers:
        raise StudioError(t("runs.no_such_download", kind=kind, kinds=", ".join(KINDS)))
    return makers[kind](services, run_id, folder)


def model_zip(services: Services, run_id: str, folder: Path) -> Path:
    run = services.jobs.folder(run_id)
    model = run.model
    if not run.has_model():
        raise StudioError(t("runs.no_model", run=run_id, status=words.status(services.jobs.status(run_id))))
    target = folder / f"{run_id}-model.zip"
    # The config and the model card go in too, so the zip is usable on its own.
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(model.rglob("*")):
            if path.is_file():
                archive.write(path, Path("model") / path.relative_to(model))
        for extra in (run.config, run.card, run.metrics):
            if extra.is_file():
                archive.write(extra, extra.name)
    return target


def config_file(services: Services, run_id: str, folder: Path) -> Path:
    source = services.jobs.folder(run_id).config
    if not source.exists():
        raise StudioError(t("runs.no_config", run=run_id))
    target = folder / f"{run_id}.yaml"
    shutil.copyfile(source, target)
    return target


def predictions_csv(services: Services, run_id: str, folder: Path) -> Path:
    import pandas as pd

    from studio.config import RunConfig
    from studio.data.export import escape_formulas
    from studio.tasks import get_task

    run = services.jobs.folder(run_id)
    found = {split: run.predictions(split) for split in PREDICTION_SPLITS if run.predictions(split).exists()}
    if not found:
        raise StudioError(t("runs.no_predictions", run=run_id))
    task = get_task(RunConfig.load(run.config).task.name)
    rows = []
    for split, path in found.items():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            prediction = json.loads(line)
            row = {"split": split, **task.render(prediction)}
            if "probabilities" in prediction:
                row["probabilities"] = json.dumps(prediction["probabilities"], ensure_ascii=False)
            rows.append(row)
    target = folder / f"{run_id}-predictions.csv"
    escape_formulas(pd.DataFrame(rows)).to_csv(target, index=False)
    return target
