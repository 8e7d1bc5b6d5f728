"""How often open pages ask for a watched run's news, so that watching never slows the training.

Every open Train tab asks the server for its run's new events on a timer. One ask costs the web
process some milliseconds of CPU, and on a small machine that CPU is taken from the training
next door: its threads wait for each other, so a little stolen time slows every step. The cost
grows with the number of pages, so the pages share a budget of asks a second that grows with the
machine's cores: one page (or a handful on a big machine) ticks every second; with more pages
than the budget covers, each page's tick is spread out so the total stays the same. The server
returns the tick with every answer (the page's ``gr.Timer`` takes it), so pages slow down and
speed up as others open and close.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import Callable

TICK_S = 1.0
"""A page's tick when the budget covers every open page."""
MAX_TICK_S = 10.0
"""The longest tick, however many pages are open: the charts stay live."""
ASKS_PER_CORE_S = 1.0
"""Asks a second the pages share, per CPU core of the machine. An ask costs the server about
10-20 ms of CPU, so one ask a core a second is ~1-2% of the machine (``benchmarks/responsiveness.py``
measures what it does to a training run)."""


def machine_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


class Watchers:
    """The pages that asked lately, and the tick each should keep."""

    def __init__(self, cores: int | None = None, clock: Callable[[], float] = time.monotonic):
        self.budget = ASKS_PER_CORE_S * (cores or machine_cores())
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._tick = TICK_S
        self._lock = threading.Lock()

    def tick(self, page: str | None) -> float:
        """Note that ``page`` asked now; the seconds it should wait before asking again."""
        now = self._clock()
        with self._lock:
            if page:
                self._seen[page] = now
            # A page counts while it is due to ask again: one that closed drops out after two ticks.
            horizon = now - 2 * self._tick - TICK_S
            for gone in [p for p, t in self._seen.items() if t < horizon]:
                del self._seen[gone]
            self._tick = round(min(MAX_TICK_S, max(TICK_S, len(self._seen) / self.budget)), 1)
            return self._tick

    @property
    def pages(self) -> int:
        with self._lock:
            return len(self._seen)


class PageRuns:
    """The run each page chose last (by launching it or picking it), so that an answer about the
    run it watched before, computed while the choice was made and sent after it, is dropped
    instead of putting that run back on the page (a tick in flight, or the load's own pick)."""

    def __init__(self, limit: int = 10_000):
        self._runs: OrderedDict[str, str | None] = OrderedDict()
        self._limit = limit  # pages of a long-lived server: the oldest are forgotten
        self._lock = threading.Lock()

    def choose(self, page: str | None, run_id: str | None) -> None:
        if not page:
            return
        with self._lock:
            self._runs[page] = run_id
            self._runs.move_to_end(page)
            while len(self._runs) > self._limit:
                self._runs.popitem(last=False)

    def chosen(self, page: str | None) -> str | None:
        with self._lock:
            return self._runs.get(page) if page else None

    def is_stale(self, page: str | None, run_id: str | None) -> bool:
        """Whether an answer about ``run_id`` is for a run this page no longer watches."""
        with self._lock:
            return bool(page) and page in self._runs and self._runs[page] != run_id
