"""The executor choice without a cluster: settings, refusals, recovery, and how a Ray run is planned
(the real cluster is tests/integration/test_ray_executor.py's)."""

from __future__ import annotations

import time

import pytest

from studio.errors import StudioError
from studio.jobs.executors.ray_jobs import RayExecutor
from studio.settings import SettingsError, SettingsStore


def test_the_executor_settings_are_checked(tmp_path):
    store = SettingsStore(tmp_path)
    assert store.load().executor == "local" and store.load().ray_address == ""
    settings = store.update(executor="RAY", ray_address="head:8265/")
    assert settings.executor == "ray" and settings.ray_address == "http://head:8265"
    with pytest.raises(SettingsError, match="local or ray"):
        store.update(executor="slurm")
    with pytest.raises(SettingsError, match="dashboard"):
        store.update(ray_address="http://head:8265/api/jobs")


def test_a_ray_run_without_a_configured_cluster_is_refused_before_anything_is_prepared(workspace, tiny_encoder, tmp_path):
    from studio.config import RunConfig
    from studio.jobs.manager import JobManager
    from tests.conftest import toy_sentiment_rows, write_csv

    data = write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(20))
    config = RunConfig.from_dict({"data": {"train": str(data)}, "model": {"backbone": str(tiny_encoder)}})
    manager = JobManager(workspace, supervise=False)
    with pytest.raises(StudioError, match="no Ray cluster is configured") as refused:
        manager.submit(config, executor="ray")
    assert "ray_address" in refused.value.hint
    assert manager.store.list() == [] and not any(workspace.runs.iterdir())


def test_a_server_restarted_without_its_cluster_marks_the_ray_runs_interrupted(workspace):
    from studio.jobs.manager import JobManager
    from studio.jobs.store import RunRecord, RunStore

    run_dir = workspace.runs / "on-ray"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("name: on-ray\n")
    RunStore.for_workspace(workspace).insert(RunRecord(id="on-ray", run_dir=str(run_dir), status="running",
                                                       executor="ray", job_id="studio-on-ray-1", started=time.time() - 100))
    manager = JobManager(workspace, supervise=False)  # starts: the index names a Ray job, no cluster is configured
    record = manager.get("on-ray")
    assert manager.recovered == ["on-ray"] and record.status == "interrupted"
    assert "cannot be reached" in record.error_message and "ray_address" in record.error_hint


def _nodes(*gpus: float) -> dict:
    return {f"node{i}": {"CPU": (0.0, 8.0), **({"GPU": (0.0, g)} if g else {})} for i, g in enumerate(gpus)}


@pytest.mark.parametrize("gpus, nodes, planned", [
    (0, _nodes(4, 4), ({"CPU": 1.0}, 0)),                     # a CPU run takes a CPU
    (1, _nodes(0, 0), ({"CPU": 1.0}, 0)),                     # one GPU on a cluster without any: a CPU
    (2, _nodes(4, 4), ({"CPU": 1.0, "GPU": 2.0}, 0)),         # fits a node: one job, torchrun inside
    (6, _nodes(4, 4), ({"CPU": 1.0, "GPU": 1.0}, 6)),         # more than a node has: 6 Ray Train workers
    (2, _nodes(0, 0), ({"CPU": 1.0}, 2)),                     # no GPUs at all: 2 CPU workers (gloo)
])
def test_how_a_run_is_planned_on_the_cluster(gpus, nodes, planned):
    assert RayExecutor.plan(gpus, nodes) == planned


def test_a_ray_run_on_a_server_without_ray_says_what_to_install(workspace, tiny_encoder, tmp_path, monkeypatch):
    import sys

    from studio.config import RunConfig
    from studio.jobs.manager import JobManager
    from tests.conftest import toy_sentiment_rows, write_csv

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    monkeypatch.setitem(sys.modules, "ray.job_submission", None)
    SettingsStore(workspace.root).update(executor="ray", ray_address="http://head:8265")
    data = write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(20))
    config = RunConfig.from_dict({"data": {"train": str(data)}, "model": {"backbone": str(tiny_encoder)}})
    manager = JobManager(workspace, supervise=False)
    with pytest.raises(StudioError, match="needs Ray installed") as refused:
        manager.submit(config)  # the workspace's executor: ray
    assert "studio[ray]" in refused.value.hint
    assert manager.store.list() == [] and not any(workspace.runs.iterdir())
