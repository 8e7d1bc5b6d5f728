"""The Train tab's estimate against the run, on the bundled samples: time of the whole run and peak
memory, each as measured over the estimate (1.00 = exact; the goal is 0.75-1.25).

Each sample config trains twice in a fresh workspace: the first run's estimate is what a new user
sees (no run of this machine measured yet), the second's is calibrated by the first (its step time,
startup and evaluation rows, see ``studio.planning.calibration``).

    python benchmarks/estimate_accuracy.py [--configs sentiment_en.yaml sentiment_en_lora.yaml] [--max-steps 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one_run(config_path: Path, workspace: Path, max_steps: int | None) -> dict:
    from studio.cli import main
    from studio.config import RunConfig
    from studio.planning import plan_for
    from studio.runs.events import read_events
    from studio.tasks import with_defaults
    from studio.workspace import Workspace

    config = with_defaults(RunConfig.load(config_path))
    if max_steps:
        config.training.max_steps = max_steps
    ws = Workspace.at(workspace)
    plan = plan_for(config, ws, model_roots=None, gpus=[], cpu_slots=1)
    path = workspace / f"{config_path.stem}-{len(list(ws.runs.glob('*')))}.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()), encoding="utf-8")
    before = set(ws.runs.glob("*"))
    if main(["train", str(path), "--workspace", str(workspace), "--quiet"]) != 0:
        sys.exit(f"{config_path.name}: the run failed (see its worker.log under {workspace})")
    [run] = set(ws.runs.glob("*")) - before
    events = read_events(run)[0]
    wall = events[-1]["t"] - events[0]["t"]
    memory = next((e for e in reversed(events) if e.get("kind") == "memory"), {})
    return {"seconds": wall, "planned_s": plan.seconds, "range": plan.seconds_range, "calibrated": plan.calibrated or "model",
            "peak_gib": memory.get("peak_gib"), "planned_gib": plan.memory_gib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["sentiment_en.yaml", "sentiment_en_lora.yaml"])
    parser.add_argument("--max-steps", type=int, default=None, help="cap each run (default: the preset's epochs)")
    args = parser.parse_args()
    for name in args.configs:
        with tempfile.TemporaryDirectory(prefix="estimate-") as tmp:
            # The sample configs name their data relative to assets/configs.
            config_path = ROOT / "assets" / "configs" / name
            for attempt in ("first", "second"):
                r = one_run(config_path, Path(tmp), args.max_steps)
                time_ratio = r["seconds"] / r["planned_s"] if r["planned_s"] else None
                memory_ratio = r["peak_gib"] / r["planned_gib"] if r["peak_gib"] and r["planned_gib"] else None
                print(json.dumps({"config": name, "run": attempt, "estimate_from": r["calibrated"],
                                  "seconds": round(r["seconds"], 1), "planned_s": round(r["planned_s"] or 0, 1),
                                  "planned_range_s": [round(x, 1) for x in r["range"] or ()],
                                  "time_ratio": round(time_ratio, 2) if time_ratio else None,
                                  "peak_gib": r["peak_gib"], "planned_gib": round(r["planned_gib"] or 0, 3),
                                  "memory_ratio": round(memory_ratio, 2) if memory_ratio else None}), flush=True)


if __name__ == "__main__":
    main()
