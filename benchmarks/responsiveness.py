"""Responsiveness benchmark: how fast the studio starts, how fast it answers pages that watch a
training run, and how much those pages slow the run down.

It starts ``studio serve`` on a free port with a temporary workspace (the bundled reviews saved
as a dataset), launches a run of the bundled MiniLM through the Train tab's API, and then:

1. opens N ``gradio_client`` sessions, each watching the run like an open Train tab (attach,
   then ``/train_poll`` every tick: the run's status and its new events). As the page's timer
   does, a session takes its next tick from each answer: the server spreads the pages' ticks
   when more of them are open than its budget of asks covers (``studio/ui/live.py``);
   ``--interval`` fixes the tick instead;
2. alternates windows of training alone and windows where every session polls, timing every
   call, and measures the training speed (steps/s from the run's ``events.jsonl`` progress
   events) in each window; the slowdown compares each polled window with the two alone windows
   around it (the median of those ratios), so a drift of the run or of the machine's other load
   is not blamed on the pollers.

Everything runs on this one machine: the pollers' own CPU (JSON parsing in the client) competes
with the training as much as the server's does, which makes the slowdown a pessimistic figure.

    python benchmarks/responsiveness.py [--pollers 20] [--window 15] [--rounds 3] [--interval S] [--torch-threads N]

It prints figures and the targets they are meant to meet; it decides nothing (no exit status
for a missed target): a benchmark reports, tests do not time anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.ui.live import TICK_S  # noqa: E402  (the page's tick while the server asks for no slower one)

BACKBONE = "all-MiniLM-L6-v2"
TARGETS = {"page_s": 6.0, "p95_ms": 200.0, "slowdown": 0.05}


# ---- the server ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workspace: Path, port: int, log: Path, torch_threads: int | None = None) -> tuple[subprocess.Popen, float]:
    """``studio serve`` in a child process, and the seconds until its page was first served."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("STUDIO_FAKE_GPUS", None)
    if torch_threads:
        env["OMP_NUM_THREADS"] = str(torch_threads)  # the worker inherits it; torch reads it when it starts
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "studio", "serve", "--port", str(port), "--workspace", str(workspace)],
                              cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                answer.read()
            return server, time.perf_counter() - started
        except (urllib.error.URLError, OSError):
            if time.perf_counter() - started > 180:
                stop_tree(server)
                raise SystemExit("the server did not answer within 180 s")
            time.sleep(0.02)


def stop_tree(server: subprocess.Popen) -> None:
    """Stop the server and whatever it started (the run's worker)."""
    import psutil

    try:
        children = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) a process has used so far; this process when ``pid`` is None."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def server_facts(pid: int) -> dict:
    import psutil

    process = psutil.Process(pid)
    return {"rss_mb": process.memory_info().rss / 2**20,
            "torch": any("torch" in os.path.basename(m.path) for m in process.memory_maps())}


# ---- the run ---------------------------------------------------------------------------------------
def launch_run(client, dataset: str, steps: int, batch_size: int = 8) -> str:
    """Queue a long MiniLM run through the Train tab's endpoint; returns its id."""
    from studio.ui.train_tab import ADVANCED

    keys = [key for _, _, key in ADVANCED]
    # Launch inputs: six settings, the GPU count and the run name come before the advanced fields.
    advanced = lambda key: f"param_{9 + keys.index(key)}"  # noqa: E731
    overrides = {advanced("training.max_steps"): steps, advanced("training.batch_size"): batch_size,
                 advanced("training.eval_strategy"): "no",  # no evaluation pauses inside a window
                 advanced("training.save_strategy"): "no"}
    answer = client.predict(api_name="/train_launch", src=f"dataset:{dataset}", task_name="classification",
                            backbone_name=BACKBONE, preset_name="quick", name="responsiveness", **overrides)
    message, run_id = str(answer[0]), answer[-1]  # the last output is the run this browser watches
    if "queue position" not in message or not isinstance(run_id, str):
        raise SystemExit(f"the run was not launched: {message}")
    return run_id


