"""The speed benchmarks' shared timing: which steps are timed, and where a run's wall time went."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from harness import phases, timed_window  # noqa: E402


def progress(*steps):
    return [{"kind": "progress", "step": s, "t": 100.0 + s} for s in steps]


def test_the_timed_window_starts_at_the_first_step_past_the_warm_up():
    start, end = timed_window(progress(1, 3, 5, 8, 11, 30), warmup=8)
    assert (start["step"], end["step"]) == (8, 30)


def test_a_fast_run_with_sparse_progress_times_from_the_latest_earlier_step():
    # Progress comes at most twice a second: a tiny run may report steps 1 and 6 only.
    start, end = timed_window(progress(1, 6), warmup=2)
    assert (start["step"], end["step"]) == (1, 6)
    with pytest.raises(RuntimeError, match="too few progress events"):
        timed_window(progress(6), warmup=2)


def test_phases_split_the_wall_time():
    assert phases(0.0, 12.5, 40.0, 43.2) == {"setup": 12.5, "train": 27.5, "after": 3.2}
    assert phases(0.0, None, 40.0, 43.2) == {"setup": None, "train": None, "after": None}
