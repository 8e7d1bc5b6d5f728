"""What the speed benchmarks share: run the plain Trainer script and the studio's worker on the
same data, and read the same figures off each (warm-up steps left out), the peak resident memory
of each one's process tree among them (``tree_peak_gib``: sampled, a CPU run's whole footprint)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


SAMPLE_S = 0.05


def tree_rss(process) -> int:
    """Resident bytes of a process and all its children."""
    import psutil

    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class Sampler(threading.Thread):
    """Samples a process tree's resident memory every ``SAMPLE_S`` until the process ends."""

    def __init__(self, pid: int):
        import psutil

        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.samples: list[tuple[float, int]] = []
        self.high_water = 0  # the root process's own peak (VmHWM): no sample misses it

    def run(self) -> None:
        import psutil

        while True:
            try:
                self.samples.append((time.time(), tree_rss(self.process)))
                self.high_water = max(self.high_water, high_water_mark(self.process.pid))
                if self.process.status() == psutil.STATUS_ZOMBIE:
                    return
            except psutil.Error:
                return
            time.sleep(SAMPLE_S)

    @property
    def peak_gib(self) -> float:
        """The tree's sampled peak, or the root process's own peak where that is higher (a peak
        between two samples)."""
        return max(self.high_water, *(rss for _, rss in self.samples), 0) / 1024**3


def high_water_mark(pid: int) -> int:
    """A process's peak resident bytes so far (Linux's VmHWM), 0 where unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def run_sampled(command: list[str], *, timeout: float | None = None, **popen) -> tuple[int, str, str, Sampler]:
    """(exit code, stdout, stderr, the memory samples) of ``command`` run to its end."""
    process = subprocess.Popen(command, text=True, **popen)
    sampler = Sampler(process.pid)
    sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    sampler.join()
    return process.returncode, stdout or "", stderr or "", sampler


def run_plain(model_dir: str | Path, data: Path, *, steps: int, batch: int, max_length: int, warmup: int,
              extra: list[str] = (), timeout: float | None = None) -> dict[str, Any]:
    """The hand-written baseline (plain_trainer.py) in its own process."""
    command = [sys.executable, str(ROOT / "benchmarks" / "plain_trainer.py"), str(model_dir), str(data), str(steps),
               str(batch), str(max_length), "--warmup-steps", str(warmup), *extra]
    started = time.time()
    code, stdout, stderr, memory = run_sampled(command, timeout=timeout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if code != 0:
        raise RuntimeError(f"plain script failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["tree_peak_gib"] = round(memory.peak_gib, 3)
    result["tokens_per_s"] = result["samples_per_s"] * result["mean_tokens"]
    result["wall_s"] = round(time.time() - started, 1)
    result["phases_s"] = phases(started, result.pop("train_began_t", None), result.pop("train_ended_t", None), time.time())
    return result


def phases(launched: float, began: float | None, ended: float | None, exited: float) -> dict[str, float | None]:
    """Where a run's wall time went: setup (process start, imports, data, model loading) until
    training began, the training itself (warm-up included), and what came after (saving, scoring,
    exit). Where the minutes of a benchmark go, so that a tight allowance can be planned."""
    if began is None or ended is None:
        return {"setup": None, "train": None, "after": None}
    return {"setup": round(began - launched, 1), "train": round(ended - began, 1), "after": round(exited - ended, 1)}


def timed_window(progress: list[dict[str, Any]], warmup: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first and last progress events of the timed steps: from the first step at or past the
    warm-up to the last step. Progress events come at most twice a second, so on a very fast run
    the first one past the warm-up can be the last; then the window starts at the latest earlier
    step (some warm-up is timed rather than none)."""
    end = progress[-1]
    earlier = [e for e in progress if 1 <= e["step"] < end["step"]]
    if not earlier:
        raise RuntimeError(f"too few progress events to time the run ({len(progress)}); train more steps")
    past_warmup = [e for e in earlier if e["step"] >= warmup]
    return (past_warmup[0] if past_warmup else earlier[-1]), end


