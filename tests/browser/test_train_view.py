"""The Train tab's live view in a real browser, on a run the test writes as a worker would (its
events, a stand-in process for its worker), so each state is shown on cue without training: the
scoring of a split after training with its own bar and ETA, a run that is cancelling, the split of
the headline score, the log following its newest line; and the form: no GPU-only settings for a
run on the CPU, an estimate without an empty part."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import shot  # noqa: E402
from tests.browser.ui import choose, open_accordion, tab, wait_until  # noqa: E402


class PlantedRun:
    """A run in the server's workspace whose 'worker' is a process that only waits: the server
    takes it as alive (its command line names the run), and the test writes the run's events."""

    def __init__(self, workspace, run_id: str, name: str):
        import psutil

        from studio.jobs.manager import JobManager
        from studio.jobs.store import RunRecord

        self.run_id = run_id
        self.manager = JobManager(workspace, supervise=False)
        self.run_dir = self.manager.workspace.runs / run_id
        self.run_dir.mkdir(parents=True)
        (self.run_dir / "config.yaml").write_text(f"name: {name}\ntask:\n  name: classification\n")
        self.worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "studio.worker", run_id])
        started = psutil.Process(self.worker.pid).create_time()
        now = time.time()
        self.manager.store.insert(RunRecord(id=run_id, run_dir=str(self.run_dir), status="running", name=name,
                                            task="classification", created=now, started=now, pid=self.worker.pid,
                                            pid_started=started, devices=["cpu0"]))

    def write(self, *events) -> None:
        from studio.runs.events import append_event

        for event in events:
            append_event(self.run_dir, event)

    def end(self) -> None:
        if self.worker.poll() is None:
            self.worker.kill()
            self.worker.wait(10)

    def close(self) -> None:
        self.end()
        self.manager.shutdown()


@pytest.fixture
def planted(server):
    runs: list[PlantedRun] = []

    def plant(run_id: str, name: str) -> PlantedRun:
        run = PlantedRun(server["workspace"], run_id, name)
        runs.append(run)
        return run

    yield plant
    for run in runs:
        run.close()


def started(run: PlantedRun, total: int = 75) -> None:
    from studio.runs.event_types import Progress, Status

    run.write(Status(status="starting", pid=run.worker.pid),
              Status(status="running", device="cpu", total_steps=total, train_examples=300),
              Progress(step=total, total=total, epoch=1.0, eta_s=0.0, steps_per_s=2.0, elapsed_s=30.0))


def test_the_scoring_after_training_then_cancelling_then_the_scores_split(page, server, planted):
    from studio.runs.event_types import Eval, Phase, Status, Summary

    run = planted("20260102-000000-scoring-00000001", "scoring-run")
    started(run)
    run.write(Summary(step=75, values={"train_runtime": 30.0}),
              Phase(phase="scoring", split="test", done=120, total=300, eta_s=95.0, elapsed_s=60.0))
    page.reload()  # the page attaches to the newest active run: this one
    tab(page, "Train")
    expect(page.locator("#run-status")).to_contain_text("scoring-run", timeout=30_000)
    progress = page.locator("#run-progress")
    expect(progress).to_contain_text("scoring test split 120/300 · ETA 1m 35s")
    expect(progress).not_to_contain_text("steps")
    assert page.locator("#run-progress-bar .bar").get_attribute("style") == "width:40.0%"
    shot(page, "train-view-01-scoring")

    run.write(Phase(phase="scoring", split="test", part="predictions", done=240, total=300, eta_s=20.0))
    expect(progress).to_contain_text("scoring test split (predictions) 240/300 · ETA 20s")

    # Cancel: the run says it is saving a checkpoint, and is not offered a second cancel.
    expect(page.locator("#train-cancel")).to_be_enabled()
    page.locator("#train-cancel").click()
    status = page.locator("#run-status")
    expect(status).to_contain_text("cancelling · saving a checkpoint, then stopping")
    expect(page.locator("#train-cancel")).to_be_disabled()
    expect(page.locator("#train-resume")).to_be_disabled()
    shot(page, "train-view-02-cancelling")

    # The worker finished its scoring before it stopped: the headline is the test split's, and says so.
    (run.run_dir / "metrics.json").write_text(json.dumps({"headline": {"name": "accuracy", "greater_is_better": True},
                                                          "test": {"accuracy": 0.9}}))
    run.write(Eval(split="test", step=75, metrics={"loss": 0.3, "accuracy": 0.9}),
              Status(status="completed", step=75, headline={"accuracy": 0.9}))
    run.end()
    expect(status).to_contain_text("completed", timeout=30_000)
    expect(status).to_contain_text("test accuracy 0.9000")
    expect(status).not_to_contain_text("saving a checkpoint")
    expect(progress).to_contain_text("done")
    shot(page, "train-view-03-completed")


