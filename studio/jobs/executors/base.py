"""The contract between the job manager and an executor (one per kind of place runs train)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from studio.errors import ConfigError

LOCAL = "local"
RAY = "ray"
EXECUTORS = (LOCAL, RAY)


def check_name(name: str) -> str:
    if name not in EXECUTORS:
        raise ConfigError(f"there is no executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
    return name


@dataclass(frozen=True)
class Ending:
    """How a worker that is no longer alive ended, as its executor saw it.

    ``status``: only when the executor knows better than "interrupted" for a worker that wrote no
    final status (``failed``: it could not even start there). ``message``/``hint``: the reason
    (for Ray, its message and the last lines of the job's log)."""

    exit_code: int | None = None
    status: str | None = None
    message: str | None = None
    hint: str | None = None
    killed: bool = False


class Executor(Protocol):
    name: str

    def check(self, gpus: int) -> None:
        """Refuse (``StudioError``) a request that could never be placed."""

    def place(self, record: Any, busy: set[str]) -> dict[str, Any] | None:
        """The fields that place the head of the queue (``devices``...), or None while it must wait."""

    def launch(self, record: Any, run_dir: Path) -> dict[str, Any]:
        """Start the worker; returns the fields to record (pid, job id...). Raises ``OSError`` or
        ``StudioError`` when it cannot start."""

    def alive(self, record: Any, summary: Any) -> bool:
        """Whether the run's worker is (about to be) at work."""

    def kill(self, record: Any, summary: Any) -> None:
        """End the worker now (a cancel past its grace period, a hung worker, a forced delete)."""

    def finish(self, record: Any, summary: Any) -> Ending:
        """The worker is no longer alive: collect how it ended and clean up what it left."""

    def busy(self, record: Any, run_dir: Path) -> bool:
        """Whether a worker for this run is still at work (a resume must wait for it)."""

    def collect(self, is_active) -> None:
        """Forget what is kept about workers whose runs are over (``is_active(run_id)``)."""
