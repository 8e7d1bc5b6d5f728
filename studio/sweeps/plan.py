"""How long a sweep should take, told before it starts: its trials train ``parallel`` at a time
(no more than the machine's free slots), each at most as long as the single run of the base
config would. It is a ceiling: pruning stops hopeless trials early and early stopping ends others
sooner, so most sweeps finish well inside it."""

from __future__ import annotations

import math


def waves(trials: int, parallel: int, slots: int) -> int:
    """How many rounds of trials one after another: ``parallel`` at once, at most ``slots``."""
    return math.ceil(max(1, trials) / max(1, min(parallel, slots)))


def sweep_seconds(single: tuple[float, float], trials: int, parallel: int, slots: int) -> tuple[float, float]:
    """The sweep's time range from one run's (``Plan.seconds_range``)."""
    n = waves(trials, parallel, slots)
    return single[0] * n, single[1] * n