def test_the_log_follows_its_newest_line_unless_the_reader_scrolls_up(page, server, planted):
    from studio.runs.event_types import Log

    run = planted("20260102-000000-logging-00000002", "logging-run")
    started(run, total=200)
    page.reload()
    tab(page, "Train")
    expect(page.locator("#run-status")).to_contain_text("logging-run", timeout=30_000)
    box = page.locator("#run-log textarea")

    def at_bottom() -> bool:
        return box.evaluate("el => el.scrollTop + el.clientHeight >= el.scrollHeight - 2")

    for step in range(1, 41):
        run.write(Log(step=step, message=f"line {step} of the worker's output"))
        if step % 8 == 0:
            wait_until(lambda s=step: f"line {s} of" in box.input_value(), timeout=20, what=f"log line {step}")
            wait_until(at_bottom, timeout=5, what=f"the log scrolled to line {step}")
    assert box.evaluate("el => el.scrollHeight > 2 * el.clientHeight")  # far more lines than the box shows
    shot(page, "train-view-04-log-follows")

    # A reader who scrolled up to read stays there while lines come in; back at the bottom, it follows again.
    box.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    run.write(*[Log(step=40 + i, message=f"later line {i}") for i in range(1, 4)])
    wait_until(lambda: "later line 3" in box.input_value(), timeout=20, what="later lines")
    page.wait_for_timeout(500)
    assert box.evaluate("el => el.scrollTop") == 0
    box.evaluate("el => { el.scrollTop = el.scrollHeight; el.dispatchEvent(new Event('scroll')); }")
    run.write(Log(step=50, message="last line"))
    wait_until(lambda: "last line" in box.input_value(), timeout=20, what="the last line")
    wait_until(at_bottom, timeout=5, what="the log following again")


def test_a_cpu_run_is_not_offered_gpu_settings_and_the_estimate_has_no_empty_part(page, server):
    from studio.demo import DATASET, seed_dataset
    from studio.jobs.devices import visible_gpus
    from studio.workspace import Workspace

    if visible_gpus():
        pytest.skip("this machine has a GPU: the GPU-only settings are offered")
    seed_dataset(Workspace.at(server["workspace"]))
    page.reload()
    tab(page, "Train")
    choose(page, "train-data", DATASET)
    choose(page, "train-backbone", "tiny-bert · local folder")
    estimate = page.locator("#train-estimate")
    expect(estimate).to_contain_text("Estimate (CPU", timeout=30_000)
    expect(estimate).to_contain_text("of memory")
    text = estimate.inner_text()
    assert ": ·" not in text and "· ·" not in text, text

    open_accordion(page, "train-advanced", "Advanced")
    expect(page.locator("#train-adv-training-batch_size")).to_be_visible()
    for key in ("tf32", "batch_tokens", "packing", "liger", "compile"):
        expect(page.locator(f"#train-adv-training-{key}")).to_be_hidden()
    note = page.locator("#train-gpu-only-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("Settings that act only on a GPU (tf32, batch_tokens, packing, liger, compile) are hidden")
    note.scroll_into_view_if_needed()
    shot(page, "train-view-05-cpu-settings")
