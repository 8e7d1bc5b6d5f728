"""The sign-in store: sessions past their time are forgotten at a server's start, fresh ones kept."""

from __future__ import annotations

import sqlite3
import time

from studio.web.sessions import AuthStore


def test_prune_forgets_expired_sessions_and_keeps_fresh_ones(tmp_path):
    store = AuthStore(tmp_path)
    stale, fresh = store.create("ann", "s1"), store.create("bob", "s2")
    store.close()
    db = sqlite3.connect(tmp_path / "auth.db")
    with db:
        db.execute("UPDATE sessions SET last_seen = ? WHERE user = 'ann'", (time.time() - 10 * 3600,))
    db.close()
    store = AuthStore(tmp_path)
    store.prune(idle_s=8 * 3600, max_s=168 * 3600)
    users = {row[0] for row in sqlite3.connect(tmp_path / "auth.db").execute("SELECT user FROM sessions")}
    assert users == {"bob"}
    stamps = {"ann": "s1", "bob": "s2"}
    assert store.lookup(fresh, idle_s=8 * 3600, max_s=168 * 3600, stamps=stamps).user == "bob"
    assert store.lookup(stale, idle_s=8 * 3600, max_s=168 * 3600, stamps=stamps) is None
