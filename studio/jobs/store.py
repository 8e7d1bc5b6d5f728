"""The run index: one SQLite file, ``<workspace>/studio.db``, in WAL mode.

It makes the runs table, the queue and restarts cheap; the run directories stay the truth and
``reindex`` rebuilds the index from them. Every call opens its own connection (so any thread,
and several processes such as the server and the CLI, can use the store at once), writes take
the write lock up front (``BEGIN IMMEDIATE``: a read transaction upgraded to a write cannot be
waited for and fails with "database is locked"), and a busy database is retried with backoff
instead of reported. Longer than 500 lines: the schema, its migrations and every query of the
one table sit together, so a column is added in one file.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from studio.errors import StudioError
from studio.jobs import process
from studio.jobs.devices import CPU_PREFIX
from studio.runs.state import ACTIVE, QUEUED, STATUSES, summarize
from studio.runs import RunDir
from studio.workspace import Workspace

DB_FILE = "studio.db"


# A run taken from the queue gets this long to have its worker's pid recorded before a
# reader may conclude that the scheduler which took it died on the way.
SPAWN_GRACE_S = 60.0


class JobError(StudioError):
    kind = "job"


class QueueLimitReached(JobError):
    """The owner already has as many queued runs as the workspace allows one member."""

    kind = "queue_limit"

    def __init__(self, owner: str, queued: int, limit: int):
        super().__init__(
            f"{owner} already has {queued} run{'s' if queued != 1 else ''} waiting in the queue, and each member may have "
            f"at most {limit} queued",
            hint="wait until one of them starts, or cancel one; an admin can change the limit "
                 "(max_queued_per_user in the settings)")
        self.owner, self.queued, self.limit = owner, queued, limit


@dataclass
class RunRecord:
    id: str
    run_dir: str
    status: str = QUEUED
    name: str | None = None
    owner: str | None = None
    task: str | None = None
    backbone: str | None = None
    gpus: int = 1
    """Devices asked for (0 = a CPU slot)."""
    devices: list[str] = field(default_factory=list)
    """Devices held while starting/running/cancelling (GPU ids, or cpuN for a CPU slot)."""
    pid: int | None = None
    pid_started: float | None = None
    """The worker's process start time (psutil create_time): a reused pid is not the worker."""
    queue_order: int | None = None
    position: int | None = None
    """1-based place in the queue (queued runs only; computed, not stored)."""
    created: float | None = None
    started: float | None = None
    ended: float | None = None
    step: int | None = None
    total_steps: int | None = None
    error_kind: str | None = None
    error_message: str | None = None
    error_hint: str | None = None
    metric_name: str | None = None
    metric_value: float | None = None
    exit_code: int | None = None
    resume: bool = False
    """The next launch continues from the last complete checkpoint."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the next launch of the worker."""
    cancel_requested: float | None = None
    events_offset: int = 0
    """Size of events.jsonl when the current attempt was launched (its events come after)."""
    attempts: int = 0
    sweep: str | None = None
    """The sweep this run is a trial of (``studio.sweeps``), if any."""
    executor: str = "local"
    """Where its worker runs: ``local`` (a process of this machine) or ``ray`` (a Ray cluster's job)."""
    job_id: str | None = None
    """The Ray job of the current attempt (ray executor): how a restarted server finds it again."""
    node: str | None = None
    """The cluster node the worker runs on (ray executor), once it is known."""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_COLUMNS: dict[str, str] = {
    "id": "TEXT PRIMARY KEY",
    "run_dir": "TEXT NOT NULL",
    "status": "TEXT NOT NULL",
    "name": "TEXT",
    "owner": "TEXT",
    "task": "TEXT",
    "backbone": "TEXT",
    "gpus": "INTEGER NOT NULL DEFAULT 1",
    "devices": "TEXT NOT NULL DEFAULT '[]'",
    "pid": "INTEGER",
    "pid_started": "REAL",
    "queue_order": "INTEGER",
    "created": "REAL",
    "started": "REAL",
    "ended": "REAL",
    "step": "INTEGER",
    "total_steps": "INTEGER",
    "error_kind": "TEXT",
    "error_message": "TEXT",
    "error_hint": "TEXT",
    "metric_name": "TEXT",
    "metric_value": "REAL",
    "exit_code": "INTEGER",
    "resume": "INTEGER NOT NULL DEFAULT 0",
    "env": "TEXT NOT NULL DEFAULT '{}'",
    "cancel_requested": "REAL",
    "events_offset": "INTEGER NOT NULL DEFAULT 0",
    "attempts": "INTEGER NOT NULL DEFAULT 0",
    "sweep": "TEXT",
    "executor": "TEXT NOT NULL DEFAULT 'local'",
    "job_id": "TEXT",
    "node": "TEXT",
}
_JSON = {"devices", "env"}
_FIELDS = [f.name for f in fields(RunRecord) if f.name in _COLUMNS]