def progress(run_dir: Path) -> list[tuple[float, int]]:
    """(time, step) of every progress event the worker wrote so far."""
    points = []
    try:
        lines = (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return points
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line being written
        if event.get("kind") == "progress" and event.get("step"):
            points.append((float(event["t"]), int(event["step"])))
    return points


def wait_for_steps(run_dir: Path, steps: int, timeout: float) -> None:
    deadline = time.time() + timeout
    while not (points := progress(run_dir)) or points[-1][1] < steps:
        if time.time() > deadline:
            log = (run_dir / "worker.log").read_text(errors="replace")[-2000:] if (run_dir / "worker.log").exists() else ""
            raise SystemExit(f"the run did not reach step {steps} within {timeout:.0f} s\n{log}")
        time.sleep(0.5)


def step_rate(run_dir: Path, start: float, end: float) -> float | None:
    """Steps per second between the first and last progress events inside [start, end]."""
    inside = [(t, s) for t, s in progress(run_dir) if start <= t <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def measure_alone(run_dir: Path, window: float) -> float | None:
    start = time.time()
    time.sleep(window)
    return step_rate(run_dir, start, time.time())


# ---- the pollers -----------------------------------------------------------------------------------
@dataclass
class Poller:
    """One browser session watching the run: attached once, then a poll every ``interval``
    (the tick the server's last answer gave, unless ``fixed``).

    The page's tick is an event outside Gradio's queue, which the page sends as one plain HTTP
    request (``POST <root>/gradio_api/run/train_poll`` with its session) rather than the queue's
    join-and-stream; gradio_client always takes the queue's way, so the polls are sent as the
    page sends them, and gradio_client only attaches the session."""

    client: object
    interval: float
    fixed: bool = False
    latencies_ms: list[float] = field(default_factory=list)
    ticks: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    http: object = None

    def poll(self) -> list:
        import httpx

        if self.http is None:
            self.http = httpx.Client(base_url=self.client.src, timeout=60)
        answer = self.http.post("gradio_api/run/train_poll",
                                json={"data": [None], "event_data": None, "session_hash": self.client.session_hash})
        answer.raise_for_status()
        return answer.json()["data"]

    def attach(self, run_id: str) -> None:
        self.client.predict(api_name="/train_runs")  # fills this session's run choices, as the page does
        answer = self.client.predict(run_id, None, api_name="/train_attach")
        self.follow(answer[-3])  # the outputs end with the timer, the run list and the remembered run

    def follow(self, timer) -> None:
        """Take the page's next tick from an answer's timer ({"value": seconds, ...} when it changed)."""
        if not self.fixed and isinstance(timer, dict) and isinstance(timer.get("value"), (int, float)):
            self.interval = float(timer["value"])

    def run(self, until: float) -> None:
        next_call = time.perf_counter()
        while time.time() < until:
            began = time.perf_counter()
            try:
                answer = self.poll()
                self.latencies_ms.append((time.perf_counter() - began) * 1000)
                self.follow(answer[-1])
                self.ticks.append(self.interval)
            except Exception as error:  # noqa: BLE001 - counted and reported, the others go on
                self.errors.append(f"{type(error).__name__}: {error}")
            next_call += self.interval
            time.sleep(max(0.0, next_call - time.perf_counter()))


def open_sessions(url: str, count: int, interval: float | None, run_id: str) -> list[Poller]:
    from gradio_client import Client

    # ssl_verify=False: the URL is plain http on this machine, and with it on, gradio_client makes a
    # fresh TLS context (reading the CA bundle) for every call: ~50 ms of this machine's CPU a
    # call that a browser elsewhere would not take from the training.
    pollers = [Poller(Client(url, verbose=False, ssl_verify=False), interval or TICK_S, fixed=interval is not None)
               for _ in range(count)]
    for poller in pollers:
        poller.attach(run_id)
    return pollers


def poll_window(pollers: list[Poller], run_dir: Path, window: float) -> tuple[float | None, float]:
    """Run every poller for ``window`` seconds (starts spread over one interval, like pages
    opened at different moments); returns the training speed meanwhile and the seconds used."""
    start = time.time()
    until = start + window
    threads = []
    for i, poller in enumerate(pollers):
        delay = poller.interval * i / max(1, len(pollers))
        thread = threading.Thread(target=lambda p=poller, d=delay: (time.sleep(d), p.run(until)), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    end = time.time()
    return step_rate(run_dir, start, end), end - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def measure_rounds(server_pid: int, run_dir: Path, pollers: list[Poller], args) -> tuple:
    """Windows of training alone and with the pollers, alternated (alone first and last), so a
    drift of the run or of the machine's other load hits both sides alike."""
    alone, polled = [], []
    idle_cpu = server_cpu = client_cpu = took = 0.0
    for round_ in range(args.rounds + 1):
        print(f"round {round_ + 1}: training alone for {args.window:.0f} s…", flush=True)
        before = cpu_seconds(server_pid)
        alone.append(measure_alone(run_dir, args.window))
        idle_cpu += cpu_seconds(server_pid) - before
        if round_ == args.rounds:
            break
        every = f"every {args.interval:g} s" if args.interval else "at the server's tick"
        print(f"round {round_ + 1}: {len(pollers)} sessions polling {every} for {args.window:.0f} s…", flush=True)
        before = cpu_seconds(server_pid), cpu_seconds()
        rate, seconds = poll_window(pollers, run_dir, args.window)
        polled.append(rate)
        server_cpu += cpu_seconds(server_pid) - before[0]
        client_cpu += cpu_seconds() - before[1]
        took += seconds
    return alone, polled, idle_cpu / (args.window * len(alone)), server_cpu, client_cpu, took


def paired_slowdown(alone: list[float | None], polled: list[float | None]) -> float | None:
    """1 - the median of each polled window's speed over the mean of the two alone windows around
    it. The machine's speed drifts (other load, clocks) by more than the pollers cost; a window
    compared with its neighbours sees the drift on both sides, where the medians of all windows
    do not."""
    ratios = [p / ((a + b) / 2) for a, p, b in zip(alone, polled, alone[1:]) if a and p and b]
    return 1 - statistics.median(ratios) if ratios else None


def median_of(values: list[float | None]) -> float | None:
    known = [v for v in values if v]
    return statistics.median(known) if known else None


def rates(values: list[float | None]) -> str:
    return ", ".join(f"{v:.2f}" if v else "n/a" for v in values)


# ---- report ----------------------------------------------------------------------------------------
def report(rows: list[tuple[str, str, str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pollers", type=int, default=20, help="concurrent sessions watching the run (default 20)")
    parser.add_argument("--window", type=float, default=15.0, help="seconds of each measuring window (default 15)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of (training alone, training with pollers), plus a last window alone (default 3)")
    parser.add_argument("--interval", type=float, default=None,
                        help="seconds between two polls of one session (default: the tick the server gives, as the "
                             f"page's timer takes it; {TICK_S:g} s unless many pages are open)")
    parser.add_argument("--batch-size", type=int, default=8, help="the run's batch size (default 8: many short steps)")
    parser.add_argument("--warmup-steps", type=int, default=10, help="steps the run makes before measuring (default 10)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="CPU threads of the training worker (OMP_NUM_THREADS; default: torch's own choice)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace and print where it is")
    args = parser.parse_args()

    from gradio_client import Client

    from studio.demo import DATASET, seed_dataset
    from studio.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="studio-responsiveness-"))
    workspace = root / "workspace"
    seed_dataset(Workspace.at(workspace))
    port = free_port()
    print(f"starting the studio on port {port}…", flush=True)
    server, page_s = start_server(workspace, port, root / "server.log", args.torch_threads)
    try:
        url = f"http://127.0.0.1:{port}/"
        facts = server_facts(server.pid)
        client = Client(url, verbose=False, ssl_verify=False)
        run_id = launch_run(client, DATASET, steps=100_000, batch_size=args.batch_size)
        run_dir = workspace / "runs" / run_id
        print(f"run {run_id} launched; opening {args.pollers} sessions while it starts…", flush=True)
        pollers = open_sessions(url, args.pollers, args.interval, run_id)
        wait_for_steps(run_dir, args.warmup_steps, timeout=600)

        alone, polled, idle_cpu, server_cpu, client_cpu, took = measure_rounds(server.pid, run_dir, pollers, args)
        facts_after = server_facts(server.pid)
    finally:
        stop_tree(server)
        if args.keep:
            print(f"workspace kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    latencies = [ms for p in pollers for ms in p.latencies_ms]
    errors = [e for p in pollers for e in p.errors]
    ticks = [tick for p in pollers for tick in p.ticks]
    tick_text = (f"{min(ticks):g}–{max(ticks):g} s, median {statistics.median(ticks):g} s" if ticks else "n/a")
    alone_rate, polled_rate = median_of(alone), median_of(polled)
    slowdown = paired_slowdown(alone, polled)
    rows = [("figure", "measured", "target"),
            ("page first served after start", f"{page_s:.1f} s", f"< {TARGETS['page_s']:g} s"),
            ("server memory after start / at the end", f"{facts['rss_mb']:.0f} MB / {facts_after['rss_mb']:.0f} MB", ""),
            ("torch loaded in the server", "yes" if facts_after["torch"] else "no", "no"),
            ("/train_poll calls (status + events)", f"{len(latencies)} in {took:.0f} s, {len(errors)} failed", ""),
            ("tick of a page (the server's)" if not args.interval else "tick of a page (fixed)", tick_text, ""),
            ("latency p50", f"{percentile(latencies, 0.5):.0f} ms", ""),
            ("latency p95", f"{percentile(latencies, 0.95):.0f} ms", f"< {TARGETS['p95_ms']:g} ms"),
            ("latency max", f"{max(latencies, default=float('nan')):.0f} ms", ""),
            ("server CPU, sessions open but not polling", f"{idle_cpu * 100:.1f} % of a core", ""),
            # The server's own background work (its idle rate) is not the calls' cost.
            ("CPU per call: server / polling clients",
             f"{max(0.0, server_cpu - idle_cpu * took) * 1000 / max(1, len(latencies)):.0f} ms / "
             f"{client_cpu * 1000 / max(1, len(latencies)):.0f} ms", ""),
            ("training alone, median (windows)", f"{alone_rate or float('nan'):.2f} steps/s ({rates(alone)})", ""),
            (f"training with {args.pollers} sessions polling", f"{polled_rate or float('nan'):.2f} steps/s ({rates(polled)})", ""),
            ("training slowdown", f"{slowdown * 100:.1f} %" if slowdown is not None else "n/a",
             f"< {TARGETS['slowdown'] * 100:g} %")]
    print()
    print(report(rows))
    print(f"\n{os.cpu_count()} CPU core(s), load average {os.getloadavg()[0]:.1f} at the end; {args.pollers} sessions, "
          f"one poll each {f'every {args.interval:g} s' if args.interval else 'per server tick'}, {args.rounds} rounds of {args.window:g} s windows, batch size {args.batch_size}, "
          f"worker threads {args.torch_threads or 'torch default'}; pollers, "
          "server and training share this machine.")
    if errors:
        print("first errors:", *sorted(set(errors))[:3], sep="\n  ")


if __name__ == "__main__":
    main()
