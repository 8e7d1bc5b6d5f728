"""The Train tab's live view as open pages see it: a tick answers only what changed since that
page's last answer, and the pages' ticks are spread out when more pages are open than the
machine's budget of asks covers, so watching a run does not slow the run."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

gr = pytest.importorskip("gradio")

from studio.ui import live  # noqa: E402

# The Train tab's live view answers a dict keyed by component; a component left out is not updated.
WATCH, STATUS, PROGRESS, LOSS, METRIC, LR, SPEED, LOG, CANCEL, RESUME, TIMER = (
    "watch", "run-status", "run-progress", "loss-chart", "metric-chart", "lr-chart", "throughput-chart", "run-log",
    "train-cancel", "train-resume", "timer")
VIEW = (STATUS, PROGRESS, LOSS, METRIC, LR, SPEED, LOG, CANCEL, RESUME, TIMER)
SKIPPED = {"__type__": "update"}


def named(answer) -> dict:
    """A handler's answer by the name of each component it updates (its elem_id; the watch state
    and the timer have none): what is missing is not updated. A single skip updates nothing."""
    if answer == SKIPPED:
        return {}
    assert isinstance(answer, dict), answer
    out = {}
    for component, value in answer.items():
        name = component.elem_id or {"State": WATCH, "Timer": TIMER, "BrowserState": "remembered"}.get(type(component).__name__)
        assert name and name not in out, component
        out[name] = value
    return out


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_page_ticks_every_second_and_many_share_the_budget():
    clock = Clock()
    watchers = live.Watchers(cores=2, clock=clock)
    assert watchers.tick("page-1") == live.TICK_S
    ticks = [watchers.tick(f"page-{n}") for n in range(2, 9)]
    assert ticks[0] == live.TICK_S and ticks[-1] == 8 / (2 * live.ASKS_PER_CORE_S)  # eight pages on two cores
    assert ticks == sorted(ticks)  # each page that opens spreads the ticks further
    for n in range(9, 60):
        watchers.tick(f"page-{n}")
    assert watchers.tick("page-1") == live.MAX_TICK_S  # never slower than this: the charts stay live
    # The pages close but one; it keeps asking, and once the others are due twice over, it speeds up again.
    clock.now += 2 * live.MAX_TICK_S + live.TICK_S + 0.1
    assert watchers.tick("page-1") == live.TICK_S and watchers.pages == 1


def test_a_bigger_machine_ticks_every_second_for_more_pages():
    small, big = live.Watchers(cores=2, clock=Clock()), live.Watchers(cores=16, clock=Clock())
    for n in range(12):
        small_tick, big_tick = small.tick(f"p{n}"), big.tick(f"p{n}")
    assert big_tick == live.TICK_S < small_tick


@pytest.fixture
def services(tmp_path, monkeypatch):
    """Services on a job manager that starts nothing: the watched run stays queued while the
    test writes its events as a worker would."""
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "0")
    monkeypatch.setattr(live, "machine_cores", lambda: 2)
    from studio.jobs.manager import JobManager
    from studio.jobs.store import RunRecord
    from studio.ui.model_cache import ModelCache
    from studio.ui.services import Services
    from studio.workspace import Workspace

    ws = Workspace.at(tmp_path / "ws")
    made = Services(workspace=ws, jobs=JobManager(ws, supervise=False, allowed_model_roots=[]), models=ModelCache())
    run_dir = ws.runs / "run-a"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("name: x\ntask:\n  name: classification\n")
    made.jobs.store.insert(RunRecord(id="run-a", run_dir=str(run_dir), created=time.time()))
    yield made
    made.jobs.shutdown()


def endpoint(app, name: str):
    return next(dep.fn for dep in app.fns.values() if dep.api_name == name)


def page(n: int) -> SimpleNamespace:
    return SimpleNamespace(username=None, session_hash=f"page-{n}")


def test_a_tick_answers_only_what_changed_since_the_pages_last_answer(services):
    from studio.runs.event_types import Log, Progress
    from studio.runs.events import append_event
    from studio.ui.app import build_app

    app = build_app(services)
    attach, poll = endpoint(app, "train_attach"), endpoint(app, "train_poll")
    run_dir = services.jobs.run_dir("run-a")
    answer = named(attach("run-a", None, request=page(1)))
    assert "run-a" in answer[STATUS] and all(name in answer for name in VIEW)
    watch = answer[WATCH]

    answer = named(poll(watch, request=page(1)))
    assert not any(name in answer for name in VIEW)  # nothing new: nothing sent

    append_event(run_dir, Progress(step=3, total=40, epoch=0.1, steps_per_s=2.5))
    answer = named(poll(answer[WATCH], request=page(1)))
    assert "3 / 40" in answer[PROGRESS] and SPEED in answer  # the step moved, a throughput point
    assert not any(name in answer for name in (STATUS, LOSS, METRIC, LR, LOG, CANCEL, RESUME, TIMER))

    append_event(run_dir, Log(step=3, values={"loss": 0.69, "learning_rate": 1e-4}))
    answer = named(poll(answer[WATCH], request=page(1)))
    assert LOSS in answer and LR in answer and "0.6900" in answer[LOG]
    assert not any(name in answer for name in (PROGRESS, METRIC, SPEED))

    # A second page reading the same events gets the same drawing, not a new one.
    other = named(attach("run-a", None, request=page(2)))
    assert other[LOSS] is answer[LOSS]


def test_many_open_pages_are_told_to_tick_less_often(services):
    from studio.ui.app import build_app

    app = build_app(services)
    attach, poll = endpoint(app, "train_attach"), endpoint(app, "train_poll")
    watches = {n: named(attach("run-a", None, request=page(n)))[WATCH] for n in range(1, 21)}
    answer = named(poll(watches[1], request=page(1)))
    timer = answer[TIMER]
    assert timer.value == 20 / (2 * live.ASKS_PER_CORE_S) and timer.active


def test_pages_asking_within_a_moment_share_one_read_of_the_run(services, monkeypatch):
    reads = []
    real = services.jobs.store.get
    monkeypatch.setattr(services.jobs.store, "get", lambda run_id: reads.append(run_id) or real(run_id))
    first = services.jobs.get_recent("run-a", max_age_s=60)
    assert services.jobs.get_recent("run-a", max_age_s=60) is first and reads == ["run-a"]
    services.jobs.store.update("run-a", name="renamed")
    assert services.jobs.get_recent("run-a", max_age_s=0).name == "renamed" and len(reads) == 2


def test_an_answer_about_the_run_a_page_watched_before_its_latest_choice_is_dropped(services):
    from studio.jobs.store import RunRecord
    from studio.ui.app import build_app

    run_dir = services.workspace.runs / "run-b"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("name: y\ntask:\n  name: classification\n")
    services.jobs.store.insert(RunRecord(id="run-b", run_dir=str(run_dir), created=time.time() - 60))  # older than run-a
    app = build_app(services)
    attach, poll = endpoint(app, "train_attach"), endpoint(app, "train_poll")
    before = named(attach("run-a", None, request=page(1)))[WATCH]
    chosen = named(attach("run-b", None, request=page(1)))  # the page picks (or launches) another run
    # A tick that set out with the old watch must not put run-a back (the watch state included).
    assert named(poll(before, request=page(1))) == {}
    assert "run-b" in str(named(poll(chosen[WATCH], request=page(1)))[WATCH])
    # The page load's own pick, answered late, keeps the page's choice instead of the newest run.
    assert "run-b" in named(attach(None, None, request=page(1)))[STATUS]
    # Other pages are not affected by this page's choice.
    assert "run-a" in named(attach(None, "run-a", request=page(2)))[STATUS]


def test_the_charts_the_run_index_and_the_cli_read_a_run_alike(tmp_path, capsys):
    """The three readers of events.jsonl fold it with the same reducer: same status, step,
    total, scores and error, whatever each then shows."""
    from studio.cli import Follower
    from studio.jobs.store import record_from_dir
    from studio.runs.event_types import Error, Eval, Log, Memory, Phase, Progress, Settings, Status, Summary
    from studio.runs.events import append_event, read_events
    from studio.ui import charts

    run_dir = tmp_path / "run-x"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("name: x\ntask:\n  name: classification\n")
    for event in [
        Status(status="queued", owner="ana", gpus=1), Status(status="starting", pid=1),
        Log(step=0, message="no complete checkpoint; starting over"),
        Error(error_kind="oom", message="CUDA out of memory", hint="lower training.batch_size"),
        Status(status="failed", error_kind="oom"),
        Status(status="queued", resume=True), Status(status="starting", pid=2),  # resumed: a new attempt
        Settings(values={"device": "cpu", "precision": "fp32", "batch_size": 8}),
        Status(status="running", device="cpu", total_steps=8, trainable_parameters=100, train_examples=32),
        Progress(step=4, total=8, epoch=0.5, eta_s=2.0, steps_per_s=2.0, elapsed_s=2.0),
        Log(step=4, values={"loss": 0.6, "learning_rate": 1e-4}),
        Eval(split="validation", step=4, metrics={"loss": 0.5, "accuracy": 0.75}),
        Progress(step=8, total=8, epoch=1.0, eta_s=0.0, steps_per_s=2.0, elapsed_s=4.0),
        Summary(step=8, values={"train_runtime": 4.0}),
        Memory(step=8, peak_gib=0.5, estimated_gib=0.47, measured="process_above_start"),
        Log(step=8, message="scoring the test split"),
        Phase(phase="scoring", split="test", done=0, total=10, eta_s=None, elapsed_s=0.0),
        Phase(phase="scoring", split="test", done=10, total=10, eta_s=0.0, elapsed_s=0.5),
        Eval(split="test", step=8, metrics={"loss": 0.4, "accuracy": 0.9}),
        Status(status="completed", step=8, headline={"accuracy": 0.9}),
    ]:
        append_event(run_dir, event)

    record = record_from_dir(run_dir)
    series = charts.RunSeries("run-x")
    series.feed(read_events(run_dir)[0])
    follower = Follower(run_dir, quiet=True)
    assert follower.poll() and not follower.poll()  # all of it at once, then nothing new
    cli = follower.state
    follower.close()

    assert record.status == series.status == cli.status == "completed"
    assert series.state.phase is None and cli.phase is None  # the scoring is over with the run
    assert any("scoring the test split" in line for line in series.log)  # a phase is progress, not a line
    assert record.step == series.step == cli.step == 8
    assert record.total_steps == series.total == cli.total_steps == 8
    assert record.attempts == cli.attempts == 2
    assert (record.metric_name, record.metric_value) == ("accuracy", 0.9) == (cli.metric_name, cli.metric_value)
    assert series.final["test"] == cli.final["test"] == {"accuracy": 0.9}
    # The first attempt's error belongs to it: no reader shows it for the run that then completed.
    assert record.error_kind is None and series.error is None and cli.error is None
    assert series.train_loss == [(4, 0.6)] and series.eval_metrics == {"accuracy": [(4, 0.75)]}
    out = capsys.readouterr()
    assert "test @ step 8: loss=0.4000, accuracy=0.9000" in out.out and "error (oom): CUDA out of memory" in out.err
    assert any("CUDA out of memory" in line for line in series.log)  # the page's log keeps the whole story


def test_the_cli_shows_the_scoring_of_a_split_with_its_own_bar_and_eta(tmp_path, capsys):
    from studio.cli import Follower
    from studio.runs.event_types import Phase, Progress, Status
    from studio.runs.events import append_event

    run_dir = tmp_path / "run-y"
    run_dir.mkdir()
    follower = Follower(run_dir)
    for event in [Status(status="starting", pid=1), Status(status="running", device="cpu", total_steps=75,
                                                              trainable_parameters=10, train_examples=300),
                  Progress(step=75, total=75, epoch=1.0, eta_s=0.0),
                  Phase(phase="scoring", split="test", done=120, total=300, eta_s=95.0, elapsed_s=60.0)]:
        append_event(run_dir, event)
    follower.poll()
    assert follower.state.phase.done == 120
    append_event(run_dir, Status(status="cancelling", step=75))
    follower.poll()
    follower.close()
    shown = capsys.readouterr()
    assert "scoring test split 120/300" in shown.err and "ETA 01:35" in shown.err
    assert "75/75" in shown.err  # the training's bar came first
    assert "cancelling at step 75: saving a checkpoint, then stopping" in shown.out


def test_after_training_the_progress_shows_the_scoring_of_a_split(services):
    from studio.runs.event_types import Phase, Progress, Status
    from studio.runs.events import append_event
    from studio.ui.app import build_app

    app = build_app(services)
    attach, poll = endpoint(app, "train_attach"), endpoint(app, "train_poll")
    run_dir = services.jobs.run_dir("run-a")
    services.jobs.store.update("run-a", status="running", started=time.time())  # a worker just spawned
    for event in [Status(status="starting", pid=1), Status(status="running", device="cpu", total_steps=75),
                  Progress(step=75, total=75, epoch=1.0, eta_s=0.0),
                  Phase(phase="evaluating", split="validation", done=5, total=10, eta_s=1.0)]:
        append_event(run_dir, event)
    answer = named(attach("run-a", None, request=page(1)))
    assert "75 / 75 steps" in answer[PROGRESS]  # an evaluation while training: the steps stay shown
    append_event(run_dir, Phase(phase="scoring", split="test", done=120, total=300, eta_s=95.0, elapsed_s=60.0))
    answer = named(poll(answer[WATCH], request=page(1)))
    assert "scoring test split 120/300 · ETA 1m 35s" in answer[PROGRESS] and 'data-share="0.400"' in answer[PROGRESS]
    assert "steps" not in answer[PROGRESS]
    append_event(run_dir, Phase(phase="scoring", split="test", part="predictions", done=3, total=300, eta_s=None))
    answer = named(poll(answer[WATCH], request=page(1)))
    assert "scoring test split (predictions) 3/300" in answer[PROGRESS] and "ETA" not in answer[PROGRESS]


def test_a_cancelling_run_says_so_and_cannot_be_cancelled_again(services):
    from studio.runs.event_types import Status
    from studio.runs.events import append_event
    from studio.ui.app import build_app

    app = build_app(services)
    attach, poll = endpoint(app, "train_attach"), endpoint(app, "train_poll")
    run_dir = services.jobs.run_dir("run-a")
    services.jobs.store.update("run-a", status="running", started=time.time())  # a worker just spawned
    append_event(run_dir, Status(status="running", device="cpu", total_steps=75))
    answer = named(attach("run-a", None, request=page(1)))
    assert answer[CANCEL]["interactive"] is True and "saving a checkpoint" not in answer[STATUS]
    services.jobs.store.update("run-a", status="cancelling", started=time.time())
    append_event(run_dir, Status(status="cancelling", step=10))
    answer = named(poll(answer[WATCH], request=page(1)))
    assert "<b>cancelling</b> · saving a checkpoint, then stopping" in answer[STATUS]
    assert answer[CANCEL]["interactive"] is False and TIMER not in answer  # still watched until it stops


@pytest.mark.parametrize("events, metrics, split", [
    ([{"kind": "eval", "split": "validation", "metrics": {"accuracy": 0.8}},
      {"kind": "eval", "split": "test", "metrics": {"accuracy": 0.9}}], None, "test"),
    ([{"kind": "eval", "split": "validation", "metrics": {"accuracy": 0.9}}], None, "validation"),
    ([], {"validation": {"accuracy": 0.9}}, "validation"),  # no events: the run's metrics.json says
    ([], {"test": {"accuracy": 0.9}, "validation": {"accuracy": 0.8}}, "test"),
])
def test_the_headline_score_names_its_split(services, events, metrics, split):
    import json

    from studio.runs.event_types import parse
    from studio.runs.events import append_event
    from studio.ui.app import build_app

    run_dir = services.jobs.run_dir("run-a")
    for event in [{"kind": "status", "status": "starting"}, {"kind": "status", "status": "running"},
                  {"kind": "summary", "step": 8}, *events,  # training is over: the final model is scored
                  {"kind": "status", "status": "completed", "headline": {"accuracy": 0.9}}]:
        append_event(run_dir, parse(event))
    if metrics:
        (run_dir / "metrics.json").write_text(json.dumps({"headline": {"name": "accuracy"}, **metrics}))
    services.jobs.store.update("run-a", status="completed", metric_name="accuracy", metric_value=0.9)
    app = build_app(services)
    answer = named(endpoint(app, "train_attach")("run-a", None, request=page(1)))
    assert f" · {split} accuracy 0.9000" in answer[STATUS]


def test_gpu_only_settings_show_only_for_a_run_on_a_gpu(services, monkeypatch):
    from studio.ui import train_tab
    from studio.ui.app import build_app

    def shown(app) -> dict[str, bool]:
        config = app.get_config_file()
        return {c["props"]["elem_id"]: c["props"].get("visible") for c in config["components"]
                if c.get("props", {}).get("elem_id") in ("train-adv-training-liger", "train-adv-training-tf32",
                                                         "train-adv-training-seed", "train-gpu-only-note")}

    # No GPU (this machine, the fixture's services): hidden from the start, with a note why.
    assert shown(build_app(services)) == {"train-adv-training-seed": True, "train-adv-training-tf32": False,
                                          "train-adv-training-liger": False, "train-gpu-only-note": True}
    assert train_tab.gpu_settings_apply(["0"], "auto") and train_tab.gpu_settings_apply(["0"], "cuda")
    assert not train_tab.gpu_settings_apply(["0"], "cpu") and not train_tab.gpu_settings_apply([], "auto")

    from studio.jobs.devices import DevicePool

    monkeypatch.setattr(services.jobs, "devices", DevicePool(("0",), 1))
    app = build_app(services)
    assert shown(app) == {"train-adv-training-seed": True, "train-adv-training-tf32": True,
                          "train-adv-training-liger": True, "train-gpu-only-note": False}
    device_fn = next(dep.fn for dep in app.fns.values() if getattr(dep.fn, "__name__", "") == "device_fn")
    *inputs, note = device_fn("cpu")
    assert len(inputs) == len(train_tab.GPU_ONLY) and all(u["visible"] is False for u in inputs) and note["visible"]
    *inputs, note = device_fn("auto")
    assert all(u["visible"] is True for u in inputs) and note["visible"] is False


def test_the_estimate_has_no_empty_part():
    from types import SimpleNamespace

    from studio.config import RunConfig
    from studio.ui.train_tab import plan_md

    config = RunConfig.from_dict({"task": {"name": "classification"}, "model": {"backbone": "x"},
                                  "training": {"preset": "quick", "epochs": 1, "learning_rate": 5e-5}})
    plan = SimpleNamespace(config=config, memory_from_size=False, memory_gib=1.0, device="cpu", gpus=0, batch_size=8,
                           seq_len=128, memory_range=(0.8, 1.2), trainable=1000, steps=40, evaluations=4,
                           seconds_range=(30.0, 50.0), calibrated=None, checkpointing_needed=False, expected_epochs=None,
                           memory_unchecked_gib=None, coverage=None)
    text = plan_md(plan, None)
    assert "max length 128): about **" in text and ": ·" not in text and "·  ·" not in text
