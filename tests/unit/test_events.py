import json

import pytest

from studio.runs.event_types import (KINDS, Checkpoint, Error, Eval, Log, Memory, Phase, Progress, Settings, Status,
                                     Summary, Unknown, parse)
from studio.runs.events import EventLog, append_event, iter_events, read_events
from studio.runs.state import RunState, summarize

# One event of every kind, with every field a writer sets today.
EVERY_KIND = [
    Status(status="queued", owner="ana", gpus=1, resume=True, checkpoint="checkpoint-4"),
    Status(status="starting", pid=4242),
    Settings(values={"device": "cpu", "precision": "fp32", "batch_size": 16, "group_by_length": True}),
    Status(status="running", device="cpu", total_steps=8, parameters=1000, trainable_parameters=100, train_examples=32,
           train_tokens=900, torch_threads=2),
    Progress(step=0, total=8, epoch=0.0, eta_s=None),
    Log(step=1, values={"loss": 0.7, "grad_norm": 1.5, "learning_rate": 1e-4, "epoch": 0.25}),
    Progress(step=2, total=8, epoch=0.5, eta_s=3.5, steps_per_s=1.25, elapsed_s=1.6),
    Phase(phase="evaluating", split="validation", done=32, total=64, eta_s=0.4, elapsed_s=0.4),
    Eval(split="validation", step=4, epoch=1.0, metrics={"loss": 0.5, "accuracy": 0.75}),
    Checkpoint(step=4, path="checkpoints/checkpoint-4"),
    Summary(step=8, values={"train_runtime": 3.0, "train_loss": 0.6}),
    Memory(step=8, peak_gib=0.5, estimated_gib=0.47, measured="process_above_start"),
    Log(step=8, message="scoring the test split"),
    Phase(phase="scoring", split="test", part="predictions", done=0, total=10, eta_s=None, elapsed_s=0.0),
    Eval(split="test", step=8, metrics={"loss": 0.4, "accuracy": 0.9, "examples": 10}),
    Status(status="cancelling", step=8),
    Error(error_kind="internal", message="RuntimeError: boom", hint="see worker.log", log_tail=["a", "b"]),
    Status(status="failed", step=8, exit_code=2, reason="worker gone", error_kind="internal"),
    Status(status="completed", step=8, headline={"accuracy": 0.9}),
]


def test_every_kind_has_an_example():
    assert {type(e) for e in EVERY_KIND} == set(KINDS.values())


def test_every_kind_reads_back_as_written(tmp_path):
    log = EventLog(tmp_path)
    written = [log.write(event) for event in EVERY_KIND]
    log.close()
    assert all(e.t is not None for e in written)
    assert [event for _, _, event in iter_events(tmp_path)] == written
    # append_event writes the same lines as the worker's log.
    other = tmp_path / "other"
    other.mkdir()
    for event in EVERY_KIND:
        append_event(other, event)
    assert [event.fields() for _, _, event in iter_events(other)] == [e.fields() for e in EVERY_KIND]


def test_lines_keep_their_field_names(tmp_path):
    log = EventLog(tmp_path)
    log.write(Progress(step=0, total=8, epoch=0.0, eta_s=None))
    log.write(Log(step=1, values={"loss": 0.7, "learning_rate": 1e-4}))
    log.write(Settings(values={"device": "cpu", "batch_size": 16}))
    log.write(Status(status="cancelled"))
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [list(line) for line in lines] == [["t", "kind", "step", "total", "epoch", "eta_s"],
                                              ["t", "kind", "step", "loss", "learning_rate"],
                                              ["t", "kind", "device", "batch_size"],
                                              ["t", "kind", "status"]]
    assert lines[0]["eta_s"] is None  # written even before the rate is known


def test_a_kind_and_fields_are_read_as_that_kinds_event(tmp_path):
    append_event(tmp_path, "status", status="running", total_steps=24)
    [(_, _, event)] = list(iter_events(tmp_path))
    assert event == Status(t=event.t, status="running", total_steps=24)


def test_unknown_kinds_and_wrong_types_do_not_stop_a_reader(tmp_path):
    (tmp_path / "events.jsonl").write_text(
        '{"t": 1, "kind": "telemetry", "gpu_temp": 71}\n'
        '{"t": 2, "kind": "progress", "step": "three", "total": 8, "epoch": true, "eta_s": NaN}\n'
        '["not", "an", "object"]\n'
        '{"t": 3, "kind": "status", "status": "running", "total_steps": 8}\n')
    events = [event for _, _, event in iter_events(tmp_path)]
    assert events[0] == Unknown(t=1, name="telemetry", values={"gpu_temp": 71})
    assert events[1] == Progress(t=2, step=None, total=8, epoch=None, eta_s=None)
    state = summarize(tmp_path)
    assert state.status == "running" and state.total_steps == 8 and state.step is None
    assert [note.event for note in state.notes] == [events[2]]  # the unknown kind is skipped
    assert parse({"t": 4}) == Unknown(t=4, name="", values={})