def planned(config, workspace) -> dict[str, Any]:
    """What the Train tab would have said before launch (studio.planning): the time of the whole
    run (its range) and the memory, to set beside what the run measured."""
    from studio.gpus import detected_gpus
    from studio.planning import plan_for

    plan = plan_for(config, workspace, model_roots=None, gpus=detected_gpus(), cpu_slots=1)
    if plan is None:
        return {"planned_s": None, "planned_range_s": None, "planned_memory_gib": None, "planned_device": None}
    return {"planned_s": plan.seconds, "planned_range_s": plan.seconds_range, "planned_memory_gib": plan.memory_gib,
            "planned_device": plan.device}


def estimate_ratios(result: dict[str, Any]) -> dict[str, float | None]:
    """Measured over planned: the run's wall time (preparation included) and its peak memory."""
    time_ratio = result["wall_s"] / result["planned_s"] if result.get("planned_s") else None
    memory = result.get("planned_memory_gib")
    memory_ratio = result["peak_memory_gib"] / memory if memory and result.get("peak_memory_gib") is not None else None
    return {"time_ratio": time_ratio, "memory_ratio": memory_ratio}


def run_studio(config: dict[str, Any], workspace: Path, *, warmup: int, timeout: float | None = None) -> dict[str, Any]:
    """The studio's worker on ``config``, prepared exactly as the app and the CLI prepare runs."""
    from studio.config import RunConfig
    from studio.allocator import allocator_env
    from studio.runs.events import read_events
    from studio.training.prepare import prepare_run
    from studio.workspace import Workspace

    plan = planned(RunConfig.from_dict(config), Workspace.at(workspace))
    started = time.time()
    prepared = prepare_run(RunConfig.from_dict(config), Workspace.at(workspace))
    # The environment the job manager gives a worker (on a CPU: jemalloc where the system has it).
    env = dict(os.environ) if plan.get("planned_device") == "cuda" else allocator_env(dict(os.environ))
    code, _, stderr, memory = run_sampled([sys.executable, "-m", "studio.worker", str(prepared.run_dir)], cwd=ROOT, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    events, _ = read_events(prepared.run_dir)
    if code != 0 or not any(e.get("status") == "completed" for e in events):
        errors = [e for e in events if e["kind"] == "error"]
        raise RuntimeError(f"studio worker failed: {errors[-1]['message'] if errors else ''}\n{stderr[-3000:]}")
    settings = next(e for e in events if e["kind"] == "settings")
    running = next(e for e in events if e.get("status") == "running")
    progress = [e for e in events if e["kind"] == "progress" and e.get("step")]
    start, end = timed_window(progress, warmup)
    seconds = end["t"] - start["t"]
    steps = end["step"] - start["step"]
    batch = settings["batch_size"]
    metrics = json.loads((prepared.run_dir / "metrics.json").read_text())["train"]
    mean_tokens = running["train_tokens"] / running["train_examples"]
    samples_per_s = steps * batch / seconds
    return {
        "seconds": seconds, "steps": steps, "samples_per_s": samples_per_s, "tokens_per_s": samples_per_s * mean_tokens,
        "mean_tokens": mean_tokens, "peak_memory_gib": metrics.get("peak_memory_gib"), "tree_peak_gib": round(memory.peak_gib, 3),
        "memory_samples": memory.samples, "events": events,
        "estimated_peak_gib": metrics.get("estimated_peak_gib"), "settings": {k: v for k, v in settings.items() if k not in ("kind", "t")},
        "losses": [e["loss"] for e in events if e["kind"] == "log" and "loss" in e],
        "wall_s": round(time.time() - started, 1), "run_dir": str(prepared.run_dir), **plan,
        "phases_s": phases(started, next((e["t"] for e in events if e["kind"] == "progress"), None),
                           next((e["t"] for e in events if e["kind"] == "memory"), None), time.time()),
    }


def median_of(results: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(values) if values else None
