"""The ``studio`` command line: train, predict, and list what is available.

User mistakes (``StudioError``) print one readable message and exit 2; no traceback.
Longer than 500 lines: one short function per command and the argument parser that lists them
all; the work of each command lives in the package it names (jobs, sweeps, inference...).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from studio.errors import StudioError

# Seconds a cancelled worker gets to checkpoint before it is killed.
STOP_GRACE_S = 60


def _workspace(args):
    from studio.workspace import Workspace

    return Workspace.at(args.workspace)


def _print_problems(prepared) -> None:
    for note in prepared.notes:
        print(f"note: {note}")
    for problem in prepared.problems:
        print(f"{problem.level}: {problem.message}")


def _fmt_metrics(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
                     if isinstance(v, (int, float)) and v is not None)


class Follower:
    """The CLI's view of a run: its events folded by the run state, notes printed as lines and
    the progress shown as a bar: the training steps, then each scoring of a split with its own
    bar ('scoring test split 120/300', ETA); an evaluation while training shows on the steps' bar."""

    def __init__(self, run_dir: Path, *, quiet: bool = False):
        from studio.runs.state import RunState

        self.run_dir = run_dir
        self.quiet = quiet
        self.state = RunState()
        self.bar = None
        self._bar_of: tuple | None = None
        """What the bar shows: None for the training steps, else the phase's (phase, split, part)."""
        self._shown: tuple | None = None

    def poll(self) -> bool:
        """Show what was written since the last poll; False when nothing was."""
        from studio.runs.events import iter_events

        read = False
        for _, end, event in iter_events(self.run_dir, self.state.offset):
            self.state.offset = end
            read = True
            note = self.state.apply(event)
            if note is not None:
                self._print(note)
            self._progress()
        return read

    def _progress(self) -> None:
        from tqdm import tqdm

        from studio.runs.state import ACTIVE

        state = self.state
        # The bar shows the attempt's training; it is gone once an error was printed.
        if state.error is not None or state.status not in ACTIVE:
            return
        phase = state.phase
        if phase is not None and phase.phase != "evaluating":
            self._phase(phase)
            return
        if not state.total_steps or state.step is None:
            return
        evaluating = phase_text(phase) if phase is not None else None
        shown = (state.total_steps, state.step, state.epoch, state.loss, evaluating)
        if shown == self._shown:
            return
        self._shown = shown
        if self._bar_of is not None:
            self.close()
        if self.bar is None:
            self.bar = tqdm(total=state.total_steps, unit="step", disable=self.quiet, dynamic_ncols=True)
            self._bar_of = None
        self.bar.total = state.total_steps
        self.bar.n = state.step
        epoch = f"epoch={state.epoch or 0:.2f}"
        postfix = f"loss={state.loss:.4f} {epoch}" if state.loss is not None else epoch
        self.bar.set_postfix_str(f"{postfix} {evaluating}" if evaluating else postfix)
        self.bar.refresh()

    def _phase(self, phase) -> None:
        """A bar of its own for the scoring of a split: 'scoring test split 120/300', its ETA."""
        from tqdm import tqdm

        key = (phase.phase, phase.split, phase.part)
        shown = (key, phase.done, phase.total)
        if shown == self._shown:
            return
        self._shown = shown
        if self.bar is not None and self._bar_of != key:
            self.close()
        if self.bar is None:
            self.bar = tqdm(total=phase.total or 0, desc=phase_text(phase, counts=False), unit="ex", disable=self.quiet,
                            dynamic_ncols=True, bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| {postfix}")
            self._bar_of = key
        self.bar.total = phase.total or 0
        self.bar.n = phase.done or 0
        self.bar.set_postfix_str(f"ETA {_duration(phase.eta_s)}" if phase.eta_s is not None else "")
        self.bar.refresh()

    def _print(self, note) -> None:
        from studio.runs.event_types import Error

        if isinstance(note.event, Error):
            self.close()
            print("\n".join(_error_lines(note.event)), file=sys.stderr)
            return
        line = _line(note.event, self.quiet)
        if line:
            (self.bar.write if self.bar else print)(line)

    def close(self) -> None:
        if self.bar:
            self.bar.close()
            self.bar = None
        self._bar_of = None


def phase_text(phase, counts: bool = True) -> str:
    """A phase event in words: 'scoring test split (loss) 120/300'."""
    where = f" {phase.split} split" if phase.split else ""
    part = f" ({phase.part})" if phase.part else ""
    done = f" {phase.done or 0}/{phase.total or 0}" if counts else ""
    return f"{phase.phase}{where}{part}{done}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def _line(event, quiet: bool) -> str | None:
    """What the CLI prints of a note's event (None: nothing)."""
    from studio.runs.event_types import Eval, Log, Memory, Settings, Status
    from studio.training.speed import MEASURED_GPU, describe, describe_memory

    shown = {
        Log: lambda e: e.message,
        Eval: lambda e: f"{e.split} @ step {e.step}: {_fmt_metrics(e.metrics or {})}",
        Settings: lambda e: None if quiet else f"settings: {describe(e.values)}",
        Memory: lambda e: None if quiet else "memory: " + describe_memory(e.peak_gib, e.estimated_gib, e.measured == MEASURED_GPU),
        Status: lambda e: None if quiet else _status_line(e),
    }
    render = shown.get(type(event))
    return render(event) if render else None


def _status_line(e) -> str | None:
    if e.status == "running":
        return (f"training on {e.device}: {e.train_examples} examples, {e.total_steps} steps, "
                f"{e.trainable_parameters:,} trainable parameters")
    if e.status == "cancelling":
        return f"cancelling at step {e.step}: saving a checkpoint, then stopping"
    return None


def _error_lines(e) -> list[str]:
    lines = [f"error ({e.error_kind}): {e.message}"]
    if e.hint:
        lines.append(f"  hint: {e.hint}")
    if e.error_kind == "internal":
        lines.append("  last lines of worker.log:\n    " + "\n    ".join((e.log_tail or [])[-8:]))
    return lines


def follow_run(run_dir: Path, process: subprocess.Popen, *, quiet: bool = False) -> int:
    """Show the worker's events as a progress bar until it exits; Ctrl-C asks it to stop."""
    from studio.runs import RunDir

    follower = Follower(run_dir, quiet=quiet)
    try:
        while True:
            follower.poll()
            if process.poll() is not None:
                if not follower.poll():
                    break
                continue
            time.sleep(0.3)
    except KeyboardInterrupt:
        print("\nstopping: saving a checkpoint (Ctrl-C again to kill)", file=sys.stderr)
        RunDir(run_dir).request_stop()
        try:
            process.wait(STOP_GRACE_S)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            from studio.jobs.process import kill_tree

            kill_tree(process.pid)  # the worker and anything it started (data loader workers)
        return 130
    finally:
        follower.close()
    if process.returncode and follower.state.status not in ("failed", "cancelled"):
        print(f"the training process ended unexpectedly (exit code {process.returncode}); see {RunDir(run_dir).log}", file=sys.stderr)
    return process.returncode or 0


def spawn_worker(run_dir: Path, resume: bool = False) -> subprocess.Popen:
    from studio.gpus import detected_gpus
    from studio.allocator import allocator_env
    from studio.jobs.manager import worker_command
    from studio.jobs.process import spawn

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    if not detected_gpus():
        env = allocator_env(env)  # as the job manager starts a CPU run (studio.allocator)
    return spawn(worker_command(run_dir, gpus=1, resume=resume), run_dir, env)


def cmd_train(args) -> int:
    from studio.config import RunConfig
    from studio.data.profile import format_profile
    from studio.tasks import with_defaults
    from studio.training.prepare import prepare_run

    config = with_defaults(RunConfig.load(args.config).with_overrides(args.set or []))
    workspace = _workspace(args)
    executor = _train_executor(args, workspace)
    if executor != "local":  # a cluster's job: queued and watched through the job manager
        from studio.jobs.managed_run import submit_and_follow

        run_dir, code = submit_and_follow(workspace, config, executor,
                                          lambda run_dir, handle: follow_run(run_dir, handle, quiet=args.quiet))
        return _report(run_dir, code, followed=not args.quiet)
    print(f"preparing: task {config.task.name}, backbone {config.model.backbone}, method {config.method.kind}")
    prepared = prepare_run(config, workspace)
    _print_problems(prepared)
    print(format_profile(prepared.profile))
    t = prepared.config.training
    print(f"run {prepared.run_id}: preset {t.preset}, {t.epochs} epoch(s), lr {t.learning_rate}, batch {t.batch_size}, "
          f"max length {t.max_length}\n  folder: {prepared.run_dir}")
    code = follow_run(prepared.run_dir, spawn_worker(prepared.run_dir), quiet=args.quiet)
    return _report(prepared.run_dir, code, followed=not args.quiet)


def _train_executor(args, workspace) -> str:
    """Where ``studio train`` trains: ``--executor``, else the workspace's ``executor`` setting."""
    from studio.settings import SettingsStore

    return getattr(args, "executor", None) or SettingsStore(workspace.root).load().executor


def _report(run_dir: Path, code: int, followed: bool = False) -> int:
    """The run's scores; ``followed``: its log was printed as it ran (the baseline comparison and
    where early stopping ended it are in it already)."""
    from studio.runs import RunDir
    from studio.tasks.baseline import compare

    metrics_path = RunDir(run_dir).metrics
    if code == 0 and metrics_path.exists():
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        for split in ("validation", "test"):
            if split in metrics:
                print(f"{split}: {_fmt_metrics(metrics[split])}")
            if f"{split}_base" in metrics:
                print(f"{split}, base model before fine-tuning: {_fmt_metrics(metrics[f'{split}_base'])}")
        comparison = compare(metrics)
        if comparison and (not followed or comparison.beaten):  # a loss was logged already
            print(comparison.english())
        stopped = (metrics.get("train") or {}).get("stopped_early")
        if stopped and not followed:
            print(stopped["message"])
        print(f"model saved in {RunDir(run_dir).model}")
    return code


def _run_dir(args, run: str) -> Path:
    path = Path(run)
    if path.is_dir():
        return path
    candidate = _workspace(args).runs / run
    if candidate.is_dir():
        return candidate
    raise StudioError(f"no run '{run}': give a run folder or the id of a run in the workspace")


def cmd_predict(args) -> int:
    from studio.inference.files import predict_file
    from studio.inference.loading import load_trained

    trained = load_trained(_run_dir(args, args.run))
    done = predict_file(trained, args.input, args.output)
    for p in done.problems:
        print(f"{p.level}: {p.message}", file=sys.stderr)
    print(f"{done.rows} predictions written to {done.path}")
    return 0


def cmd_export(args) -> int:
    from studio.inference.export import export_model

    out = export_model(_run_dir(args, args.run), args.output, merge=args.merge)
    print(f"model written to {out}" + (" (LoRA adapter merged into the base weights)" if args.merge else ""))
    return 0


def cmd_models(args) -> int:
    from studio.models import catalog
    from studio.models.resolve import bundled_path, cached_snapshot

    print(f"{'name':26} {'kind':8} {'size':>6}  {'licence':11} {'offline':8} languages")
    for b in catalog.CATALOG:
        offline = "bundled" if b.bundled and bundled_path(b) else ("cached" if cached_snapshot(b.hub_id) else "-")
        print(f"{b.name:26} {b.kind:8} {b.size:>6}  {b.license:11} {offline:8} {b.languages}")
    return 0


def cmd_tasks(args) -> int:
    from studio.tasks import list_tasks

    for task in list_tasks():
        print(f"{task.name:16} {task.title}: {task.description}\n{'':16} columns: "
              + ", ".join(f"{role} ({desc})" for role, desc in task.roles.items()))
    return 0


def cmd_serve(args) -> int:
    from studio.web.server import serve

    return serve(host=args.host, port=args.port, workspace=args.workspace, model_dirs=args.model_dir,
                 insecure=args.insecure, max_upload_mb=args.max_upload_mb, behind_https=args.behind_https)


def cmd_demo(args) -> int:
    from studio.demo import DEFAULT_WORKSPACE, demo

    return demo(workspace=args.workspace or DEFAULT_WORKSPACE, port=args.port, share=args.share)


def _read_password(args, confirm: bool = True) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    password = getpass.getpass("password: ")
    if confirm and getpass.getpass("again: ") != password:
        raise StudioError("the two passwords differ; nothing was changed")
    return password


def cmd_users(args) -> int:
    from studio.users import UserStore
    from studio.web.sessions import AuthStore

    root = _workspace(args).root
    store = UserStore(root)
    if args.action in ("lockouts", "unlock", "signout"):
        return _sign_in_command(args, AuthStore(root))
    if args.action == "list":
        users = store.list()
        for user in users:
            print(f"{user.name:24} {user.role}")
        if not users:
            print("no users: the studio runs without login (only on this machine's loopback address)")
    elif args.action == "add":
        user = store.add(args.name, _read_password(args), args.role)
        print(f"added {user.name} ({user.role})")
    elif args.action == "passwd":
        store.set_password(args.name, _read_password(args))
        print(f"password of {args.name} changed")
    elif args.action == "role":
        store.set_role(args.name, args.role)
        print(f"{args.name} is now {args.role}")
    elif args.action == "remove":
        store.remove(args.name)
        print(f"removed {args.name}")
    if args.action in ("passwd", "role", "remove"):
        # A running server ends them too (the user's stamp changed); this also clears the file.
        ended = AuthStore(root).end_user(args.name)
        if ended:
            print(f"ended {ended} sign-in{'s' if ended != 1 else ''} of {args.name}")
    return 0


def _sign_in_command(args, auth) -> int:
    from studio.web.sessions import account_key, address_key

    if args.action == "lockouts":
        lockouts = auth.lockouts()
        for lockout in lockouts:
            wait = f"locked for {lockout.retry_after:.0f} s more" if lockout.retry_after else "not locked"
            print(f"{lockout.kind:8} {lockout.subject:32} {lockout.failures} failed sign-in(s) in a row, last "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(lockout.last_failure))}; {wait}")
        if not lockouts:
            print("no failed sign-ins")
    elif args.action == "unlock":
        key = address_key(args.subject) if args.address else account_key(args.subject)
        print(f"cleared the failed sign-ins of {args.subject}" if auth.clear(key) else f"{args.subject} had no failed sign-ins")
    elif args.action == "signout":
        ended = auth.end_user(args.name)
        print(f"ended {ended} sign-in{'s' if ended != 1 else ''} of {args.name}")
    return 0


