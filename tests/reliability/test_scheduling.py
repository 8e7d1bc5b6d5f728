"""The queue: first in, first out on the free devices, failures that stay contained, and a run
store that many threads can use at once."""

from __future__ import annotations

import threading

import psutil
import pytest

from studio.errors import ConfigError
from studio.jobs.store import JobError
from tests.reliability.conftest import describe, wait_for


def _started(manager, run_id):
    record = manager.store.get(run_id)
    return record.status in ("starting", "running") and record.pid


def test_injected_oom_fails_with_a_hint_and_the_next_run_starts(managers, make_config):
    manager = managers(cancel_grace_s=0.5)
    failing = manager.submit(make_config("oom"), env={"STUDIO_FAULT": "oom@3"})
    following = manager.submit(make_config("next"))
    assert manager.store.get(following).position == 1

    wait_for(lambda: manager.store.get(failing).status == "failed",
             timeout=90, what="the injected OOM", run=(manager, failing))
    record = manager.store.get(failing)
    assert record.error_kind == "oom", describe(manager, failing)
    assert "out of memory" in record.error_message.lower()
    assert "batch_size" in record.error_hint and "lora" in record.error_hint
    assert "at step 3" in record.error_message and record.step == 2  # the last step it reported
    assert record.exit_code not in (0, None)

    wait_for(lambda: _started(manager, following),
             timeout=30, what="the next queued run to start", run=(manager, following))
    assert manager._thread.is_alive()  # the supervisor is unharmed
    assert manager.cancel(following, wait=True).status == "cancelled"


def test_three_runs_one_slot_start_in_order(managers, make_config):
    manager = managers(cancel_grace_s=0.5)
    ids = [manager.submit(make_config(f"fifo{i}")) for i in range(3)]
    wait_for(lambda: _started(manager, ids[0]), timeout=30, what="the first run to start")
    queue = manager.queue()
    assert [(r.id, r.position) for r in queue] == [(ids[1], 1), (ids[2], 2)]
    assert [r.position for r in manager.list(status="queued")] == [2, 1]  # newest first
    with pytest.raises(JobError, match="cancel it first"):
        manager.delete(ids[0])

    for i in range(3):
        wait_for(lambda: _started(manager, ids[i]), timeout=30, what=f"run {i} to start")
        assert len(manager.store.list(status=("starting", "running"))) == 1
        assert [r.id for r in manager.queue()] == ids[i + 1:]
        assert manager.cancel(ids[i], wait=True).status == "cancelled"
    records = [manager.store.get(i) for i in ids]
    assert records[0].started < records[1].started < records[2].started
    assert records[0].ended <= records[1].started and records[1].ended <= records[2].started
    assert manager.disk_usage(ids[0]) > 0
    manager.delete(ids[0])
    assert not manager.run_dir(ids[0]).exists() and manager.store.get(ids[0]) is None


def test_two_fake_gpus_run_two_at_once_on_disjoint_devices(managers, make_config, monkeypatch):
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "2")
    manager = managers(cancel_grace_s=0.5)
    runs_before = sorted(manager.workspace.runs.iterdir())
    with pytest.raises(ConfigError, match="asks for 3 GPUs but this machine has 2"):
        manager.submit(make_config("too-big"), gpus=3)
    assert sorted(manager.workspace.runs.iterdir()) == runs_before  # refused before anything was written

    a, b, c = (manager.submit(make_config(f"gpu{i}")) for i in range(3))
    wait_for(lambda: _started(manager, a) and _started(manager, b), timeout=30, what="two runs to start")
    visible = [psutil.Process(manager.store.get(r).pid).environ()["CUDA_VISIBLE_DEVICES"] for r in (a, b)]
    assert sorted(visible) == ["0", "1"]
    assert sorted(manager.store.get(r).devices[0] for r in (a, b)) == ["0", "1"]
    assert manager.store.get(c).position == 1  # no third device

    manager.cancel(a, wait=True)
    wait_for(lambda: _started(manager, c), timeout=30, what="the third run to take the freed GPU")
    assert manager.store.get(c).devices == manager.store.get(a).devices
    for run_id in (b, c):
        assert manager.cancel(run_id, wait=True).status == "cancelled"


def test_twenty_threads_submit_list_and_status_at_once(managers, make_config):
    manager = managers(supervise=False)  # nothing trains: this is about the store
    manager.submit(make_config("warm-up"))  # the first submission loads the tokenizer stack
    barrier = threading.Barrier(20)
    submitted, errors = [], []

    def client(i):
        try:
            barrier.wait()
            run_id = manager.submit(make_config(f"client-{i}"), owner=f"user{i % 4}")
            submitted.append(run_id)
            for _ in range(5):
                assert run_id in {r.id for r in manager.list()}
                assert manager.status(run_id) == "queued"
                manager.list(owner=f"user{i % 4}")
                manager.queue()
        except Exception as error:  # noqa: BLE001 - collected and reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(submitted) == len(set(submitted)) == 20
    queue = manager.queue()
    assert len(queue) == 21 and [r.position for r in queue] == list(range(1, 22))
    assert {r.id for r in queue} == set(submitted) | {queue[0].id}
    assert len({r.queue_order for r in queue}) == 21
    assert sorted(p.name for p in manager.workspace.runs.iterdir()) == sorted(r.id for r in queue)