def _encode(name: str, value: Any) -> Any:
    if name in _JSON:
        return json.dumps(value if value is not None else ({} if name == "env" else []))
    if name == "resume":
        return int(bool(value))
    return value


def _decode(row: sqlite3.Row) -> RunRecord:
    data = {name: row[name] for name in _FIELDS}
    for name in _JSON:
        data[name] = json.loads(data[name]) if data[name] else ({} if name == "env" else [])
    data["resume"] = bool(data["resume"])
    return RunRecord(**data)


def _busy(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


class RunStore:
    """The run index. Safe to use from any number of threads and processes at once."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0):
        self.path = Path(path)
        self.timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._setup()

    @classmethod
    def for_workspace(cls, workspace: Workspace | str | Path, **kwargs: Any) -> "RunStore":
        root = workspace.root if isinstance(workspace, Workspace) else Path(workspace)
        return cls(root / DB_FILE, **kwargs)

    # ---- connections and transactions ---------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: a power cut loses at most the last commits
        return conn

    def _retrying(self, action: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                return action()
            except sqlite3.OperationalError as error:
                if not _busy(error) or time.monotonic() > deadline:
                    raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.25)

    def transaction(self, work: Callable[[sqlite3.Connection], Any], *, write: bool = True) -> Any:
        """Run ``work(conn)`` in one transaction (retried as a whole while the database is busy)."""

        def attempt() -> Any:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                conn.close()

        return self._retrying(attempt)

    def _setup(self) -> None:
        def setup() -> None:
            conn = self._connect()
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("BEGIN IMMEDIATE")
                columns = ", ".join(f"{name} {kind}" for name, kind in _COLUMNS.items())
                conn.execute(f"CREATE TABLE IF NOT EXISTS runs ({columns})")
                have = {row["name"] for row in conn.execute("PRAGMA table_info(runs)")}
                for name, kind in _COLUMNS.items():  # an index written by an older studio
                    if name not in have:
                        conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind.replace('PRIMARY KEY', '')}")
                conn.execute("CREATE INDEX IF NOT EXISTS runs_status ON runs (status, queue_order)")
                conn.execute("COMMIT")
            finally:
                conn.close()

        self._retrying(setup)

    @property
    def journal_mode(self) -> str:
        return self.transaction(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0], write=False)

    # ---- reads ------------------------------------------------------------------------------
    @staticmethod
    def _positions(conn: sqlite3.Connection) -> dict[str, int]:
        rows = conn.execute("SELECT id FROM runs WHERE status = ? ORDER BY queue_order, created, id", (QUEUED,))
        return {row["id"]: i for i, row in enumerate(rows, start=1)}

    def _with_positions(self, conn: sqlite3.Connection, rows: Iterable[sqlite3.Row]) -> list[RunRecord]:
        records = [_decode(row) for row in rows]
        if any(r.status == QUEUED for r in records):
            positions = self._positions(conn)
            for r in records:
                r.position = positions.get(r.id)
        return records

    def get(self, run_id: str) -> RunRecord | None:
        def read(conn):
            found = self._with_positions(conn, conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)))
            return found[0] if found else None

        return self.transaction(read, write=False)

    def list(self, *, status: str | Iterable[str] | None = None, owner: str | None = None, task: str | None = None,
             limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first, optionally only some statuses, one owner, one task."""
        where, params = [], []
        if status:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params += statuses
        if owner:
            where.append("owner = ?")
            params.append(owner)
        if task:
            where.append("task = ?")
            params.append(task)
        sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY created DESC, id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self.transaction(lambda conn: self._with_positions(conn, conn.execute(sql, params)), write=False)

    def queue(self) -> list[RunRecord]:
        """Queued runs in the order they will start."""
        sql = "SELECT * FROM runs WHERE status = ? ORDER BY queue_order, created, id"
        return self.transaction(lambda conn: self._with_positions(conn, conn.execute(sql, (QUEUED,))), write=False)

    # ---- writes -----------------------------------------------------------------------------
    @staticmethod
    def _next_order(conn: sqlite3.Connection) -> int:
        return (conn.execute("SELECT MAX(queue_order) FROM runs").fetchone()[0] or 0) + 1

    @staticmethod
    def _check_queue_limit(conn: sqlite3.Connection, owner: str | None, limit: int | None) -> None:
        # Counted inside the writing transaction: two submits at once cannot both slip under the limit.
        if not limit or not owner:
            return
        queued = conn.execute("SELECT COUNT(*) FROM runs WHERE status = ? AND owner = ?", (QUEUED, owner)).fetchone()[0]
        if queued >= limit:
            raise QueueLimitReached(owner, queued, limit)

    def insert(self, record: RunRecord, *, queue_limit: int | None = None) -> RunRecord:
        """Add a run; a queued run goes to the end of the queue. With ``queue_limit``, a queued run
        is refused (``QueueLimitReached``) when its owner already has that many queued."""
        if record.status not in STATUSES:
            raise ValueError(f"unknown status {record.status!r}")

        def write(conn):
            if record.status == QUEUED:
                self._check_queue_limit(conn, record.owner, queue_limit)
            if record.status == QUEUED and record.queue_order is None:
                record.queue_order = self._next_order(conn)
            names = ", ".join(_FIELDS)
            marks = ", ".join("?" * len(_FIELDS))
            try:
                conn.execute(f"INSERT INTO runs ({names}) VALUES ({marks})",
                             [_encode(n, getattr(record, n)) for n in _FIELDS])
            except sqlite3.IntegrityError:
                raise JobError(f"run {record.id} is already in the index") from None
            return record

        return self.transaction(write)

    def upsert(self, record: RunRecord) -> None:
        names = ", ".join(_FIELDS)
        marks = ", ".join("?" * len(_FIELDS))
        self.transaction(lambda conn: conn.execute(
            f"INSERT OR REPLACE INTO runs ({names}) VALUES ({marks})", [_encode(n, getattr(record, n)) for n in _FIELDS]))

    def update(self, run_id: str, *, expect: str | Iterable[str] | None = None, **values: Any) -> bool:
        """Set fields of a run; with ``expect``, only if its status is (one of) that (compare and set).
        Returns whether a row changed."""
        unknown = set(values) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown run fields: {sorted(unknown)}")
        if not values:
            return self.get(run_id) is not None
        sets = ", ".join(f"{name} = ?" for name in values)
        params = [_encode(n, v) for n, v in values.items()] + [run_id]
        sql = f"UPDATE runs SET {sets} WHERE id = ?"
        if expect:
            statuses = [expect] if isinstance(expect, str) else list(expect)
            sql += f" AND status IN ({', '.join('?' * len(statuses))})"
            params += statuses
        return self.transaction(lambda conn: conn.execute(sql, params).rowcount == 1)

    def enqueue(self, run_id: str, *, expect: Iterable[str], queue_limit: int | None = None, **values: Any) -> bool:
        """Put a run at the end of the queue if its status is one of ``expect`` (and, with
        ``queue_limit``, its owner has fewer queued runs than that)."""

        def write(conn):
            statuses = list(expect)
            row = conn.execute(f"SELECT status, owner FROM runs WHERE id = ? AND status IN ({', '.join('?' * len(statuses))})",
                               [run_id, *statuses]).fetchone()
            if row is None:
                return False
            self._check_queue_limit(conn, row["owner"], queue_limit)
            fields_ = {**values, "status": QUEUED, "queue_order": self._next_order(conn)}
            sets = ", ".join(f"{n} = ?" for n in fields_)
            conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", [_encode(n, v) for n, v in fields_.items()] + [run_id])
            return True

        return self.transaction(write)

    def claim(self, choose: Callable[[RunRecord, set[str]], dict[str, Any] | None]) -> RunRecord | None:
        """Atomically take the head of the queue if ``choose(head, busy_devices)`` finds it room.

        ``choose`` returns the fields to set (devices, ...) or None when the head must wait;
        the queue is strictly first in, first out, so nothing behind a waiting head starts.
        The head becomes ``starting``. Two schedulers (a server and ``studio queue --work``)
        can never take the same run or the same device.
        """

        def write(conn):
            busy: set[str] = set()
            for row in conn.execute(f"SELECT devices FROM runs WHERE status IN ({', '.join('?' * len(ACTIVE))})", ACTIVE):
                busy.update(json.loads(row["devices"] or "[]"))
            head = conn.execute("SELECT * FROM runs WHERE status = ? ORDER BY queue_order, created, id LIMIT 1",
                                (QUEUED,)).fetchone()
            if head is None:
                return None
            record = _decode(head)
            values = choose(record, busy)
            if values is None:
                return None
            values = {**values, "status": "starting", "queue_order": None}
            sets = ", ".join(f"{n} = ?" for n in values)
            conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", [_encode(n, v) for n, v in values.items()] + [record.id])
            for name, value in values.items():
                setattr(record, name, value)
            return record

        return self.transaction(write)

    def move(self, run_id: str, direction: str) -> int:
        """Move a queued run one place ``up`` or ``down`` (or to the ``top``/``bottom``); returns its new position."""
        if direction not in ("up", "down", "top", "bottom"):
            raise ValueError(f"direction must be up, down, top or bottom, not {direction!r}")

        def write(conn):
            order = [(row["id"], row["queue_order"]) for row in
                     conn.execute("SELECT id, queue_order FROM runs WHERE status = ? ORDER BY queue_order, created, id", (QUEUED,))]
            ids = [i for i, _ in order]
            if run_id not in ids:
                raise JobError(f"run {run_id} is not queued; only queued runs can be moved")
            i = ids.index(run_id)
            target = {"up": max(0, i - 1), "down": min(len(ids) - 1, i + 1), "top": 0, "bottom": len(ids) - 1}[direction]
            ids.insert(target, ids.pop(i))
            slots = sorted(o for _, o in order)
            for new_id, slot in zip(ids, slots):
                conn.execute("UPDATE runs SET queue_order = ? WHERE id = ?", (slot, new_id))
            return target + 1

        return self.transaction(write)

    def delete(self, run_id: str) -> bool:
        return self.transaction(lambda conn: conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount == 1)


# ---- rebuilding the index from run directories ----------------------------------------------

def read_json_dict(path: Path) -> dict:
    """A JSON object from ``path``; {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _read_config(run_dir: Path) -> dict:
    try:
        data = yaml.safe_load(RunDir(run_dir).config.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, yaml.YAMLError):
        return {}


def headline_from_metrics(run_dir: Path) -> tuple[str | None, float | None]:
    metrics = read_json_dict(RunDir(run_dir).metrics)
    name = (metrics.get("headline") or {}).get("name")
    if not name:
        return None, None
    for split in ("test", "validation"):
        value = (metrics.get(split) or {}).get(name)
        if isinstance(value, (int, float)):
            return name, value
    return name, None


def record_from_dir(run_dir: Path, existing: RunRecord | None = None) -> RunRecord:
    """A run's index record as its directory tells it (status from events.jsonl and liveness)."""
    config = _read_config(run_dir)
    job = read_json_dict(RunDir(run_dir).job)
    summary = summarize(run_dir)
    try:
        created = float(job.get("created") or RunDir(run_dir).config.stat().st_mtime)
    except OSError:
        created = time.time()
    record = RunRecord(
        id=run_dir.name, run_dir=str(run_dir), name=config.get("name"), owner=job.get("owner"),
        task=(config.get("task") or {}).get("name"), backbone=(config.get("model") or {}).get("backbone"),
        gpus=int(job.get("gpus", 1)), created=created, started=summary.started, ended=summary.ended, attempts=summary.attempts,
        step=summary.step, total_steps=summary.total_steps, error_kind=summary.error_kind,
        error_message=summary.error_message, error_hint=summary.error_hint,
        metric_name=summary.metric_name, metric_value=summary.metric_value,
    )
    if existing is not None:  # what only the index knows
        record.owner = record.owner or existing.owner
        record.env = existing.env
    record.sweep = job.get("sweep") or (existing.sweep if existing is not None else None)
    record.executor = job.get("executor") or (existing.executor if existing is not None else "local")
    if existing is not None and existing.executor != "local" and existing.active:
        # A cluster's worker is not a process of this machine: the job manager asks the cluster.
        record.status, record.job_id, record.node = existing.status, existing.job_id, existing.node
        record.started, record.events_offset, record.cancel_requested = existing.started, existing.events_offset, existing.cancel_requested
        return record
    status = summary.status
    same = existing is not None and existing.status in ACTIVE and process.is_alive(
        existing.pid, existing.pid_started, run_dir.name)
    pid = existing.pid if same else (process.find_worker(run_dir) if status in ACTIVE or status in (None, QUEUED) else None)
    if pid:  # a live worker: whatever the last event says, the run is on
        status = status if status in ACTIVE else "starting"
        record.pid = pid
        record.pid_started = existing.pid_started if same else process.start_time(pid)
        record.devices = existing.devices if same else process.worker_gpus(pid)
        record.events_offset = summary.attempt_offset if summary.status in ACTIVE else summary.offset
    elif status in ACTIVE:
        status = "interrupted"
        record.error_message = record.error_message or "the worker ended without reporting why"
    elif status is None:
        status = QUEUED if job else "interrupted"  # submitted and never started / prepared, never submitted
        if not job:
            record.error_message = "the run was prepared but never started"
    record.status = status
    if status == QUEUED:
        keep = existing is not None and existing.status == QUEUED
        record.resume = existing.resume if keep else summary.started is not None
        record.queue_order = existing.queue_order if keep else None
        record.events_offset = summary.offset
        record._queued_t = summary.queued_t or record.created  # type: ignore[attr-defined]  # order after a lost index
    if record.status == "completed" and record.metric_value is None:
        record.metric_name, record.metric_value = headline_from_metrics(run_dir)
    return record


def reindex(workspace: Workspace | str | Path, store: RunStore | None = None) -> list[RunRecord]:
    """Rebuild the index from ``<workspace>/runs/*``: add missing runs, correct statuses from the
    events and the liveness of their workers, drop records whose folder is gone."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace.at(workspace)
    store = store or RunStore.for_workspace(ws)
    existing = {r.id: r for r in store.list()}
    records = []
    for run_dir in sorted(ws.runs.iterdir()) if ws.runs.is_dir() else []:
        if not run_dir.is_dir() or run_dir.name.startswith(".") or not RunDir(run_dir).config.is_file():
            continue
        known = existing.get(run_dir.name)
        if known is not None and known.active and not known.pid and time.time() - (known.started or 0) < SPAWN_GRACE_S:
            records.append(known)  # a scheduler is starting its worker right now: leave it be
            continue
        records.append(record_from_dir(run_dir, known))
    queued = sorted((r for r in records if r.status == QUEUED),
                    key=lambda r: (r.queue_order is None, r.queue_order or 0, getattr(r, "_queued_t", r.created) or 0, r.id))
    for order, record in enumerate(queued, start=1):
        record.queue_order = order
    # A re-attached CPU worker holds a CPU slot: give each one its own.
    cpu_slot = 0
    for record in records:
        if record.status in ACTIVE and not record.devices:
            record.devices = [f"{CPU_PREFIX}{cpu_slot}"]
            cpu_slot += 1
    for record in records:
        store.upsert(record)
    found = {r.id for r in records}
    for run_id in set(existing) - found:
        store.delete(run_id)
    return store.list()