def _add_user_commands(sub) -> None:
    users = sub.add_parser("users", help="manage the accounts of a shared studio")
    actions = users.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="list users and roles")
    add = actions.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", choices=["admin", "member"], default="member")
    passwd = actions.add_parser("passwd", help="change a user's password")
    passwd.add_argument("name")
    for p in (add, passwd):
        p.add_argument("--password-stdin", action="store_true", help="read the password from standard input (scripts, containers)")
    role = actions.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=["admin", "member"])
    remove = actions.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    actions.add_parser("lockouts", help="accounts and addresses with failed sign-ins, and how long each must wait")
    unlock = actions.add_parser("unlock", help="clear the failed sign-ins of an account (or, with --address, an address)")
    unlock.add_argument("subject", metavar="NAME")
    unlock.add_argument("--address", action="store_true", help="NAME is a client address, not an account")
    signout = actions.add_parser("signout", help="end every sign-in of a user now")
    signout.add_argument("name")
    for p in (users, *actions.choices.values()):
        p.add_argument("--workspace", default=argparse.SUPPRESS)
    users.set_defaults(func=cmd_users)


def cmd_settings(args) -> int:
    import getpass

    from studio.settings import KEYS, SettingsStore, shown

    store = SettingsStore(_workspace(args).root)
    if args.action == "set":
        store.update(by=f"{getpass.getuser()} (command line)", **{args.key: args.value})
        print(f"{args.key} changed; a running server applies it to the next run submitted")
    settings = store.load()
    for key, description in KEYS.items():
        print(f"{key:20} {shown(settings, key)}\n{'':20} {description}")
    if settings.changed_by:
        print(f"last changed by {settings.changed_by} on {time.strftime('%Y-%m-%d %H:%M', time.localtime(settings.changed_at or 0))}")
    return 0


