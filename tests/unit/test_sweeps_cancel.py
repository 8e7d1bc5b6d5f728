"""Cancelling in a sweep, without training (a job manager that queues but starts nothing): a trial
its user cancelled counts as failed for Optuna, is not asked again and uses up its place in the
budget; cancelling the sweep cancels its queued trials, and its running ones only when asked."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState

from studio.config import RunConfig
from studio.jobs.manager import JobManager
from studio.sweeps import study as studies
from studio.sweeps.driver import SweepDriver, cancel_sweep, create_sweep
from tests.conftest import toy_sentiment_rows, write_csv

SPACE = {"training.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}}


@pytest.fixture
def manager(workspace):
    return JobManager(workspace, supervise=False)  # runs stay queued unless a test says otherwise


@pytest.fixture
def config(tmp_path, tiny_encoder) -> RunConfig:
    train = write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(60))
    return RunConfig.from_dict({"name": "toy", "data": {"train": str(train)}, "model": {"backbone": str(tiny_encoder)}})


def states(manager, sweep_id) -> list[TrialState]:
    return [t.state for t in studies.load(manager.workspace, sweep_id).get_trials(deepcopy=False)]


def run_of(manager, sweep_id, number: int) -> str:
    return studies.load(manager.workspace, sweep_id).trials[number].user_attrs["run_id"]


def test_a_trial_cancelled_by_its_user_fails_and_is_not_asked_again(manager, config):
    sweep_id = create_sweep(manager, config, trials=2, space=SPACE, pruner="none")
    driver = SweepDriver(manager, sweep_id)
    driver.tick()
    assert states(manager, sweep_id) == [TrialState.RUNNING]
    manager.cancel(run_of(manager, sweep_id, 0))  # the user cancels the queued trial in the Runs tab

    driver.tick()
    assert states(manager, sweep_id) == [TrialState.FAIL, TrialState.RUNNING]  # failed, and the next trial asked
    manager.cancel(run_of(manager, sweep_id, 1))
    for _ in range(3):
        status, done = driver.tick()
    # Two trials asked, two failed: the budget is spent, nothing is asked again and nothing completed.
    assert states(manager, sweep_id) == [TrialState.FAIL, TrialState.FAIL]
    assert done and status == studies.COMPLETED
    assert len([r for r in manager.store.list() if r.sweep == sweep_id]) == 2


def test_cancelling_a_sweep_cancels_its_queued_trials_and_asks_no_more(manager, config):
    sweep_id = create_sweep(manager, config, trials=4, space=SPACE, parallel=2, pruner="none")
    driver = SweepDriver(manager, sweep_id)
    driver.tick()
    queued = [run_of(manager, sweep_id, n) for n in (0, 1)]

    assert cancel_sweep(manager, sweep_id) == 2
    assert [manager.store.get(run_id).status for run_id in queued] == ["cancelled", "cancelled"]
    status, done = driver.tick()
    assert status == studies.CANCELLED and done
    assert states(manager, sweep_id) == [TrialState.FAIL, TrialState.FAIL]  # and no new trial


def test_a_sweep_deleted_while_its_page_reads_it_is_reported_as_gone(manager, config, monkeypatch):
    import optuna

    from studio.errors import StudioError
    from studio.sweeps import report

    sweep_id = create_sweep(manager, config, trials=2, space=SPACE, pruner="none")
    load = studies.load

    def load_then_delete(workspace, name, *args, **kwargs):
        study = load(workspace, name, *args, **kwargs)
        optuna.delete_study(study_name=name, storage=studies.storage(workspace))  # as a delete from another page
        return study

    monkeypatch.setattr(studies, "load", load_then_delete)
    for read in (report.report, report.figures):
        with pytest.raises(StudioError, match=f"no sweep '{sweep_id}'"):
            read(manager, sweep_id)
        sweep_id = create_sweep(manager, config, trials=2, space=SPACE, pruner="none")
