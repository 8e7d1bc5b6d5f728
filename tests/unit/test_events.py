import json

from studio.runs.events import EventLog, last_status, read_events


def test_events_read_by_offset_and_only_complete_lines(tmp_path):
    log = EventLog(tmp_path)
    log.emit("status", status="running")
    log.emit("log", step=1, loss=0.5)
    events, offset = read_events(tmp_path)
    assert [e["kind"] for e in events] == ["status", "log"]
    assert events[1]["loss"] == 0.5 and "t" in events[0]
    # A half-written line is not returned until it is complete.
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write('{"kind": "log", "step": 2')
    more, offset2 = read_events(tmp_path, offset)
    assert more == [] and offset2 == offset
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write(', "loss": 0.4}\n')
    more, _ = read_events(tmp_path, offset2)
    assert more == [{"kind": "log", "step": 2, "loss": 0.4}]


def test_non_finite_numbers_become_null(tmp_path):
    log = EventLog(tmp_path)
    log.emit("eval", metrics={"r2": float("nan"), "loss": float("inf")})
    line = (tmp_path / "events.jsonl").read_text().strip()
    assert json.loads(line)["metrics"] == {"r2": None, "loss": None}


def test_corrupt_line_is_skipped(tmp_path):
    (tmp_path / "events.jsonl").write_text('{"kind":"status","status":"running"}\nnot json\n{"kind":"status","status":"completed"}\n')
    assert last_status(tmp_path) == "completed"


def test_missing_file_reads_empty(tmp_path):
    assert read_events(tmp_path / "nowhere") == ([], 0)
