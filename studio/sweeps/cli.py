"""``studio sweep``: hyperparameter search from a terminal.

    studio sweep CONFIG --trials 12 [--space space.yaml] [--parallel 2]   create a sweep and drive it here
    studio sweep show ID                                                  the leaderboard and the best trial
    studio sweep list | resume ID | cancel ID [--stop-running] | space CONFIG

The driver runs in this process with its own job manager (it schedules the trials' runs on this
machine, as ``studio queue --work`` does); killed, ``studio sweep resume ID`` continues it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from studio.errors import ConfigError, StudioError

ACTIONS = ("show", "list", "resume", "cancel", "space")


def _manager(args, *, supervise: bool):
    from studio.jobs.manager import JobManager
    from studio.workspace import Workspace

    return JobManager(Workspace.at(args.workspace), supervise=supervise, cpu_slots=max(1, getattr(args, "parallel", 1) or 1))


def _config(args):
    from studio.config import RunConfig

    return RunConfig.load(args.target).with_overrides(args.set or [])


def _load_space(path: str | None):
    from studio.sweeps.space import parse_space

    if not path:
        return None
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read the search space {path}: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"the search space {path} is not valid YAML: {error}") from None
    return parse_space(data)


def estimate_text(est: dict) -> str:
    """'9.5-14.2 min, at most 31.0 min without pruning' from a recorded ``SweepEstimate``."""
    from studio.sweeps.report import seconds_text

    low, high = seconds_text(est["low_s"]), seconds_text(est["high_s"])
    return f"{low} to {high}, at most {seconds_text(est['ceiling_s'])} if every trial trained to its end"


def print_report(manager, sweep_id: str, out=sys.stdout) -> None:
    from studio.sweeps import study as studies
    from studio.sweeps.report import report, seconds_text, settings_text, value_text

    r = report(manager, sweep_id)
    spec = r.spec
    better = "higher" if spec.greater else "lower"
    print(f"sweep {spec.id}: {r.status}, {r.finished} of {spec.trials} trials over; validation {spec.metric} "
          f"({better} is better), pruner {spec.pruner}, seed {spec.seed}", file=out)
    if r.elapsed_s is not None:
        took = "took" if r.status not in studies.OPEN else "running for"
        print(f"{took} {seconds_text(r.elapsed_s)}" + (f" (estimated {estimate_text(r.estimate)})" if r.estimate else ""), file=out)
    rows = [[str(row.trial), row.run_id or "-", row.status, value_text(row.value), seconds_text(row.seconds),
             settings_text(row.settings)] for row in r.rows]
    header = ["trial", "run", "status", f"validation {spec.metric}", "time", "settings"]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    for line in [header, *rows]:
        print("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip(), file=out)
    if r.best is not None:
        test = (r.test or {}).get(spec.metric)
        tested = f"; test {spec.metric} {test:.4f} (the only trial scored on the test split)" \
            if isinstance(test, (int, float)) else ("; its test score comes when the sweep ends" if r.status != "completed" else "")
        print(f"best: trial {r.best.trial}, run {r.best.run_id}, validation {spec.metric} {value_text(r.best.value)}{tested}",
              file=out)
        print(f"use it: studio predict {r.best.run_id} --input FILE, studio export {r.best.run_id} --output DIR, "
              f"or train its settings again from {Path(manager.run_dir(r.best.run_id)) / 'config.yaml'}", file=out)


def _drive(manager, sweep_id: str, quiet: bool) -> int:
    from studio.sweeps.driver import SweepDriver
    from studio.sweeps.report import report, value_text

    seen: dict[int, str] = {}

    def progress(status: str) -> None:
        if quiet:
            return
        for row in sorted(report(manager, sweep_id).rows, key=lambda row: row.trial):
            if seen.get(row.trial) != row.status:
                seen[row.trial] = row.status
                print(f"trial {row.trial} ({row.run_id or '-'}): {row.status}"
                      + (f", validation {value_text(row.value)}" if row.value is not None else ""), flush=True)

    try:
        status = SweepDriver(manager, sweep_id).drive(poll_s=1.0, on_tick=progress)
    finally:
        manager.shutdown()
    print_report(manager, sweep_id)
    return 0 if status == "completed" else 1


def cmd_sweep(args) -> int:
    from studio.sweeps import driver, study

    if args.target not in ACTIONS:  # studio sweep CONFIG ...
        if not args.trials:
            raise ConfigError("how many trials? e.g. studio sweep config.yaml --trials 12")
        manager = _manager(args, supervise=True)
        try:
            sweep_id = driver.create_sweep(manager, _config(args), trials=args.trials, space=_load_space(args.space),
                                           parallel=args.parallel, timeout_s=args.timeout * 60 if args.timeout else None,
                                           pruner=args.pruner, seed=args.seed, gpus=args.gpus)
        except BaseException:
            manager.shutdown()
            raise
        print(f"sweep {sweep_id}: {args.trials} trials, {args.parallel} at a time (studio sweep show {sweep_id})", flush=True)
        estimate = study.load(manager.workspace, sweep_id).user_attrs.get("estimate")
        if estimate:
            print(f"estimate: {estimate_text(estimate)}", flush=True)
        return _drive(manager, sweep_id, args.quiet)
    action = args.target
    if action == "space":
        from studio.sweeps.space import space_to_dict

        if not args.id:
            raise ConfigError("studio sweep space CONFIG: which config?")
        args.target = args.id
        manager = _manager(args, supervise=False)
        print(yaml.safe_dump(space_to_dict(driver.base_space(manager, _config(args))), sort_keys=False), end="")
        return 0
    if action == "list":
        manager = _manager(args, supervise=False)
        ids = study.sweep_ids(manager.workspace)
        for sweep_id in ids:
            s = study.load(manager.workspace, sweep_id)
            spec = study.spec_of(s)
            print(f"{sweep_id}  {study.status_of(s):9}  {len(s.trials)}/{spec.trials} trials  {spec.metric}")
        if not ids:
            print("no sweeps")
        return 0
    if not args.id:
        raise StudioError(f"studio sweep {action} ID: which sweep? (studio sweep list)")
    if action == "show":
        manager = _manager(args, supervise=False)
        if args.json:
            from dataclasses import asdict

            from studio.sweeps.report import report

            r = report(manager, args.id)
            print(json.dumps({"spec": asdict(r.spec), "status": r.status, "trials": [asdict(x) for x in r.rows],
                              "best": asdict(r.best) if r.best else None, "test": r.test, "estimate": r.estimate,
                              "elapsed_s": r.elapsed_s}, ensure_ascii=False, indent=2, default=str))
        else:
            print_report(manager, args.id)
        return 0
    if action == "cancel":
        manager = _manager(args, supervise=False)
        n = driver.cancel_sweep(manager, args.id, stop_running=args.stop_running)
        which = "queued and running" if args.stop_running else "queued"
        rest = "running ones save a checkpoint and stop" if args.stop_running else "running ones finish"
        print(f"sweep {args.id} cancelled: no new trials, {n} {which} trial{'s' if n != 1 else ''} cancelled; {rest}")
        return 0
    manager = _manager(args, supervise=True)  # resume
    driver.reopen_sweep(manager, args.id)
    return _drive(manager, args.id, args.quiet)


def add_commands(sub) -> None:
    sweep = sub.add_parser("sweep", help="hyperparameter search: many runs of one config, the best kept (Optuna)",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("target", metavar="CONFIG|ACTION", help=f"a run config (YAML), or one of: {', '.join(ACTIONS)}")
    sweep.add_argument("id", nargs="?", help="the sweep (show, resume, cancel) or the config (space)")
    sweep.add_argument("--trials", type=int, help="how many trials (runs) to train")
    sweep.add_argument("--space", help="search space (YAML: config key -> {low, high, log} or {choices}); default: "
                                       "the task's and method's usual settings (studio sweep space CONFIG prints them)")
    sweep.add_argument("--parallel", type=int, default=1, help="trials training at once (default 1)")
    sweep.add_argument("--timeout", type=float, metavar="MINUTES", help="start no trial after this many minutes")
    sweep.add_argument("--pruner", choices=["median", "halving", "none"], default="median",
                       help="how hopeless trials are stopped early (default: median)")
    sweep.add_argument("--seed", type=int, default=0, help="the sampler's seed: the same seed asks the same trials")
    sweep.add_argument("--gpus", type=int, default=1, help="GPUs per trial (default 1; a CPU slot without a GPU)")
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key of the base config")
    sweep.add_argument("--stop-running", action="store_true",
                       help="cancel: stop the running trials too (by default they finish and are recorded)")
    sweep.add_argument("--json", action="store_true", help="show: as JSON")
    sweep.add_argument("--quiet", action="store_true", help="no line per trial while driving")
    sweep.add_argument("--workspace", default=argparse.SUPPRESS)
    sweep.set_defaults(func=cmd_sweep)
