"""A sweep's estimate: the single run's plan with the searched epochs, early stopping and the
pruner's early stops."""

from types import SimpleNamespace

import pytest

from studio.sweeps.plan import MEDIAN_PRUNED_SHARE, epoch_share, evaluations_run, sweep_estimate, waves


def plan(epochs=4, evaluations=16, startup=20.0, train=160.0, pass_s=2.0, expected_epochs=None, max_steps=None):
    """A plan as ``studio.planning`` makes it: its parts are what is expected (early stopping counted)."""
    trained = expected_epochs / epochs if expected_epochs else 1.0
    evaluation = evaluations * trained * pass_s + 2 * pass_s  # during training, then validation and test
    seconds = startup + train * trained + evaluation
    ceiling = startup + train + evaluations * pass_s + 2 * pass_s
    return SimpleNamespace(seconds=seconds, seconds_range=(0.8 * seconds, 1.3 * seconds), evaluations=evaluations,
                           expected_epochs=expected_epochs, ceiling_seconds=ceiling, validation_pass_s=pass_s,
                           parts={"startup": startup, "train": train * trained, "evaluation": evaluation},
                           config=SimpleNamespace(training=SimpleNamespace(epochs=epochs, max_steps=max_steps)))


def test_searched_epochs_and_early_stopping_set_the_mean_trial():
    assert epoch_share({"training.epochs": {"low": 2, "high": 4, "type": "int"}}, 4) == pytest.approx(0.75)
    assert epoch_share({"training.epochs": {"choices": [1, 3]}}, 4) == pytest.approx(0.5)
    assert epoch_share({"training.learning_rate": {"low": 1e-5, "high": 1e-3}}, 4) == 1.0
    assert epoch_share({"training.epochs": {"low": 2, "high": 4}}, None) == 1.0  # max_steps runs: epochs do not bound them
    # Early stopping near epoch 4 of 10: trials drawn between 5 and 10 epochs all stop there too.
    assert epoch_share({"training.epochs": {"low": 5, "high": 10, "type": "int"}}, 10, 4.0) == pytest.approx(1.0)
    assert epoch_share({"training.epochs": {"choices": [2, 6]}}, 10, 4.0) == pytest.approx((2 + 4) / 2 / 4)


def test_pruners_cut_the_evaluations_a_trial_runs():
    assert evaluations_run("none", 12, 12) == 12
    # The median pruner: the first two trials run all 12; of the other ten, most stop at about 2.5.
    stopped = MEDIAN_PRUNED_SHARE
    assert evaluations_run("median", 12, 12) == pytest.approx((2 * 12 + 10 * (stopped * 2.5 + (1 - stopped) * 12)) / 12)
    assert evaluations_run("median", 12, 2) == 12  # only startup trials: nothing is judged
    # Successive halving: two thirds stop at 2, two ninths at 6, two 27ths at 18, the rest run all 20.
    assert evaluations_run("halving", 20, 12) == pytest.approx(2 / 3 * 2 + 2 / 9 * 6 + 2 / 27 * 18 + 1 / 27 * 20)
    assert evaluations_run("halving", 1, 12) == 1  # a trial that evaluates once is never stopped


def test_the_estimate_sits_under_its_ceiling_and_parallel_trials_share_it():
    space = {"training.epochs": {"low": 2, "high": 4, "type": "int"}}
    pruned = sweep_estimate(plan(), space, trials=12, parallel=1, slots=1, pruner="median")
    unpruned = sweep_estimate(plan(), space, trials=12, parallel=1, slots=1, pruner="none")
    assert pruned.expected_s < unpruned.expected_s < unpruned.ceiling_s
    assert pruned.low_s < pruned.expected_s < pruned.high_s
    # Without searched epochs and without pruning each trial is the single run less its test split.
    whole = sweep_estimate(plan(), {}, trials=3, parallel=1, slots=1, pruner="none")
    assert whole.expected_s == pytest.approx(3 * (plan().seconds - 2.0) + 2.0)
    assert whole.ceiling_s == pytest.approx(3 * plan().seconds * 1.3 + 2.0)  # the upper end of the plan's spread
    # Two at once on two slots: half the time; on one slot, no faster.
    assert sweep_estimate(plan(), {}, 4, 2, 2, "none").expected_s == pytest.approx(
        sweep_estimate(plan(), {}, 4, 1, 1, "none").expected_s / 2, rel=0.05)
    assert sweep_estimate(plan(), {}, 4, 2, 1, "none").rounds == waves(4, 2, 1) == 4


def test_early_stopping_shortens_every_trial_as_it_shortens_the_single_run():
    stopping = plan(epochs=10, evaluations=40, expected_epochs=4.0)
    est = sweep_estimate(stopping, {}, trials=3, parallel=1, slots=1, pruner="none")
    assert est.expected_s == pytest.approx(3 * (stopping.seconds - 2.0) + 2.0)
    assert est.ceiling_s == pytest.approx(3 * stopping.ceiling_seconds * 1.3 + 2.0) and est.ceiling_s > 2 * est.high_s


def test_no_plan_time_no_estimate():
    assert sweep_estimate(None, {}, 12, 1, 1, "median") is None
    assert sweep_estimate(SimpleNamespace(seconds=None, parts={}), {}, 12, 1, 1, "median") is None
