"""What every tab of one server shares: the workspace, the job manager and the model cache.

These are services, not session state: a browser's own choices (its uploaded file, the run it
watches) live in ``gr.State`` objects created by the app, never here.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from studio.workspace import Workspace

if TYPE_CHECKING:
    from studio.jobs.manager import JobManager
    from studio.ui.model_cache import ModelCache

REPO_ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"


@dataclass
class Services:
    workspace: Workspace
    jobs: "JobManager"
    models: "ModelCache"
    allowed_model_roots: list[Path] = field(default_factory=list)
    samples_dir: Path | None = None

    @property
    def uploads(self) -> Path:
        return self.workspace.root / "uploads"

    @property
    def exports(self) -> Path:
        return self.workspace.cache / "exports"

    def keep_upload(self, path: str | Path) -> Path:
        """Copy an uploaded file into the workspace (the browser's upload folder is temporary), so
        a run's config.yaml keeps pointing at a file that exists. Same content, same place."""
        source = Path(path)
        digest = hashlib.sha256()
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        target = self.uploads / digest.hexdigest()[:16] / _original_name(source)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(source, tmp)
            tmp.replace(target)
        return target

    def user(self, request) -> "object | None":
        """The signed-in user of a request (None when the studio runs without accounts)."""
        name = getattr(request, "username", None) if request is not None else None
        if not name:
            return None
        from studio.users import UserStore

        return UserStore(self.workspace.root).get(name)

    def check_may_change(self, request, record, action: str = "change") -> None:
        """Members change (cancel, resume, delete) and download their own runs only; admins any
        run. Without accounts everyone may."""
        from studio.errors import StudioError

        name = getattr(request, "username", None) if request is not None else None
        if not name:
            return
        user = self.user(request)
        if user is not None and user.is_admin:
            return
        if record.owner != name:
            owner = record.owner or "nobody (made before accounts existed)"
            raise StudioError(f"run {record.id} belongs to {owner}; only its owner or an admin can {action} it")

    def check_may_download(self, request, run_id: str) -> None:
        self.check_may_change(request, self.jobs.get(run_id), action="download")

    def samples(self) -> dict[str, Path]:
        """Bundled sample data files, by file name."""
        folder = self.samples_dir
        if folder is None or not folder.is_dir():
            return {}
        return {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def _original_name(path: Path) -> str:
    # Gradio keeps the uploaded file's own name as the last path component.
    name = path.name.strip() or "data"
    return name.replace("/", "_").replace("\\", "_")
