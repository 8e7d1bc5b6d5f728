"""A sweep against its estimate: one run of a config with its default preset (what a user runs
first; it also calibrates the estimate to this machine), then a sweep of that config in the same
workspace. Prints the estimate the sweep was given at its start beside the time it took, how many
trials the pruner stopped early, and the best trial's validation score beside the default run's.

    python benchmarks/sweep_estimate.py [CONFIG] [--trials 12] [--data FILE] [--pruner median]

Tens of minutes on a CPU for the bundled MiniLM on the sample reviews (the default).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def studio(*argv: str) -> str:
    """``studio ARGV`` in this process; what it printed (it must succeed)."""
    from studio.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    if code != 0:
        sys.exit(f"studio {' '.join(argv)} failed:\n{out.getvalue()[-3000:]}")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(ROOT / "assets/configs/sentiment_en.yaml"))
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--data", help="train on this file instead of the config's data.train")
    parser.add_argument("--pruner", default="median", choices=["median", "halving", "none"])
    parser.add_argument("--workspace", help="keep the workspace here (default: a temporary folder)")
    args = parser.parse_args()
    sets = ["--set", f"data.train={Path(args.data).resolve()}"] if args.data else []
    with tempfile.TemporaryDirectory(prefix="sweep-estimate-") as tmp:
        workspace = args.workspace or str(Path(tmp) / "workspace")
        started = time.time()
        studio("train", args.config, *sets, "--workspace", workspace, "--quiet")
        default_s = time.time() - started
        [run] = [p for p in (Path(workspace) / "runs").iterdir() if not p.name.startswith(".")]
        default_validation = json.loads((run / "metrics.json").read_text())["validation"]

        started = time.time()
        studio("sweep", args.config, *sets, "--trials", str(args.trials), "--pruner", args.pruner, "--workspace", workspace,
               "--quiet")
        took = time.time() - started
        [sweep_id] = [line.split()[0] for line in studio("sweep", "list", "--workspace", workspace).splitlines()]
        shown = json.loads(studio("sweep", "show", sweep_id, "--json", "--workspace", workspace))
    metric = shown["spec"]["metric"]
    statuses = [t["status"] for t in shown["trials"]]
    est = shown.get("estimate") or {}
    best = (shown.get("best") or {}).get("value")
    print(f"default preset run: {default_s:.0f} s, validation {metric} {default_validation.get(metric)}")
    print(f"sweep of {args.trials} trials ({args.pruner} pruner): took {took:.0f} s; estimated {est.get('expected_s', 0):.0f} s "
          f"(range {est.get('low_s', 0):.0f}-{est.get('high_s', 0):.0f} s, at most {est.get('ceiling_s', 0):.0f} s): "
          f"took/estimated {took / est['expected_s']:.2f}" if est else "no estimate was recorded")
    print(f"trials: {statuses.count('completed')} completed, {statuses.count('pruned')} pruned, "
          f"{len(statuses) - statuses.count('completed') - statuses.count('pruned')} other")
    print(f"best validation {metric}: {best} (default preset: {default_validation.get(metric)})")


if __name__ == "__main__":
    main()
