"""The events log: one JSON object a line in ``<run_dir>/events.jsonl``.

The worker appends and flushes each event (``EventLog``); the job system appends its own when no
worker is writing (``append_event``). Readers (CLI progress, job manager, UI charts) read from a
byte offset and only ever parse complete lines, so a half-written last line is simply picked up
on the next read.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator

from studio.runs.folder import RunDir


def clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every reader can parse every line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


class EventLog:
    def __init__(self, run_dir: str | Path):
        self.path = RunDir(run_dir).events
        self._file = open(self.path, "a", encoding="utf-8")

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"t": round(time.time(), 3), "kind": kind, **clean(fields)}
        self._file.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        self._file.flush()
        return event

    def close(self) -> None:
        self._file.close()


def _complete_lines(run_dir: str | Path, offset: int) -> bytes:
    """The bytes after ``offset`` up to the last newline: a half-written line waits for the next read."""
    try:
        with open(RunDir(run_dir).events, "rb") as f:
            f.seek(offset)
            chunk = f.read()
    except FileNotFoundError:
        return b""
    return chunk[: chunk.rfind(b"\n") + 1]


def _parse(data: bytes, offset: int) -> Iterator[tuple[int, int, dict[str, Any]]]:
    position = offset
    for line in data.split(b"\n")[:-1]:
        start = position
        position += len(line) + 1
        try:
            event = json.loads(line) if line.strip() else None
        except ValueError:
            continue  # a corrupt line (disk full mid-write) must not stop the readers
        if isinstance(event, dict):
            yield start, position, event


def iter_events(run_dir: str | Path, offset: int = 0) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(line start, line end, event) for each complete line after byte ``offset``."""
    yield from _parse(_complete_lines(run_dir, offset), offset)


def read_events(run_dir: str | Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Events after byte ``offset`` and the offset to pass next time."""
    data = _complete_lines(run_dir, offset)
    return [event for _, _, event in _parse(data, offset)], offset + len(data)


def last_status(run_dir: str | Path) -> str | None:
    status = None
    for event in read_events(run_dir)[0]:
        if event.get("kind") == "status":
            status = event.get("status")
    return status


def events_size(run_dir: str | Path) -> int:
    try:
        return RunDir(run_dir).events.stat().st_size
    except FileNotFoundError:
        return 0


def append_event(run_dir: str | Path, kind: str, **fields: Any) -> int:
    """Append one event on behalf of the job system (only when no worker is writing).

    A worker killed in the middle of a write leaves a line without its newline; that fragment
    is closed first so the new event stays a line of its own. Returns the new file size.
    """
    path = RunDir(run_dir).events
    event = {"t": round(time.time(), 3), "kind": kind, **clean(fields)}
    with open(path, "ab+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write((json.dumps(event, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
        f.flush()
        return f.tell()
