"""A sweep started from the Train tab: the user picks "sweep", sees the settings it will search with
their ranges and the sweep's estimate, launches it, and lands in the Sweeps tab where the trials
appear and Optuna's plots fill; the Runs tab shows each trial's run with its sweep."""

from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import shot  # noqa: E402
from tests.browser.test_flows import set_up_training, upload_reviews  # noqa: E402
from tests.browser.ui import expect_no_traceback, fill, plot_points, radio, tab, wait_until  # noqa: E402


@pytest.fixture
def leaves_no_sweep(server):
    """The server and its workspace are shared with the other browser suites, which expect their own
    runs to be the newest: the sweep and its runs go when the test ends."""
    from studio.jobs.manager import JobManager
    from studio.sweeps import study as studies
    from studio.sweeps.driver import cancel_sweep
    from studio.workspace import Workspace

    ws = Workspace.at(server["workspace"])
    before = set(studies.sweep_ids(ws))
    yield
    manager = JobManager(ws, supervise=False)
    for sweep_id in set(studies.sweep_ids(ws)) - before:
        cancel_sweep(manager, sweep_id, stop_running=True)
        runs = [r.id for r in manager.list() if r.sweep == sweep_id]
        wait_until(lambda: not any(manager.get(run_id).status in ("queued", "starting", "running", "cancelling") for run_id in runs),
                   timeout=60, what="the sweep's runs to stop")
        studies.storage(ws).delete_study(studies.storage(ws).get_study_id_from_name(sweep_id))
        for run_id in runs:
            manager.delete(run_id)


def test_a_sweep_started_in_the_train_tab_shows_its_trials_and_plots(page, server, reviews_csv, leaves_no_sweep):
    upload_reviews(page, reviews_csv)
    set_up_training(page, server, name="swept", max_steps="6")  # six steps a trial: the sweep takes seconds
    expect(page.locator("#train-sweep")).to_be_hidden()
    radio(page, "train-mode", "a sweep")

    # The settings it would search, each with its range, all ticked; their ranges as YAML to edit.
    params = page.locator("#train-sweep-params")
    expect(params).to_contain_text("learning_rate:")
    expect(params).to_contain_text("log scale")
    expect(page.locator("#train-sweep-space")).to_contain_text("training.learning_rate")
    expect(page.locator("#train-launch")).to_be_hidden()
    # Only the learning rate: the others untick (and leave the YAML).
    for name in ("batch_size", "warmup", "weight_decay"):
        params.locator("label", has_text=f"{name}:").click()
    expect(page.locator("#train-sweep-space")).not_to_contain_text("training.warmup")
    fill(page, "train-sweep-trials", "3")
    expect(page.locator("#train-sweep-estimate")).to_contain_text("3 trials in 3 round(s)")
    shot(page, "sweep-train-tab")

    page.locator("#train-sweep-launch").click()
    expect(page.locator("#train-message")).to_contain_text("started: 3 trials")
    # The Sweeps tab shows the new sweep: its trials appear one after another (one CPU slot), and the
    # plots fill once the first is over. The rest is cancelled when the test ends (a trial takes a
    # worker's start and its steps: the whole sweep would take minutes on a busy machine).
    expect(page.locator("#sweeps-summary")).to_contain_text("0 of 3 trials over", timeout=30_000)
    expect(page.locator("#sweeps-table")).to_contain_text("swept-trial-0", timeout=60_000)
    expect(page.locator("#sweeps-summary")).to_contain_text("1 of 3 trials over", timeout=90_000)
    expect(page.locator("#sweeps-summary")).to_contain_text("best: trial 0")
    wait_until(lambda: plot_points(page, "sweeps-plot-history") >= 1, timeout=30, what="the optimisation history's points")
    expect(page.locator("#sweeps-plot-parallel .parcoords")).to_have_count(1)
    assert "training.learning" in page.locator("#sweeps-plot-parallel").inner_text()  # the searched setting's axis
    shot(page, "sweep-sweeps-tab")

    # Each trial is a run in the Runs tab, with its sweep.
    sweep_id = page.locator("#sweeps-pick input").first.input_value()
    assert sweep_id.startswith("sweep-")
    tab(page, "Runs")
    page.locator("#runs-refresh").click()
    table = page.locator("#runs-table")
    expect(table).to_contain_text("swept-trial-0")
    expect(table).to_contain_text(sweep_id)
    expect_no_traceback(page)
