"""``studio runs ...`` and ``studio queue``: the job system from a terminal.

These commands read and change the run index of a workspace; they start nothing themselves
except ``studio queue --work``, which schedules queued runs on this machine until the queue is
empty (for a box without the web server).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from studio.errors import StudioError
from studio.runs.state import ACTIVE


def _manager(args, *, supervise: bool = False, **kwargs):
    from studio.jobs.manager import JobManager
    from studio.workspace import Workspace

    return JobManager(Workspace.at(args.workspace), supervise=supervise, **kwargs)


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else "-"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _progress(r) -> str:
    if r.step is None:
        return "-"
    return f"{r.step}/{r.total_steps}" if r.total_steps else str(r.step)


def _metric(r) -> str:
    if r.metric_value is None:
        return "-"
    return f"{r.metric_name}={r.metric_value:.4f}" if isinstance(r.metric_value, float) else f"{r.metric_name}={r.metric_value}"


def _where(r) -> str:
    """The devices a local run holds, or the cluster node a Ray run is on."""
    if r.executor != "local":
        return f"{r.executor}:{r.node}" if r.node else r.executor
    return ",".join(r.devices) or "-"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def cmd_runs_list(args) -> int:
    manager = _manager(args)
    runs = manager.list(status=args.status, owner=args.owner, task=args.task, limit=args.limit)
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], ensure_ascii=False, indent=2, default=str))
        return 0
    if not runs:
        print("no runs" + (" matching" if args.status or args.owner or args.task else ""))
        return 0
    rows = []
    for r in runs:
        status = f"{r.status} #{r.position}" if r.position else r.status
        rows.append([r.id, status, r.owner or "-", r.task or "-", _progress(r), _metric(r),
                     _where(r), _when(r.created), _size(manager.disk_usage(r.id)),
                     r.sweep or "-"])  # sweep: the sweep a trial's run belongs to (studio sweep show ID)
    print(_table(rows, ["run", "status", "owner", "task", "step", "metric", "devices", "created", "disk", "sweep"]))
    return 0


def cmd_runs_show(args) -> int:
    manager = _manager(args)
    r = manager.get(args.run)
    if args.json:
        print(json.dumps({**r.to_dict(), "disk_bytes": manager.disk_usage(r.id)}, ensure_ascii=False, indent=2, default=str))
        return 0
    checkpoint = manager.checkpoint(r.id)
    fields = [
        ("run", r.id), ("name", r.name or "-"),
        ("status", r.status + (f" (position {r.position} in the queue)" if r.position else "")),
        ("owner", r.owner or "-"), ("task", r.task or "-"), ("backbone", r.backbone or "-"),
        ("devices", ",".join(r.devices) or (f"{r.gpus} GPU(s) requested" if r.gpus else "a CPU slot requested")),
        ("pid", r.pid or "-"),
        *([("executor", r.executor), ("ray job", r.job_id or "-"), ("node", r.node or "-")] if r.executor != "local" else []),
        ("progress", _progress(r)), ("metric", _metric(r)),
        ("created", _when(r.created)), ("started", _when(r.started)), ("ended", _when(r.ended)),
        ("checkpoint", checkpoint.name if checkpoint else "-"), ("disk", _size(manager.disk_usage(r.id))),
        ("folder", r.run_dir),
    ]
    fields += _speed_fields(Path(r.run_dir))
    if r.error_kind or r.error_message:
        fields.append(("error", f"({r.error_kind or r.status}) {r.error_message or ''}".strip()))
    if r.error_hint:
        fields.append(("hint", r.error_hint))
    for key, value in fields:
        print(f"{key:>10}: {value}")
    if args.events:
        events, _ = manager.events(r.id)
        print(f"\nlast {min(args.events, len(events))} events:")
        for e in events[-args.events:]:
            print("  " + json.dumps(e, ensure_ascii=False, default=str))
    return 0


def _speed_fields(run_dir: Path) -> list[tuple[str, str]]:
    """What the worker chose for the machine (settings.json) and the memory it measured (metrics.json)."""
    from studio.jobs.store import read_json_dict
    from studio.runs import RunDir
    from studio.training.speed import describe, describe_memory

    fields = []
    settings = read_json_dict(RunDir(run_dir).settings)
    if settings:
        fields.append(("settings", describe(settings)))
    train = read_json_dict(RunDir(run_dir).metrics).get("train") or {}
    if "peak_memory_gib" in train:
        on_gpu = settings.get("device") == "cuda"
        fields.append(("memory", describe_memory(train.get("peak_memory_gib"), train.get("estimated_peak_gib"), on_gpu)))
    return fields


def cmd_runs_submit(args) -> int:
    from studio.config import RunConfig

    config = RunConfig.load(args.config).with_overrides(args.set or [])
    manager = _manager(args)
    run_id = manager.submit(config, owner=args.owner or getpass.getuser(), gpus=args.gpus, executor=args.executor)
    record = manager.get(run_id)
    print(f"queued {run_id}" + (f" (position {record.position})" if record.position else f" ({record.status})"))
    return 0


def cmd_runs_cancel(args) -> int:
    manager = _manager(args)
    if not args.no_wait and manager.get(args.run).active:
        print(f"stopping {args.run}: it saves a checkpoint at its next step "
              f"(killed after {manager.cancel_grace_s:.0f}s otherwise)")
    record = manager.cancel(args.run, wait=not args.no_wait)
    print(f"{record.id}: {record.status}" + (" (stop requested)" if record.active else ""))
    return 0


def cmd_runs_resume(args) -> int:
    manager = _manager(args)
    checkpoint = manager.checkpoint(args.run) if manager.get(args.run).status in ("interrupted", "failed", "cancelled") else None
    record = manager.resume(args.run)
    where = f"from {checkpoint.name}" if checkpoint else "from the start (no complete checkpoint)"
    print(f"{record.id}: queued at position {record.position}, resumes {where}")
    return 0


def cmd_runs_delete(args) -> int:
    manager = _manager(args)
    record = manager.get(args.run)
    if not args.yes:
        if not sys.stdin.isatty():
            raise StudioError("refusing to delete without confirmation", hint="add --yes")
        answer = input(f"delete run {record.id} ({record.status}, {_size(manager.disk_usage(record.id))})? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    manager.delete(args.run, force=args.force)
    print(f"deleted {args.run}")
    return 0


def cmd_runs_reindex(args) -> int:
    manager = _manager(args)
    runs = manager.reindex()
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    print(f"indexed {len(runs)} run(s)" + (": " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if runs else ""))
    return 0


def cmd_queue(args) -> int:
    if args.work:
        return _work(args)
    manager = _manager(args)
    for run_id, direction in ((args.up, "up"), (args.down, "down"), (args.top, "top"), (args.bottom, "bottom")):
        if run_id:
            position = manager.move(run_id, direction)
            print(f"{run_id} is now at position {position}")
    active = manager.list(status=ACTIVE)
    queued = manager.queue()
    if not active and not queued:
        print("the queue is empty and nothing is running")
        return 0
    rows = [["-", r.id, r.status, r.owner or "-", _where(r), _progress(r)] for r in active]
    rows += [[str(r.position), r.id, "queued", r.owner or "-", f"{r.gpus} GPU" if r.gpus else "CPU", "-"] for r in queued]
    print(_table(rows, ["#", "run", "status", "owner", "devices", "step"]))
    return 0


def _work(args) -> int:
    manager = _manager(args, supervise=True, cpu_slots=args.cpu_slots)
    print(f"scheduling on {', '.join(manager.devices.gpus) or f'{manager.devices.cpu_slots} CPU slot(s)'}; Ctrl-C stops "
          "scheduling (running workers continue)")
    try:
        while manager.queue() or manager.list(status=ACTIVE):
            time.sleep(max(manager.poll_s, 1.0))
    except KeyboardInterrupt:
        pass
    finally:
        manager.shutdown()
    return 0


def add_commands(subparsers) -> None:
    """Register ``studio runs ...`` and ``studio queue`` on the main parser's subparsers."""
    ws = dict(default=argparse.SUPPRESS, help="workspace folder (default: $STUDIO_WORKSPACE or ./workspace)")

    runs = subparsers.add_parser("runs", help="list, inspect, cancel, resume and delete runs")
    runs.add_argument("--workspace", **ws)
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="{list,show,submit,cancel,resume,delete,reindex}")
    runs.set_defaults(func=lambda args: (runs.print_help(), 0)[1])

    p = runs_sub.add_parser("list", help="runs, newest first")
    p.add_argument("--status", action="append", help="only this status (repeatable)")
    p.add_argument("--owner")
    p.add_argument("--task")
    p.add_argument("--limit", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--workspace", **ws)
    p.set_defaults(func=cmd_runs_list)

    p = runs_sub.add_parser("show", help="one run: status, progress, error, checkpoint, disk")
    p.add_argument("run")
    p.add_argument("--events", type=int, default=0, metavar="N", help="also print its last N events")
    p.add_argument("--json", action="store_true")
    p.add_argument("--workspace", **ws)
    p.set_defaults(func=cmd_runs_show)

    p = runs_sub.add_parser("submit", help="validate a config and queue the run")
    p.add_argument("config")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--gpus", type=int, default=1, help="GPUs for the run (0 = CPU; more than 1 trains data-parallel)")
    p.add_argument("--owner", help="default: your user name")
    p.add_argument("--executor", choices=("local", "ray"),
                   help="where it trains: this machine or the Ray cluster (default: the workspace's executor setting)")
    p.add_argument("--workspace", **ws)
    p.set_defaults(func=cmd_runs_submit)

    p = runs_sub.add_parser("cancel", help="stop a run (it saves a checkpoint first)")
    p.add_argument("run")
    p.add_argument("--no-wait", action="store_true", help="ask it to stop and return at once")
    p.add_argument("--workspace", **ws)
    p.set_defaults(func=cmd_runs_cancel)

    p = runs_sub.add_parser("resume", help="queue an interrupted, failed or cancelled run again from its last checkpoint")
    p.add_argument("run")
    p.add_argument("--workspace", **ws)
    p.set_defaults(func=cmd_runs_resume)

    p = runs_sub.add_parser("delete", help="delete a run's files and record")
    p.add_argument("run")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--force", action="store_true", help="kill it first if it is running")
    p.add_argument("--workspace", **ws)
    p.set_defaults(func=cmd_runs_delete)

    p = runs_sub.add_parser("reindex", help="rebuild the run index from the run folders")
    p.add_argument("--workspace", **ws)
    p.set_defaults(func=cmd_runs_reindex)

    q = subparsers.add_parser("queue", help="show the queue (and move runs in it)")
    q.add_argument("--up", metavar="RUN", help="move a queued run one place up")
    q.add_argument("--down", metavar="RUN", help="move a queued run one place down")
    q.add_argument("--top", metavar="RUN", help="move a queued run to the front")
    q.add_argument("--bottom", metavar="RUN", help="move a queued run to the back")
    q.add_argument("--work", action="store_true",
                   help="start queued runs on this machine and watch them until the queue is empty")
    q.add_argument("--cpu-slots", type=int, default=1, help="with --work: runs that may train on the CPU at once")
    q.add_argument("--workspace", **ws)
    q.set_defaults(func=cmd_queue)