def test_events_read_by_offset_and_only_complete_lines(tmp_path):
    log = EventLog(tmp_path)
    log.write(Status(status="running"))
    log.write(Log(step=1, values={"loss": 0.5}))
    events, offset = read_events(tmp_path)
    assert [e["kind"] for e in events] == ["status", "log"]
    assert events[1]["loss"] == 0.5 and "t" in events[0]
    # A half-written line is not returned until it is complete, to any reader.
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write('{"kind": "log", "step": 2')
    more, offset2 = read_events(tmp_path, offset)
    assert more == [] and offset2 == offset
    state = summarize(tmp_path)
    assert state.offset == offset and state.train_loss == [(1, 0.5)]
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write(', "loss": 0.4}\n')
    more, _ = read_events(tmp_path, offset2)
    assert more == [{"kind": "log", "step": 2, "loss": 0.4}]
    assert summarize(tmp_path, state).train_loss == [(1, 0.5), (2, 0.4)]


def test_a_line_cut_by_a_killed_worker_stays_apart_from_the_next(tmp_path):
    (tmp_path / "events.jsonl").write_text('{"kind": "status", "status": "starting"}\n{"kind": "log", "st')
    append_event(tmp_path, Status(status="interrupted", reason="worker gone"))
    assert summarize(tmp_path).status == "interrupted"


def test_non_finite_numbers_become_null(tmp_path):
    log = EventLog(tmp_path)
    log.write(Eval(split="validation", step=1, metrics={"r2": float("nan"), "loss": float("inf")}))
    line = (tmp_path / "events.jsonl").read_text().strip()
    assert json.loads(line)["metrics"] == {"r2": None, "loss": None}


def test_corrupt_line_is_skipped(tmp_path):
    (tmp_path / "events.jsonl").write_text('{"kind":"status","status":"running"}\nnot json\n{"kind":"status","status":"completed"}\n')
    assert summarize(tmp_path).status == "completed"


def test_missing_file_reads_empty(tmp_path):
    assert read_events(tmp_path / "nowhere") == ([], 0)
    assert summarize(tmp_path / "nowhere") == RunState()


def test_a_new_attempt_resets_what_belonged_to_the_last_but_keeps_the_charts(tmp_path):
    state = RunState()
    for event in [Status(status="starting", pid=1), Status(status="running", total_steps=10),
                  Log(step=2, values={"loss": 0.9}), Error(error_kind="oom", message="CUDA out of memory"),
                  Status(status="failed", error_kind="oom")]:
        state.apply(event)
    assert (state.error_kind, state.error_message, state.step, state.total_steps) == ("oom", "CUDA out of memory", 2, 10)
    state.apply(Status(status="starting", pid=2), at=500)
    assert state.error is None and state.error_kind is None and state.step is None and state.total_steps is None
    assert state.attempts == 2 and state.attempt_offset == 500 and state.worker_pid == 2
    assert state.train_loss == [(2, 0.9)]


@pytest.mark.parametrize("split,drawn", [("validation", True), ("test", False)])
def test_evaluations_while_training_are_drawn_and_final_scores_are_kept(split, drawn):
    state = RunState()
    state.apply(Status(status="running", total_steps=4))
    state.apply(Eval(split=split, step=2, metrics={"loss": 0.6, "accuracy": 0.75, "runtime": 0.1}))
    assert bool(state.eval_loss) is drawn and (state.eval_metrics == {"accuracy": [(2, 0.75)]}) is drawn
    assert (split in state.final) is not drawn
    state.apply(Summary(step=4, values={"train_runtime": 1.0}))
    state.apply(Eval(split="validation", step=4, metrics={"loss": 0.5, "accuracy": 0.8}))
    assert state.final["validation"] == {"accuracy": 0.8}  # after training: a final score, not a point


def test_phases_are_the_progress_of_work_outside_the_steps_and_end_with_the_attempt():
    state = RunState()
    state.apply(Status(status="running", total_steps=8))
    state.apply(Progress(step=4, total=8, epoch=0.5, eta_s=2.0))
    note = state.apply(Phase(phase="evaluating", split="validation", done=10, total=40, eta_s=3.0))
    assert note is None and state.noted == 1  # a progress, not a line of the log
    assert (state.phase.phase, state.phase.done, state.phase.total, state.phase.eta_s) == ("evaluating", 10, 40, 3.0)
    state.apply(Progress(step=5, total=8, epoch=0.6, eta_s=1.5))
    assert state.phase is None  # training steps again
    state.apply(Phase(phase="scoring", split="test", done=120, total=300, eta_s=4.5))
    assert (state.phase.split, state.phase.done, state.status) == ("test", 120, "running")
    state.apply(Status(status="completed", step=8))
    assert state.phase is None
    state.apply(Phase(phase="scoring", split="test", done=1, total=3, eta_s=None))
    state.apply(Status(status="starting", pid=3))
    assert state.phase is None


def test_cancelling_is_an_active_status():
    from studio.runs.state import ACTIVE, RESUMABLE, STATUSES, UNFINISHED

    assert "cancelling" in ACTIVE and "cancelling" in UNFINISHED and "cancelling" in STATUSES
    assert "cancelling" not in RESUMABLE
    state = RunState()
    for event in (Status(status="starting", pid=1), Status(status="running", total_steps=8),
                  Status(status="cancelling", step=3)):
        state.apply(event)
    assert state.status == "cancelling" and not state.finished and state.step == 3
    state.apply(Eval(split="validation", step=3, metrics={"loss": 0.5}))
    assert state.eval_loss == [(3, 0.5)]  # still training's evaluation, drawn as a point