def _add_settings_commands(sub) -> None:
    from studio.settings import KEYS

    settings = sub.add_parser("settings", help="workspace rules only admins change: model folders, remote code, queue limit")
    actions = settings.add_subparsers(dest="action", required=True)
    actions.add_parser("show", help="print every setting and what it means")
    change = actions.add_parser("set", help="change one setting, e.g. 'studio settings set max_queued_per_user 3'")
    change.add_argument("key", choices=list(KEYS))
    change.add_argument("value", help="model_roots: comma-separated folders ('' for none); trust_remote_code: true|false; "
                                      "max_queued_per_user: a number or none; 'studio settings show' lists every key")
    for p in (settings, *actions.choices.values()):
        p.add_argument("--workspace", default=argparse.SUPPRESS)
    settings.set_defaults(func=cmd_settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio", description="Fine-tune language models on your labeled data.")
    parser.add_argument("--workspace", help="folder for runs and datasets (default: $STUDIO_WORKSPACE or ./workspace)")
    sub = parser.add_subparsers(dest="command")

    train = sub.add_parser("train", help="fine-tune from a config file and show progress")
    train.add_argument("config", help="run configuration (YAML)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config key, e.g. --set training.epochs=5 --set data.train=other.csv")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--executor", choices=("local", "ray"),
                       help="where it trains: this machine, or the Ray cluster an admin configured (ray_address); "
                            "default: the workspace's executor setting")
    train.add_argument("--workspace", default=argparse.SUPPRESS)
    train.set_defaults(func=cmd_train)

    predict = sub.add_parser("predict", help="predict a file with a finished run's model")
    predict.add_argument("run", help="run folder or run id")
    predict.add_argument("--input", required=True, help="CSV/TSV/JSONL/JSON/Parquet with the text column(s)")
    predict.add_argument("--output", help="output .csv or .jsonl (default: <input>.predictions.csv)")
    predict.add_argument("--workspace", default=argparse.SUPPRESS)
    predict.set_defaults(func=cmd_predict)

    export = sub.add_parser("export", help="copy a finished run's model to a folder (merging a LoRA adapter if asked)")
    export.add_argument("run", help="run folder or run id")
    export.add_argument("--output", required=True, help="new folder for the model")
    export.add_argument("--merge", action="store_true",
                        help="merge a LoRA adapter into the base weights: one standalone model, loadable without peft")
    export.add_argument("--workspace", default=argparse.SUPPRESS)
    export.set_defaults(func=cmd_export)

    sub.add_parser("models", help="list the backbone catalog and what works offline").set_defaults(func=cmd_models)
    sub.add_parser("tasks", help="list the tasks and the columns they need").set_defaults(func=cmd_tasks)

    serve = sub.add_parser("serve", help="open the studio in the browser (what a bare 'studio' does)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every network interface)")
    serve.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    serve.add_argument("--model-dir", action="append", metavar="DIR",
                       help="let users train model folders found in DIR (repeatable; also $STUDIO_MODEL_DIRS)")
    serve.add_argument("--insecure", action="store_true",
                       help="allow a non-loopback --host without accounts (anyone on the network gets in)")
    serve.add_argument("--max-upload-mb", type=int, default=200, metavar="MB",
                       help="largest upload a browser may send, in all (default 200)")
    serve.add_argument("--behind-https", action="store_true",
                       help="served to browsers over HTTPS by a reverse proxy: the sign-in cookie is HTTPS-only and the "
                            "proxy's X-Forwarded-Host is believed (see the README)")
    serve.add_argument("--workspace", default=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)
    demo = sub.add_parser("demo", help="sample data and a trained quick run, then the studio (for a first look)")
    demo.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    demo.add_argument("--share", action="store_true", help="also open a public Gradio share link (needs internet)")
    demo.add_argument("--workspace", default=argparse.SUPPRESS, help="the demo's own workspace (default ./demo-workspace)")
    demo.set_defaults(func=cmd_demo)
    from studio.jobs.cli import add_commands; add_commands(sub)
    from studio.sweeps.cli import add_commands as add_sweep_commands; add_sweep_commands(sub)
    _add_user_commands(sub)
    _add_settings_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):  # a bare 'studio' (or 'studio --workspace DIR') opens the app
        args = parser.parse_args([*(sys.argv[1:] if argv is None else argv), "serve"])
    try:
        return args.func(args)
    except StudioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
