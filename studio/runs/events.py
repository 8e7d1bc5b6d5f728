"""The events log: one JSON object a line in ``<run_dir>/events.jsonl``.

The events are typed (``studio.runs.event_types``): the worker writes them with ``EventLog`` and
the job system with ``append_event`` when no worker is writing. Readers read from a byte offset
and only ever parse complete lines, so a half-written last line is simply picked up on the next
read. ``iter_events`` gives the typed events (what ``studio.runs.state`` folds into a run's
state); ``read_events`` gives the lines as they are written (for showing them as they are).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator

from studio.runs.event_types import Event, parse
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


def _stamped(event: Event) -> tuple[Event, bytes]:
    """The event with its time, and its line."""
    event = dataclasses.replace(event, t=round(time.time(), 3))
    return event, (json.dumps(clean(event.to_dict()), ensure_ascii=False, default=str) + "\n").encode("utf-8")


class EventLog:
    """The worker's writer: the file stays open for the run, each event flushed as written."""

    def __init__(self, run_dir: str | Path):
        self.path = RunDir(run_dir).events
        self._file = open(self.path, "ab")

    def write(self, event: Event) -> Event:
        """Append ``event``; returns it as written (with its time)."""
        event, line = _stamped(event)
        self._file.write(line)
        self._file.flush()
        return event

    def close(self) -> None:
        self._file.close()


def append_event(run_dir: str | Path, event: Event | str, **fields: Any) -> int:
    """Append one event on behalf of the job system (only when no worker is writing).

    ``append_event(run_dir, Status(status="queued"))``; a kind and its fields
    (``append_event(run_dir, "status", status="queued")``) are read as that kind's event.
    A worker killed in the middle of a write leaves a line without its newline; that fragment
    is closed first so the new event stays a line of its own. Returns the new file size.
    """
    if isinstance(event, str):
        event = parse({"kind": event, **fields})
    _, line = _stamped(event)
    with open(RunDir(run_dir).events, "ab+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(line)
        f.flush()
        return f.tell()


def _complete_lines(run_dir: str | Path, offset: int) -> bytes:
    """The bytes after ``offset`` up to the last newline: a half-written line waits for the next read."""
    try:
        with open(RunDir(run_dir).events, "rb") as f:
            f.seek(offset)
            chunk = f.read()
    except FileNotFoundError:
        return b""
    return chunk[: chunk.rfind(b"\n") + 1]


def _lines(data: bytes, offset: int) -> Iterator[tuple[int, int, dict[str, Any]]]:
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


def iter_events(run_dir: str | Path, offset: int = 0) -> Iterator[tuple[int, int, Event]]:
    """(line start, line end, typed event) for each complete line after byte ``offset``."""
    for start, end, line in _lines(_complete_lines(run_dir, offset), offset):
        yield start, end, parse(line)


def read_events(run_dir: str | Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The lines after byte ``offset`` as written (JSON objects), and the offset to pass next time."""
    data = _complete_lines(run_dir, offset)
    return [line for _, _, line in _lines(data, offset)], offset + len(data)


def events_size(run_dir: str | Path) -> int:
    try:
        return RunDir(run_dir).events.stat().st_size
    except FileNotFoundError:
        return 0
