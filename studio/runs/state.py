"""A run's statuses, and what its ``events.jsonl`` says about it folded into one summary.

The worker appends events; the job manager, the run index and the CLI read them. Each reader
keeps an ``EventSummary`` and feeds it the lines after the byte offset it last reached, so a
poll costs only the new lines. A ``starting`` status opens a new attempt (a resume appends to the
same file) and resets what belonged to the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.runs.events import iter_events

# Statuses written by the worker, plus those the job system writes for it:
# queued -> starting -> running -> (completed | failed | cancelled | interrupted).
QUEUED = "queued"
ACTIVE = ("starting", "running")
"""A worker is (about to be) at work."""
UNFINISHED = (QUEUED,) + ACTIVE
"""Not over yet: waiting or at work (what a page keeps watching, what a cancel applies to)."""
FINISHED = ("completed", "failed", "cancelled")
"""Final statuses a worker writes itself."""
TERMINAL = FINISHED + ("interrupted",)
STATUSES = UNFINISHED + TERMINAL
RESUMABLE = ("interrupted", "failed", "cancelled")


@dataclass
class EventSummary:
    offset: int = 0
    """Bytes of events.jsonl consumed so far (only complete lines)."""
    attempt_offset: int = 0
    """Where the last attempt's ``starting`` event begins."""
    status: str | None = None
    status_t: float | None = None
    queued_t: float | None = None
    started: float | None = None
    ended: float | None = None
    worker_pid: int | None = None
    step: int | None = None
    total_steps: int | None = None
    error_kind: str | None = None
    error_message: str | None = None
    error_hint: str | None = None
    metric_name: str | None = None
    metric_value: float | None = None
    attempts: int = 0
    """Workers started (one ``starting`` event each)."""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def feed(self, event: dict[str, Any], at: int) -> None:
        kind = event.get("kind")
        t = event.get("t")
        step = event.get("step")
        if isinstance(step, int) and kind != "status":
            self.step = step
        if kind == "status":
            status = event.get("status")
            if status == "starting":
                self.attempt_offset = at
                self.attempts += 1
                self.started = t
                self.ended = None
                self.worker_pid = event.get("pid")
                self.step = self.total_steps = None
                self.error_kind = self.error_message = self.error_hint = None
                self.metric_name = self.metric_value = None
            elif status == QUEUED:
                self.queued_t = t
            if status in TERMINAL:
                self.ended = t
            if status == "running" and isinstance(event.get("total_steps"), int):
                self.total_steps = event["total_steps"]
            if status == "failed" and event.get("error_kind") and not self.error_kind:
                self.error_kind = event["error_kind"]
            if status == "completed":
                headline = event.get("headline")
                if isinstance(headline, dict) and headline:
                    name, value = next(iter(headline.items()))
                    self.metric_name = str(name)
                    self.metric_value = value if isinstance(value, (int, float)) else None
            if isinstance(step, int):
                self.step = step
            self.status = status
            self.status_t = t
        elif kind == "progress":
            if isinstance(event.get("total"), int) and event["total"] > 0:
                self.total_steps = event["total"]
        elif kind == "error":
            self.error_kind = event.get("error_kind")
            self.error_message = event.get("message")
            self.error_hint = event.get("hint")


def summarize(run_dir: str | Path, summary: EventSummary | None = None) -> EventSummary:
    """Feed ``summary`` (or a new one) the events written since it was last fed."""
    summary = summary or EventSummary()
    for start, end, event in iter_events(run_dir, summary.offset):
        summary.feed(event, start)
        summary.offset = end
    return summary
