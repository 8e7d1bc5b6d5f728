"""Sweeps end to end with a tiny BERT (real worker processes): the same seed asks the same trials,
a killed driver is continued without running a trial twice, a pruned trial reads 'pruned', and
only the best trial is scored on the test split."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from optuna.trial import TrialState

from studio.config import RunConfig
from studio.jobs.manager import JobManager
from studio.runs.events import read_events
from studio.sweeps import study as studies
from studio.sweeps.driver import SweepDriver, cancel_sweep, create_sweep
from studio.sweeps.report import report
from tests.conftest import REPO, toy_sentiment_rows, write_csv

SPACE = {"training.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "training.warmup": {"choices": [0.0, 0.1]}}


@pytest.fixture
def base(tmp_path, tiny_encoder) -> dict:
    train = write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(120))
    return {"name": "toy", "data": {"train": str(train)}, "model": {"backbone": str(tiny_encoder)},
            "training": {"epochs": 2, "learning_rate": 3e-3, "batch_size": 8, "max_length": 32, "early_stopping_patience": 0}}


@pytest.fixture
def manager(workspace):
    made = JobManager(workspace, poll_s=0.2, cancel_grace_s=20)
    yield made
    made.shutdown(cancel=True)


def drive(manager, sweep_id: str, timeout: float = 300) -> str:
    deadline = time.time() + timeout
    driver = SweepDriver(manager, sweep_id)
    while time.time() < deadline:
        status, done = driver.tick()
        if done:
            return status
        time.sleep(0.2)
    raise AssertionError(f"sweep {sweep_id} did not end in {timeout}s: {report(manager, sweep_id)}")


def test_the_same_seed_asks_the_same_trials_and_only_the_best_sees_the_test_split(manager, base):
    config = RunConfig.from_dict(base)
    first = create_sweep(manager, config, trials=2, space=SPACE, pruner="none", seed=7)
    second = create_sweep(manager, config, trials=2, space=SPACE, pruner="none", seed=7)
    assert drive(manager, first) == "completed" and drive(manager, second) == "completed"

    trials = [sorted((r.trial, tuple(sorted(r.settings.items()))) for r in report(manager, s).rows) for s in (first, second)]
    assert trials[0] == trials[1] and len(trials[0]) == 2
    assert trials[0][0] != trials[0][1]

    r = report(manager, first)
    assert all(row.status == "completed" and row.value is not None for row in r.rows)
    runs = {row.run_id for row in r.rows}
    assert {rec.id for rec in manager.store.list() if rec.sweep == first} == runs
    scored = []
    for run_id in runs:
        events, _ = read_events(manager.run_dir(run_id))
        tests = [e for e in events if e["kind"] == "eval" and e["split"] == "test"]
        metrics = json.loads((manager.run_dir(run_id) / "metrics.json").read_text())
        assert ("test" in metrics) == bool(tests)
        scored += [run_id] * len(tests)
    assert scored == [r.best.run_id]  # once, for the best trial
    assert r.test and "accuracy" in r.test
    best_value = max(row.value for row in r.rows)
    assert r.best.value == best_value
    # What it was expected to take is kept beside what it took.
    assert r.estimate and 0 < r.estimate["low_s"] < r.estimate["expected_s"] < r.estimate["high_s"]
    assert r.elapsed_s and r.elapsed_s > 0


def test_a_pruned_trial_is_stopped_and_reads_pruned(manager, base):
    config = RunConfig.from_dict({**base, "training": {**base["training"], "epochs": 4, "metric": "loss"}})
    sweep_id = create_sweep(manager, config, trials=2, space={"training.learning_rate": {"choices": [3e-3, 1e-7]}},
                            pruner="halving", env={"STUDIO_STEP_DELAY": "0.15"})
    study = studies.load(manager.workspace, sweep_id)
    study.enqueue_trial({"training.learning_rate": 3e-3})  # a good trial first, then a hopeless one
    study.enqueue_trial({"training.learning_rate": 1e-7})
    assert drive(manager, sweep_id) == "completed"

    rows = {row.trial: row for row in report(manager, sweep_id).rows}
    assert rows[0].status == "completed" and rows[1].status == "pruned"
    pruned = manager.store.get(rows[1].run_id)
    assert pruned.status == "pruned"
    folder = manager.run_dir(pruned.id)
    statuses = [e["status"] for e in read_events(folder)[0] if e["kind"] == "status"]
    assert statuses[-2:] == ["cancelled", "pruned"] and "failed" not in statuses
    assert not (folder / "model").exists() and not (folder / "metrics.json").exists()  # stopped before the end
    assert manager.checkpoint(pruned.id) is not None  # a cancelled run's checkpoint, as any cancel leaves


def test_a_killed_driver_is_continued_and_no_trial_runs_twice(tmp_path, workspace, base):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(base), encoding="utf-8")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE), encoding="utf-8")
    env = {**os.environ, "STUDIO_STEP_DELAY": "0.1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "studio", "--workspace", str(workspace.root), "sweep"]
    # Its output goes to a file: a pipe nobody reads fills up and blocks the driver mid-sweep.
    log = tmp_path / "driver.log"
    with open(log, "wb") as out:
        driver = subprocess.Popen(command + [str(config), "--trials", "3", "--space", str(space), "--pruner", "none"],
                                  env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        from studio.jobs.store import RunStore

        store = RunStore.for_workspace(workspace)
        deadline = time.time() + 240
        # Kill it once the second trial is under way (read from the run index: the driver alone
        # writes the study while this waits).
        while time.time() < deadline:
            if len([r for r in store.list() if r.sweep]) >= 2:
                break
            if driver.poll() is not None:
                raise AssertionError(f"the driver ended early ({driver.returncode}):\n" + log.read_text(errors="replace")[-3000:])
            time.sleep(0.5)
        else:
            raise AssertionError("the second trial never started:\n" + log.read_text(errors="replace")[-3000:])
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
    finally:
        if driver.poll() is None:
            driver.kill()
    sweep_id = studies.sweep_ids(workspace)[0]
    resumed = subprocess.run(command + ["resume", sweep_id, "--quiet"], env=env, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    manager = JobManager(workspace, supervise=False)
    r = report(manager, sweep_id)
    assert r.status == "completed" and sorted(row.trial for row in r.rows) == [0, 1, 2]
    assert all(row.status == "completed" for row in r.rows), r.rows
    runs = [rec for rec in manager.store.list() if rec.sweep == sweep_id]
    assert len(runs) == 3 and {rec.id for rec in runs} == {row.run_id for row in r.rows}
    assert len({tuple(sorted(row.settings.items())) for row in r.rows}) == 3
    assert "best: trial" in resumed.stdout


def test_cancelling_a_sweep_can_stop_its_running_trial(manager, base):
    """The user's choice "stop the running ones" (letting them finish is the default: a running trial
    is followed to its end as ever); a stopped trial counts as failed."""
    config = RunConfig.from_dict({**base, "training": {**base["training"], "epochs": 1}})
    sweep_id = create_sweep(manager, config, trials=3, space=SPACE, parallel=2, pruner="none", env={"STUDIO_STEP_DELAY": "0.3"})
    driver = SweepDriver(manager, sweep_id)
    deadline = time.time() + 120
    while time.time() < deadline:  # one slot: trial 0 trains, trial 1 waits in the queue
        driver.tick()
        runs = [row.run_id for row in sorted(report(manager, sweep_id).rows, key=lambda row: row.trial)]
        if len(runs) == 2 and manager.get(runs[0]).status == "running":
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"trial 0 never started: {report(manager, sweep_id)}")
    assert manager.get(runs[1]).status == "queued"

    assert cancel_sweep(manager, sweep_id, stop_running=True) == 2
    assert drive(manager, sweep_id) == "cancelled"
    rows = {row.trial: row for row in report(manager, sweep_id).rows}
    assert sorted(rows) == [0, 1]  # no trial started after the cancel
    assert rows[1].status == "cancelled"
    assert rows[0].status == "cancelled"
    trial = studies.load(manager.workspace, sweep_id).trials[0]
    assert trial.state == TrialState.FAIL
