"""Runs on a real Ray cluster: a head and a second node started on this machine (CPU only),
reached through its Jobs API the way a studio reaches a real cluster.

One cluster serves the whole module (starting one costs seconds); each node offers one CPU, so two
runs at once land on two nodes. The workers train the tiny encoder of ``tests/conftest.py`` for a
few steps. Skipped where Ray is not installed (``pip install '.[ray]'``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, toy_sentiment_rows, write_csv
from tests.reliability.conftest import events_of, wait_for
from tests.servers import free_port

pytest.importorskip("ray.job_submission")

from studio.jobs import process  # noqa: E402  (after the skip: nothing to do without Ray)


def _ray_env() -> dict[str, str]:
    # The nodes run "python" from their PATH: this interpreter, with the studio installed.
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}


def _nodes_up(dashboard: str) -> int:
    try:
        with urllib.request.urlopen(f"{dashboard}/api/cluster_status", timeout=5) as answer:
            report = json.loads(answer.read())["data"]["clusterStatus"]["loadMetricsReport"]
        return len(report.get("usageByNode") or {})
    except (OSError, ValueError, KeyError, TypeError):
        return 0


@pytest.fixture(scope="module")
def ray_cluster():
    """The dashboard address of a two-node local cluster (one CPU a node); stopped at the end by
    killing the process trees this fixture started, nothing else."""
    temp = tempfile.mkdtemp(prefix="studio-ray-")  # short: Ray's socket paths must fit in 107 bytes
    gcs, dash = free_port(), free_port()
    env = _ray_env()
    ray = str(Path(sys.executable).parent / "ray")
    common = ["--num-cpus=1", "--block", "--disable-usage-stats"]

    def ports() -> list[str]:
        low = free_port()
        return [f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
                f"--min-worker-port={low}", f"--max-worker-port={low + 40}"]

    started = []
    log = open(Path(temp) / "cluster.log", "ab")
    started.append(subprocess.Popen(
        [ray, "start", "--head", f"--port={gcs}", "--include-dashboard=true", f"--dashboard-port={dash}",
         "--dashboard-host=127.0.0.1", f"--ray-client-server-port={free_port()}", f"--temp-dir={temp}", *ports(), *common],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    dashboard = f"http://127.0.0.1:{dash}"
    try:
        wait_for(lambda: _nodes_up(dashboard) >= 1, timeout=90, interval=0.5, what="the Ray head to start")
        started.append(subprocess.Popen([ray, "start", f"--address=127.0.0.1:{gcs}", *ports(), *common],
                                        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        wait_for(lambda: _nodes_up(dashboard) >= 2, timeout=90, interval=0.5, what="the second Ray node to join")
        yield dashboard
    finally:
        for proc in reversed(started):
            process.kill_tree(proc.pid)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)  # Ray's session logs and sockets


@pytest.fixture(scope="module")
def ray_workspace(ray_cluster, tmp_path_factory):
    from studio.settings import SettingsStore
    from studio.workspace import Workspace

    workspace = Workspace.at(tmp_path_factory.mktemp("ray-ws") / "workspace")
    SettingsStore(workspace.root).update(executor="ray", ray_address=ray_cluster)
    return workspace


@pytest.fixture(scope="module")
def ray_config(tiny_encoder, tmp_path_factory):
    from studio.config import RunConfig

    data = write_csv(tmp_path_factory.mktemp("ray-data") / "reviews.csv", toy_sentiment_rows(40))

    def make(name: str = "on-ray", **training):
        values = dict(epochs=1, batch_size=4, learning_rate=1e-3, max_length=16, eval_strategy="steps", eval_steps=2,
                      save_strategy="steps", save_total_limit=2, early_stopping_patience=0, logging_steps=1)
        values.update(training)
        return RunConfig.from_dict({"name": name, "data": {"train": str(data)}, "model": {"backbone": str(tiny_encoder)},
                                    "training": values})

    return make


@pytest.fixture
def ray_managers(ray_workspace):
    from studio.jobs.manager import JobManager

    made = []

    def make(**kwargs):
        manager = JobManager(ray_workspace, **{"poll_s": 0.3, "cancel_grace_s": 20.0, **kwargs})
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.shutdown()
    for record in made[-1].store.list(status=("starting", "running", "cancelling")) if made else []:
        if record.job_id:
            _client(ray_workspace).stop_job(record.job_id)


def _client(workspace):
    from ray.job_submission import JobSubmissionClient

    from studio.settings import SettingsStore

    return JobSubmissionClient(SettingsStore(workspace.root).load().ray_address)


def _job_status(workspace, job_id: str) -> str:
    return str(_client(workspace).get_job_status(job_id).value)


def _statuses(manager, run_id: str) -> list[str]:
    return [e["status"] for e in events_of(manager, run_id) if e.get("kind") == "status"]


def test_studio_train_on_ray_from_the_cli(ray_workspace, ray_config, tmp_path):
    config = tmp_path / "run.yaml"
    ray_config("from-cli").save(config)
    result = subprocess.run([sys.executable, "-m", "studio", "--workspace", str(ray_workspace.root), "train", str(config),
                             "--executor", "ray", "--quiet"], cwd=REPO, env=_ray_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "queued on the ray executor" in result.stdout
    from studio.jobs.store import RunStore

    record = [r for r in RunStore.for_workspace(ray_workspace).list() if r.name == "from-cli"][0]
    assert record.status == "completed" and record.executor == "ray"
    assert record.job_id == f"studio-{record.id}-1" and record.node  # the index knows the Ray job and its node
    assert _job_status(ray_workspace, record.job_id) == "SUCCEEDED"
    events = [json.loads(line) for line in (Path(record.run_dir) / "events.jsonl").read_text().splitlines()]
    assert any(e.get("kind") == "eval" for e in events)  # the worker on the node wrote into the shared run folder
    assert (Path(record.run_dir) / "model").is_dir()
    assert "Running entrypoint for job" in (Path(record.run_dir) / "worker.log").read_text()  # the job's log kept


def test_a_restarted_manager_reattaches_then_cancel_checkpoints_and_resume_finishes(ray_managers, ray_config):
    first = ray_managers()
    run_id = first.submit(ray_config("reattach-cancel-resume"), env={"STUDIO_STEP_DELAY": "0.5"})
    wait_for(lambda: first.get(run_id).status == "running", timeout=150, what="the run to start", run=(first, run_id))
    job_id = first.get(run_id).job_id
    first.shutdown()

    manager = ray_managers()  # the server restarted mid-run
    assert manager.recovered == []  # not taken for lost: re-attached by its job id
    assert manager.get(run_id).status == "running" and manager.get(run_id).job_id == job_id
    wait_for(lambda: (manager.get(run_id).step or 0) >= 2, timeout=150, what="training on the cluster",
             run=(manager, run_id))
    record = manager.cancel(run_id, wait=True)
    assert record.status == "cancelled"
    assert manager.checkpoint(run_id) is not None  # the worker saw the stop file on the shared folder
    wait_for(lambda: _job_status(manager.workspace, job_id) in ("SUCCEEDED", "STOPPED"), timeout=30,
             what="the Ray job to end")

    manager.resume(run_id)
    done = wait_for(lambda: (r := manager.get(run_id)).status in ("completed", "failed", "interrupted") and r,
                    timeout=180, what="the resumed run to end", run=(manager, run_id))
    assert done.status == "completed", done.error_message
    assert done.job_id == f"studio-{run_id}-2" != job_id  # a new Ray job for the new attempt
    resumed = [e for e in events_of(manager, run_id) if e.get("kind") == "log" and str(e.get("message", "")).startswith("resuming from")]
    assert resumed, "the second attempt says it continued from the checkpoint"


def test_a_ray_job_still_running_after_the_grace_period_is_stopped(ray_managers, ray_config):
    manager = ray_managers(cancel_grace_s=1.0)
    run_id = manager.submit(ray_config("stuck"), env={"STUDIO_STEP_DELAY": "30"})  # its first step never ends in time
    wait_for(lambda: manager.get(run_id).status == "running", timeout=150, what="the run to start", run=(manager, run_id))
    job_id = manager.get(run_id).job_id
    record = manager.cancel(run_id, wait=True)
    assert record.status == "cancelled" and record.exit_code == -9
    wait_for(lambda: _job_status(manager.workspace, job_id) == "STOPPED", timeout=30, what="Ray to stop the job")


def test_a_killed_worker_reads_interrupted_with_the_job_log(ray_managers, ray_config):
    manager = ray_managers()
    run_id = manager.submit(ray_config("killed"), env={"STUDIO_STEP_DELAY": "0.5"})
    wait_for(lambda: (manager.get(run_id).step or 0) >= 1, timeout=150, what="training", run=(manager, run_id))
    pid = process.find_worker(manager.run_dir(run_id))  # on this machine: the node is a local process
    assert pid
    os.kill(pid, signal.SIGKILL)
    done = wait_for(lambda: (r := manager.get(run_id)).status != "running" and r.status != "starting" and r,
                    timeout=60, what="the run to end", run=(manager, run_id))
    assert done.status == "interrupted", (done.status, done.error_message)
    assert "Ray job" in done.error_message and done.error_hint  # Ray's reason, and what to do
    assert _statuses(manager, run_id)[-1] == "interrupted"


def test_two_runs_at_once_train_on_two_nodes(ray_managers, ray_config):
    manager = ray_managers()
    runs = [manager.submit(ray_config(f"pair-{i}"), env={"STUDIO_STEP_DELAY": "1.5"}) for i in range(2)]
    spans = []
    for run_id in runs:
        done = wait_for(lambda: (r := manager.get(run_id)).status in ("completed", "failed", "interrupted") and r,
                        timeout=240, what="the runs to end", run=(manager, run_id))
        assert done.status == "completed", done.error_message
        times = [e["t"] for e in events_of(manager, run_id) if e.get("kind") == "status" and e["status"] in ("running", "completed")]
        spans.append((times[0], times[-1]))
    (start_a, end_a), (start_b, end_b) = spans
    assert start_b < end_a and start_a < end_b, spans  # they trained at the same time
    nodes = {manager.get(r).node for r in runs}
    assert len(nodes) == 2 and None not in nodes  # one CPU a node: each run on its own node


def test_a_cluster_that_cannot_see_the_workspace_is_refused(ray_cluster, ray_config, tmp_path, monkeypatch):
    from studio.errors import StudioError
    from studio.jobs.executors.ray_jobs import RayExecutor
    from studio.jobs.manager import JobManager
    from studio.settings import SettingsStore

    # The nodes look for the token at a path they do not have, as when the workspace is not mounted there.
    real = RayExecutor.probe_command
    monkeypatch.setattr(RayExecutor, "probe_command",
                        lambda self, path, token: real(self, Path("/nonexistent-mount") / path.name, token))
    SettingsStore(tmp_path / "ws").update(ray_address=ray_cluster)
    manager = JobManager(tmp_path / "ws", supervise=False)
    with pytest.raises(StudioError, match="do not see this studio's workspace") as refused:
        manager.submit(ray_config("unseen"), executor="ray")
    assert "No such file" in refused.value.message and "mount the workspace" in refused.value.hint
    assert manager.store.list() == [] and not any((tmp_path / "ws" / "runs").iterdir())


@pytest.fixture(scope="module")
def data_parallel_runs(ray_workspace, tiny_encoder, tmp_path_factory):
    """A run of 2 "GPUs" on the cluster without GPUs: two CPU workers, one on each node (Ray
    Train, gloo), 16 rows each a step; and the same run in one local process, 32 rows a step.
    Each step takes the whole training split in both, and the encoder has no dropout."""
    from studio.config import RunConfig
    from studio.jobs.manager import JobManager

    folder = tmp_path_factory.mktemp("data-parallel")
    encoder = folder / "no-dropout"
    shutil.copytree(tiny_encoder, encoder)
    config_json = json.loads((encoder / "config.json").read_text())
    config_json.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    (encoder / "config.json").write_text(json.dumps(config_json))
    data = write_csv(folder / "reviews.csv", toy_sentiment_rows(40))  # 32 rows for training

    def config(name: str, batch_size: int):
        return RunConfig.from_dict({"name": name, "data": {"train": str(data)}, "model": {"backbone": str(encoder)},
                                    "training": dict(max_steps=3, batch_size=batch_size, learning_rate=5e-3, max_length=16,
                                                     eval_strategy="no", save_strategy="no", logging_steps=1,
                                                     warmup=0, early_stopping_patience=0)})

    manager = JobManager(ray_workspace, poll_s=0.3)
    try:
        spread = manager.submit(config("two-workers", 16), gpus=2, executor="ray")
        alone = manager.submit(config("one-process", 32), gpus=0, executor="local")
        records = [wait_for(lambda: (r := manager.get(run_id)).status in ("completed", "failed", "interrupted") and r,
                            timeout=300, what="the runs to end", run=(manager, run_id)) for run_id in (spread, alone)]
        yield {"records": records, "encoder": encoder,
               "events": [events_of(manager, record.id) for record in records]}
    finally:
        manager.shutdown()


def _losses(events: list[dict]) -> list[float]:
    return [e["loss"] for e in events if e.get("kind") == "log" and "loss" in e]


def test_a_run_asking_more_than_a_node_has_trains_across_nodes_with_ray_train(data_parallel_runs):
    spread, alone = data_parallel_runs["records"]
    assert spread.status == "completed", spread.error_message
    assert alone.status == "completed", alone.error_message
    log = (Path(spread.run_dir) / "worker.log").read_text()
    assert "studio.jobs.executors.ray_train" in log and "--workers=2" in log  # a Ray Train job of two workers
    events = data_parallel_runs["events"][0]
    assert len(_losses(events)) == 3  # rank 0 alone wrote the events (two ranks would write each step twice)
    assert [e["status"] for e in events if e.get("kind") == "status"].count("completed") == 1
    assert (Path(spread.run_dir) / "model").is_dir() and (Path(spread.run_dir) / "metrics.json").is_file()


def test_the_two_worker_run_learns_what_one_process_of_the_same_global_batch_learns(data_parallel_runs):
    events = data_parallel_runs["events"]
    assert _losses(events[0]) == pytest.approx(_losses(events[1]), rel=1e-4)
    spread, alone = (_weights(Path(record.run_dir) / "model") for record in data_parallel_runs["records"])
    for name, value in spread.items():
        assert value.allclose(alone[name], atol=1e-6), name


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(next(folder.glob("*.safetensors"))))


def test_the_train_tab_sends_a_run_to_the_ray_cluster(ray_workspace, tiny_encoder, browser, tmp_path):
    """A member picks "Ray cluster" in the Train tab (offered because an admin set ray_address),
    launches, and watches the run train on the cluster to the end, charts and all."""
    from playwright.sync_api import expect

    from studio.demo import seed_dataset
    from studio.jobs.store import RunStore
    from tests.browser.ui import choose, fill, open_accordion, radio, tab
    from tests.servers import start_server, stop, wait_until_up

    seed_dataset(ray_workspace)
    models = tmp_path / "models"
    shutil.copytree(tiny_encoder, models / "tiny-bert")
    port = free_port()
    log = tmp_path / "server.log"
    server = start_server(ray_workspace.root, port, log, "--model-dir", str(models), env=_ray_env())
    context = None
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(server, url, log)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(30_000)
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#data-file")
        tab(page, "Train")
        choose(page, "train-data", "sample-reviews")
        choose(page, "train-backbone", "tiny-bert · local folder")
        radio(page, "train-preset", "quick")
        choose(page, "train-executor", "Ray cluster")
        open_accordion(page, "train-advanced", "Advanced")
        fill(page, "train-adv-training-max_steps", "4")
        fill(page, "train-name", "from-the-page")
        page.locator("#train-launch").click()
        expect(page.locator("#train-message")).to_contain_text("from-the-page", timeout=60_000)
        run_id = re.search(r"\S*from-the-page\S*", page.locator("#train-message").inner_text()).group(0)
        expect(page.locator("#run-status")).to_contain_text(run_id)
        expect(page.locator("#run-status")).to_contain_text("completed", timeout=240_000)
        record = RunStore.for_workspace(ray_workspace).get(run_id)
        assert record.executor == "ray" and record.job_id and record.node
        assert _job_status(ray_workspace, record.job_id) == "SUCCEEDED"
    finally:
        if context is not None:
            context.close()
        stop(server)
