"""Executors: what starts, watches and stops the worker of a run on its run folder.

``local`` runs it as a process on this machine (the default, and what the studio always did);
``ray`` runs it as a job of a Ray cluster whose nodes mount the workspace at the same path. The
job manager keeps the queue, the order and the limits for both, and asks the run's executor only
to place, start, watch and stop it. ``ray`` is imported when a run uses it, never before.
"""

from __future__ import annotations

from studio.jobs.executors.base import EXECUTORS, Ending, Executor, check_name

__all__ = ["EXECUTORS", "Ending", "Executor", "check_name"]
