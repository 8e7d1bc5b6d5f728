"""Cancelling a run: graceful (checkpoint, then stop) and forced (the process tree is killed)."""

from __future__ import annotations

from tests.reliability.conftest import descendants, events_of, live, wait_for


def _grandchildren(pids_file):
    return [int(x) for x in pids_file.read_text().split()] if pids_file.exists() else []


def test_cancel_saves_a_checkpoint_and_leaves_no_process(managers, make_config, child_python):
    python, pids_file = child_python
    manager = managers(cancel_grace_s=60, python=python)
    run_id = manager.submit(make_config("cancelled"), env={"STUDIO_STEP_DELAY": "0.2"})
    wait_for(lambda: (manager.store.get(run_id).step or 0) >= 2,
             timeout=90, what="training to be under way", run=(manager, run_id))
    worker = manager.store.get(run_id).pid
    assert _grandchildren(pids_file) and all(live(p) for p in _grandchildren(pids_file))

    record = manager.cancel(run_id, wait=True)
    assert record.status == "cancelled"
    assert record.exit_code == 0  # it stopped by itself, in time
    stopped = [e for e in events_of(manager, run_id) if e.get("kind") == "status"][-1]
    assert stopped["status"] == "cancelled" and "reason" not in stopped  # written by the worker
    checkpoint = manager.checkpoint(run_id)
    assert checkpoint is not None and int(checkpoint.name.rsplit("-", 1)[1]) == stopped["step"]
    assert not (manager.run_dir(run_id) / "STOP").exists()
    assert not live(worker)
    assert not any(live(p) for p in _grandchildren(pids_file))
    assert descendants() == []


def test_cancel_kills_the_whole_tree_when_the_worker_does_not_stop(managers, make_config, child_python):
    python, pids_file = child_python
    manager = managers(cancel_grace_s=1.0, python=python)
    run_id = manager.submit(make_config("stuck"), env={"STUDIO_STEP_DELAY": "30"})  # the first step never ends in time
    wait_for(lambda: manager.store.get(run_id).pid and _grandchildren(pids_file),
             timeout=30, what="the worker to start", run=(manager, run_id))
    worker = manager.store.get(run_id).pid

    record = manager.cancel(run_id, wait=True)
    assert record.status == "cancelled" and record.exit_code == -9
    assert events_of(manager, run_id)[-1]["status"] == "cancelled"
    assert not live(worker)
    assert not any(live(p) for p in _grandchildren(pids_file))
    assert descendants() == []
    assert manager.store.list(status=("starting", "running")) == []  # its device is free again


def test_a_cancel_reads_cancelling_at_once_and_ends_within_seconds_of_its_checkpoint(managers, make_config):
    """The default strategies (evaluate and save each epoch): the stop mid-epoch saves a checkpoint
    and ends; the Trainer's end of that epoch neither evaluates nor saves again, and the best
    checkpoint is not loaded back. The record reads 'cancelling' from the cancel to the end."""
    import time

    manager = managers(cancel_grace_s=60)
    run_id = manager.submit(make_config("prompt", eval_strategy="epoch", save_strategy="epoch"),
                            env={"STUDIO_STEP_DELAY": "0.2"})
    wait_for(lambda: (manager.store.get(run_id).step or 0) >= 2,
             timeout=90, what="training to be under way", run=(manager, run_id))

    asked = time.time()
    seen = [manager.cancel(run_id).status]
    while manager.get(run_id).active and time.time() < asked + 60:
        seen.append(manager.get(run_id).status)
        time.sleep(0.05)
    ended = time.time()
    record = manager.get(run_id)
    assert seen[0] == "cancelling" and set(seen) == {"cancelling"}, seen
    assert record.status == "cancelled" and record.exit_code == 0  # it ended by itself, not killed

    after = [e for e in events_of(manager, run_id) if e["t"] >= asked - 0.01 and e["kind"] != "progress"]
    kinds = [(e["kind"], e.get("status")) for e in after]
    assert ("status", "cancelling") in kinds  # the worker's word when it saw the request
    checkpoints = [e for e in after if e["kind"] == "checkpoint"]
    assert len(checkpoints) == 1, kinds  # saved once, not again at the end of the epoch
    assert not [e for e in after if e["kind"] in ("eval", "phase")], kinds  # nothing evaluated after the stop
    assert ended - checkpoints[0]["t"] < 15, f"{ended - checkpoints[0]['t']:.1f}s from the checkpoint to the end"
    assert after[-1]["kind"] == "status" and after[-1]["status"] == "cancelled"
