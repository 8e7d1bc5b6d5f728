"""A worker killed with SIGKILL becomes ``interrupted`` and resumes to the same final step; a
checkpoint whose save did not finish is never resumed from."""

from __future__ import annotations

import json

import psutil

from tests.reliability.conftest import TOTAL_STEPS, attempt_events, describe, events_of, wait_for


def _checkpoint_at(manager, run_id, step):
    return any(e.get("kind") == "checkpoint" and e["step"] >= step for e in events_of(manager, run_id))


def _resumed_from(manager, run_id, attempt):
    events = attempt_events(manager, run_id, attempt)
    messages = [e["message"] for e in events if e.get("kind") == "log" and "message" in e]
    first_progress = next(e["step"] for e in events if e.get("kind") == "progress")
    return messages, first_progress


def test_kill9_is_interrupted_within_two_polls_and_resume_reaches_the_same_step(managers, make_config):
    manager = managers()
    run_id = manager.submit(make_config("killed"), owner="ann", env={"STUDIO_STEP_DELAY": "0.15"})
    wait_for(lambda: _checkpoint_at(manager, run_id, 8),
             timeout=90, what="a checkpoint at step 8", run=(manager, run_id))
    record = manager.store.get(run_id)
    assert record.status == "running" and record.pid

    polls_before = manager.polls
    psutil.Process(record.pid).kill()
    wait_for(lambda: manager.store.get(run_id).status == "interrupted",
             timeout=10, interval=0.01, what="interrupted", run=(manager, run_id))
    assert manager.polls - polls_before <= 2
    record = manager.store.get(run_id)
    assert record.ended and record.exit_code == -9 and record.devices  # which devices it held stays on record
    last = events_of(manager, run_id)[-1]
    assert last["kind"] == "status" and last["status"] == "interrupted"
    planned = next(e["total"] for e in attempt_events(manager, run_id, 1) if e.get("kind") == "progress")
    assert planned == TOTAL_STEPS
    checkpoint = manager.checkpoint(run_id)
    resume_step = int(checkpoint.name.rsplit("-", 1)[1])
    assert resume_step >= 8

    manager.resume(run_id)  # without the step delay
    wait_for(lambda: manager.store.get(run_id).status in ("completed", "failed"),
             timeout=90, what="the resumed run to end", run=(manager, run_id))
    record = manager.store.get(run_id)
    assert record.status == "completed", describe(manager, run_id)
    messages, first_step = _resumed_from(manager, run_id, 2)
    assert f"resuming from checkpoint-{resume_step}" in messages
    assert first_step == resume_step  # continued, not started over
    metrics = json.loads((manager.run_dir(run_id) / "metrics.json").read_text())
    assert metrics["train"]["global_step"] == planned == record.step
    assert record.attempts == 2 and record.metric_name == "accuracy" and record.metric_value is not None


def test_resume_skips_a_truncated_latest_checkpoint(managers, make_config):
    from studio.runs import RunDir

    manager = managers(cancel_grace_s=60)
    run_id = manager.submit(make_config("truncated"), env={"STUDIO_STEP_DELAY": "0.15"})
    wait_for(lambda: _checkpoint_at(manager, run_id, 8),
             timeout=90, what="a checkpoint at step 8", run=(manager, run_id))
    assert manager.cancel(run_id, wait=True).status == "cancelled"
    done = RunDir(manager.run_dir(run_id)).complete_checkpoints()
    assert len(done) >= 2
    latest, previous = done[-1], done[-2]
    for name in ("trainer_state.json", "model.safetensors"):  # a save cut short (disk full, power cut)
        path = latest / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert manager.checkpoint(run_id) == previous

    manager.resume(run_id)
    wait_for(lambda: manager.store.get(run_id).status in ("completed", "failed"),
             timeout=90, what="the resumed run to end", run=(manager, run_id))
    record = manager.store.get(run_id)
    assert record.status == "completed", describe(manager, run_id)
    messages, first_step = _resumed_from(manager, run_id, 2)
    assert f"resuming from {previous.name}" in messages
    assert first_step == int(previous.name.rsplit("-", 1)[1])
    assert record.step == TOTAL_STEPS
