"""The run index: SQLite in WAL mode, safe from many threads, rebuilt from run folders."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from studio.runs.event_types import Error, Progress, Status
from studio.runs.events import append_event
from studio.jobs.store import JobError, RunRecord, RunStore, reindex


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "studio.db")


def _record(run_id, **values):
    return RunRecord(id=run_id, run_dir=f"/runs/{run_id}", created=time.time(), **values)


def test_one_file_in_wal_mode(store, tmp_path):
    assert store.journal_mode == "wal"
    assert (tmp_path / "studio.db").is_file()
    store.insert(_record("a", owner="ann", devices=["0"], env={"X": "1"}, status="running"))
    again = RunStore(tmp_path / "studio.db")  # another process or thread opening it
    record = again.get("a")
    assert record.owner == "ann" and record.devices == ["0"] and record.env == {"X": "1"} and record.status == "running"
    assert store.get("missing") is None
    with pytest.raises(JobError, match="already in the index"):
        store.insert(_record("a"))


def test_queue_positions_and_moves(store):
    for name in "abcd":
        store.insert(_record(name))
    store.insert(_record("done", status="completed"))
    assert [(r.id, r.position) for r in store.queue()] == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    assert store.get("c").position == 3 and store.get("done").position is None
    assert store.move("c", "up") == 2
    assert [r.id for r in store.queue()] == ["a", "c", "b", "d"]
    assert store.move("a", "down") == 2
    assert store.move("d", "top") == 1
    assert store.move("d", "up") == 1  # already first
    assert store.move("c", "bottom") == 4
    assert [r.id for r in store.queue()] == ["d", "a", "b", "c"]
    with pytest.raises(JobError, match="not queued"):
        store.move("done", "up")


def test_update_is_compare_and_set(store):
    store.insert(_record("a"))
    assert store.update("a", expect="queued", status="starting")
    assert not store.update("a", expect="queued", status="cancelled")  # someone else took it
    assert store.get("a").status == "starting"
    assert store.enqueue("a", expect=["starting"], resume=True)
    assert store.get("a").status == "queued" and store.get("a").resume
    with pytest.raises(ValueError):
        store.update("a", no_such_field=1)


def test_claim_is_fifo_and_never_double_books_a_device(store):
    store.insert(_record("big", gpus=2))
    store.insert(_record("small", gpus=1))

    def choose(record, busy):
        free = [d for d in ("0", "1") if d not in busy]
        return {"devices": free[: record.gpus]} if len(free) >= record.gpus else None

    store.insert(_record("holder", status="running", devices=["1"]))
    assert store.claim(choose) is None  # the head needs 2 GPUs; 'small' must not jump the queue
    store.update("holder", status="completed")
    claimed = store.claim(choose)
    assert claimed.id == "big" and claimed.status == "starting" and claimed.devices == ["0", "1"]
    assert store.claim(choose) is None
    assert store.get("small").position == 1


def test_twenty_threads_never_see_a_locked_database(tmp_path):
    path = tmp_path / "studio.db"
    RunStore(path)
    errors = []
    barrier = threading.Barrier(20)

    def worker(i):
        store = RunStore(path, timeout=30)  # as a separate component would
        try:
            barrier.wait()
            for j in range(15):
                run_id = f"t{i}-{j}"
                store.insert(_record(run_id, owner=f"u{i}"))
                store.list(owner=f"u{i}")
                store.queue()
                store.update(run_id, expect="queued", step=j)
                if j % 3 == 0:
                    store.claim(lambda record, busy: {"devices": [f"cpu{len(busy)}"]})
                assert store.get(run_id) is not None
        except Exception as error:  # noqa: BLE001
            errors.append(repr(error))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    records = RunStore(path).list()
    assert len(records) == len({r.id for r in records}) == 300
    claimed = [r for r in records if r.status == "starting"]
    assert len(claimed) == 100
    devices = [r.devices[0] for r in claimed]
    assert len(set(devices)) == len(devices)  # every claim saw the others' devices as busy


def _run_dir(ws, run_id, *, config=True, job=None):
    folder = ws.runs / run_id
    folder.mkdir(parents=True)
    if config:
        (folder / "config.yaml").write_text(f"name: {run_id}\ntask:\n  name: classification\nmodel:\n  backbone: tiny\n")
    if job is not None:
        (folder / "job.json").write_text(json.dumps(job))
    return folder


def test_reindex_rebuilds_the_index_from_run_folders(workspace):
    store = RunStore.for_workspace(workspace)
    done = _run_dir(workspace, "r-done", job={"owner": "ann", "gpus": 1, "created": 100.0})
    append_event(done, Status(status="queued"))
    append_event(done, Status(status="starting", pid=1))
    append_event(done, Status(status="running", total_steps=10))
    append_event(done, Progress(step=10, total=10))
    append_event(done, Status(status="completed", step=10, headline={"accuracy": 0.9}))

    failed = _run_dir(workspace, "r-failed")
    append_event(failed, Status(status="starting", pid=1))
    append_event(failed, Error(error_kind="oom", message="CUDA out of memory", hint="lower training.batch_size"))
    append_event(failed, Status(status="failed", error_kind="oom"))

    dead = _run_dir(workspace, "r-dead")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    append_event(dead, Status(status="starting", pid=proc.pid))
    append_event(dead, Status(status="running", total_steps=10))
    with open(dead / "events.jsonl", "a") as f:
        f.write('{"t": 1, "kind": "progress", "st')  # killed in the middle of a line

    alive = _run_dir(workspace, "r-alive", job={"owner": "bo", "gpus": 1, "created": 200.0})
    append_event(alive, Status(status="starting", pid=0))
    append_event(alive, Status(status="running", total_steps=10))
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "studio.worker", str(alive)],
                              env={"CUDA_VISIBLE_DEVICES": "1"})

    queued = _run_dir(workspace, "r-queued", job={"owner": "cy", "gpus": 0, "created": 300.0})
    append_event(queued, Status(status="queued"))
    never = _run_dir(workspace, "r-never")
    _run_dir(workspace, ".staging-r-x")
    _run_dir(workspace, "not-a-run", config=False)
    store.insert(_record("r-deleted", status="completed"))  # its folder is gone
    try:
        records = {r.id: r for r in reindex(workspace, store)}
        assert set(records) == {"r-done", "r-failed", "r-dead", "r-alive", "r-queued", "r-never"}
        assert records["r-done"].status == "completed" and records["r-done"].owner == "ann"
        assert (records["r-done"].metric_name, records["r-done"].metric_value) == ("accuracy", 0.9)
        assert records["r-done"].step == 10 and records["r-done"].task == "classification"
        assert records["r-failed"].status == "failed" and records["r-failed"].error_kind == "oom"
        assert records["r-failed"].error_hint == "lower training.batch_size"
        assert records["r-dead"].status == "interrupted"
        assert records["r-alive"].status == "running" and records["r-alive"].pid == worker.pid
        assert records["r-alive"].devices == ["1"] and records["r-alive"].pid_started
        assert records["r-queued"].status == "queued" and records["r-queued"].position == 1 and records["r-queued"].gpus == 0
        assert records["r-never"].status == "interrupted"
        assert not (never / "events.jsonl").exists()  # reindex only reads run folders
    finally:
        worker.kill()
        worker.wait()
    # The dead run's trailing fragment was closed before anything was appended after it.
    append_event(dead, Status(status="interrupted"))
    assert json.loads((dead / "events.jsonl").read_text().splitlines()[-1])["status"] == "interrupted"


def test_reindex_never_requeues_a_run_that_is_being_started(workspace):
    store = RunStore.for_workspace(workspace)
    claimed = _run_dir(workspace, "r-claimed", job={"owner": "ann"})
    append_event(claimed, Status(status="queued"))
    store.insert(_record("r-claimed", status="starting", devices=["cpu0"], started=time.time()))  # no pid yet
    spawned = _run_dir(workspace, "r-spawned", job={"owner": "bo"})
    append_event(spawned, Status(status="queued"))  # its worker has not written anything yet
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "studio.worker", str(spawned)])
    try:
        records = {r.id: r for r in reindex(workspace, store)}
        assert records["r-claimed"].status == "starting" and records["r-claimed"].devices == ["cpu0"]
        assert records["r-spawned"].status == "starting" and records["r-spawned"].pid == worker.pid
        assert store.queue() == []
    finally:
        worker.kill()
        worker.wait()
