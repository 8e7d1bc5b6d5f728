"""Sign-ins and failed sign-ins, kept in the workspace's ``auth.db`` (SQLite).

A session is a random token in the browser's cookie; the database keeps only its SHA-256, so a
copy of the file opens nobody's session. Each row remembers its user's stamp (``UserStore.stamps``):
removing a user or changing their password or role changes the stamp, and every session of that
user stops working at its next request. Sessions also end after a time without requests (idle)
and a time since sign-in (absolute), both from the workspace settings.

Failed sign-ins are counted per account and per client address, so the command line
(``studio users lockouts`` / ``unlock``) sees and clears what the running server counts.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

AUTH_DB = "auth.db"
TOKEN_BYTES = 32
TOUCH_EVERY_S = 60.0
"""A session's last request is written at most once a minute: idle expiry needs no finer clock."""

ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
"""Failures in a row before a wait: an account gets 5 guesses; an address 20, since a team behind
one proxy shares it."""
FIRST_DELAY_S = 30.0
MAX_DELAY_S = 3600.0
FORGET_AFTER_S = 7200.0
"""Each failure past the limit doubles the wait (30 s, 1 min, 2 min ... at most an hour); a key
with no failure for two hours starts again from zero."""


@dataclass(frozen=True)
class Session:
    user: str
    stamp: str
    created: float
    last_seen: float


@dataclass(frozen=True)
class Lockout:
    key: str
    failures: int
    last_failure: float
    retry_after: float

    @property
    def kind(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def subject(self) -> str:
        return self.key.split(":", 1)[1]


def account_key(name: str) -> str:
    return f"account:{name.strip().lower()}"


def address_key(address: str) -> str:
    return f"address:{address}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def wait_after(failures: int, limit: int) -> float:
    """Seconds a key must wait after its last failure, given its failures in a row."""
    if failures < limit:
        return 0.0
    return min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (failures - limit))


class AuthStore:
    def __init__(self, workspace_root: str | Path):
        self.path = Path(workspace_root) / AUTH_DB
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=10, isolation_level=None)
            self.path.chmod(0o600)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS sessions (digest TEXT PRIMARY KEY, user TEXT NOT NULL, "
                       "stamp TEXT NOT NULL, created REAL NOT NULL, last_seen REAL NOT NULL, address TEXT)")
            db.execute("CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user)")
            db.execute("CREATE TABLE IF NOT EXISTS failures (key TEXT PRIMARY KEY, count INTEGER NOT NULL, "
                       "last REAL NOT NULL)")
            self._db = db
        return self._db

    def _run(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn().execute(sql, args).fetchall()

    # ---- sessions ------------------------------------------------------------------------------
    def create(self, user: str, stamp: str, address: str | None = None) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = time.time()
        self._run("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)", (_digest(token), user, stamp, now, now, address))
        return token

    def lookup(self, token: str | None, *, idle_s: float, max_s: float, stamps: dict[str, str]) -> Session | None:
        """The session of a cookie's token while it is valid; an expired or revoked one is deleted."""
        if not token or len(token) > 128:
            return None
        digest = _digest(token)
        rows = self._run("SELECT user, stamp, created, last_seen FROM sessions WHERE digest = ?", (digest,))
        if not rows:
            return None
        session = Session(*rows[0])
        now = time.time()
        if stamps.get(session.user) != session.stamp or now - session.last_seen > idle_s or now - session.created > max_s:
            self._run("DELETE FROM sessions WHERE digest = ?", (digest,))
            return None
        if now - session.last_seen > TOUCH_EVERY_S:
            self._run("UPDATE sessions SET last_seen = ? WHERE digest = ?", (now, digest))
        return session

    def end(self, token: str | None) -> None:
        if token:
            self._run("DELETE FROM sessions WHERE digest = ?", (_digest(token),))

    def end_user(self, user: str) -> int:
        """End every session of a user (the command line does it on remove/passwd/role too)."""
        count = self._run("SELECT COUNT(*) FROM sessions WHERE user = ?", (user,))[0][0]
        self._run("DELETE FROM sessions WHERE user = ?", (user,))
        return count

    def prune(self, *, idle_s: float, max_s: float) -> None:
        """Forget sessions past their time and failures long past (a session never used again is
        otherwise only removed when its cookie comes back)."""
        now = time.time()
        self._run("DELETE FROM sessions WHERE last_seen < ? OR created < ?", (now - idle_s, now - max_s))
        self._run("DELETE FROM failures WHERE last < ?", (now - FORGET_AFTER_S,))

    # ---- failed sign-ins -----------------------------------------------------------------------
    def _failures(self, key: str) -> tuple[int, float]:
        rows = self._run("SELECT count, last FROM failures WHERE key = ?", (key,))
        if not rows:
            return 0, 0.0
        count, last = rows[0]
        return (0, 0.0) if time.time() - last > FORGET_AFTER_S else (count, last)

    def retry_after(self, keys: dict[str, int]) -> float:
        """Seconds until a sign-in may be tried again for these keys (key -> its limit); 0 if now."""
        now = time.time()
        waits = [last + wait_after(count, limit) - now for key, limit in keys.items()
                 for count, last in [self._failures(key)]]
        return max([0.0, *waits])

    def fail(self, keys: list[str]) -> None:
        """Count a failure against each key. The server counts an attempt as failed before checking
        the password and clears the account's count on success, so parallel guesses are counted too."""
        now = time.time()
        for key in keys:
            count, _ = self._failures(key)
            self._run("INSERT INTO failures VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET count = ?, last = ?",
                      (key, count + 1, now, count + 1, now))

    def forgive(self, key: str) -> None:
        """One failure less (an attempt that succeeded after all), without touching the time."""
        self._run("UPDATE failures SET count = MAX(count - 1, 0) WHERE key = ?", (key,))

    def clear(self, key: str) -> bool:
        existed = bool(self._run("SELECT 1 FROM failures WHERE key = ?", (key,)))
        self._run("DELETE FROM failures WHERE key = ?", (key,))
        return existed

    def lockouts(self, limits: dict[str, int] | None = None) -> list[Lockout]:
        """Keys with failures in a row, and how long each must still wait."""
        limits = limits or {"account": ACCOUNT_LIMIT, "address": ADDRESS_LIMIT}
        now = time.time()
        out = []
        for key, count, last in self._run("SELECT key, count, last FROM failures WHERE count > 0 ORDER BY last DESC"):
            limit = limits.get(key.split(":", 1)[0], ACCOUNT_LIMIT)
            if now - last <= FORGET_AFTER_S:
                out.append(Lockout(key, count, last, max(0.0, last + wait_after(count, limit) - now)))
        return out

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
