"""``studio demo``: a workspace with sample data and a finished quick run, then the web app.

The first start saves the bundled English reviews as a dataset and trains the bundled MiniLM on
``assets/configs/sentiment_en.yaml`` with the quick preset and a few steps (well under a minute on
a laptop CPU), so every tab has something to show; later starts reuse both.
"""

from __future__ import annotations

import time
from pathlib import Path

from studio.errors import StudioError

DEFAULT_WORKSPACE = "demo-workspace"
DATASET = "sample-reviews"
RUN_NAME = "demo-sentiment"
MAX_STEPS = 40  # about two epochs of the sample: enough for the demo run to have clearly learned
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def seed_dataset(workspace) -> None:
    import pandas as pd

    from studio.data.datasets_store import list_datasets, save_dataset
    from studio.data.split import split_frame

    if DATASET in list_datasets(workspace.datasets):
        return
    frame = pd.read_csv(ASSETS / "data" / "sentiment_en.csv")[["text", "label"]].dropna()
    splits, _ = split_frame(frame, 0.1, 0.1, seed=0, stratify="label")
    meta = {"task": "classification", "columns": {"text": "text", "label": "label"}, "task_options": {},
            "source": {"train": "sentiment_en.csv", "validation": None, "test": None},
            "mapping": {"text": "text", "label": "label"}, "split": {"validation": 0.1, "test": 0.1, "seed": 0}}
    save_dataset(workspace.datasets, DATASET, splits, meta)
    print(f"demo: saved the sample reviews as dataset '{DATASET}'", flush=True)


def seed_run(services, timeout: float = 900) -> str:
    """The demo's finished run: the one from an earlier start, else trained now."""
    from studio.config import RunConfig

    jobs = services.jobs
    done = [r for r in jobs.list(status="completed") if r.name == RUN_NAME]
    if done:
        return done[0].id
    config = RunConfig.load(ASSETS / "configs" / "sentiment_en.yaml").with_overrides(
        [f"name={RUN_NAME}", "training.preset=quick", f"training.max_steps={MAX_STEPS}"])
    run_id = jobs.submit(config, owner=None, gpus=1)
    print(f"demo: training a quick sentiment run ({MAX_STEPS} steps) so every tab has something to show…", flush=True)
    deadline = time.time() + timeout
    while (status := jobs.status(run_id)) not in ("completed", "failed", "cancelled", "interrupted"):
        if time.time() > deadline:
            jobs.cancel(run_id)
            raise StudioError(f"the demo run {run_id} did not finish within {timeout:.0f} s")
        time.sleep(1)
    if status != "completed":
        record = jobs.get(run_id)
        raise StudioError(f"the demo run {run_id} {status}: {record.error_message or 'see its worker.log'}")
    print(f"demo: run {run_id} is ready", flush=True)
    return run_id


def demo(workspace: str | Path | None = None, port: int = 7860, share: bool = False, host: str = "127.0.0.1") -> int:
    from studio.ui.app import make_services
    from studio.web.server import serve
    from studio.workspace import Workspace

    ws = Workspace.at(workspace or DEFAULT_WORKSPACE)
    seed_dataset(ws)
    services = make_services(ws.root)
    try:
        seed_run(services)
    except BaseException:
        services.jobs.shutdown()
        raise
    return serve(host, port, services=services, share=share)
