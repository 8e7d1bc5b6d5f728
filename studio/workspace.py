"""Where the studio keeps its state: runs, saved datasets, caches (and later the run index).

One folder, chosen by ``--workspace``, else ``$STUDIO_WORKSPACE``, else ``./workspace``.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, path: str | Path | None = None) -> "Workspace":
        root = Path(path or os.environ.get("STUDIO_WORKSPACE") or "workspace").expanduser().resolve()
        ws = cls(root)
        for folder in (ws.runs, ws.datasets, ws.cache):
            folder.mkdir(parents=True, exist_ok=True)
        return ws

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def new_run_id(self, name: str | None) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", (name or "run").lower()).strip("-")[:40] or "run"
        # 8 random hex digits: runs of the same name submitted in the same second never collide.
        return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(4)}"
