"""What every tab of one server shares: the workspace, the job manager and the model cache, and
the one place that decides what the user behind a request may do.

These are services, not session state: a browser's own choices (its uploaded file, the run it
watches) live in ``gr.State`` objects created by the app, never here.

Who may do what is always worked out again from the request (its signed-in user, looked up in the
users file), never from anything the page sends: a hidden button or panel is only a convenience.
Without accounts (a studio on this machine's loopback address) whoever uses it runs it, as an admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from studio.errors import StudioError
from studio.ui.i18n import t
from studio.workspace import Workspace

if TYPE_CHECKING:
    from studio.jobs.manager import JobManager
    from studio.settings import Settings
    from studio.ui.model_cache import ModelCache
    from studio.users import User

REPO_ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"


@dataclass
class Services:
    workspace: Workspace
    jobs: "JobManager"
    models: "ModelCache"
    samples_dir: Path | None = None

    @property
    def uploads(self) -> Path:
        return self.workspace.root / "uploads"

    @property
    def exports(self) -> Path:
        return self.workspace.cache / "exports"

    def keep_upload(self, path: str | Path, user: str | None = None) -> Path:
        """Copy a file ``user`` uploaded into their uploads in the workspace (the browser's upload
        folder is temporary), so a run's config.yaml keeps pointing at a file that exists. Same
        content, same place. Raises ``UploadQuotaExceeded`` past the ``upload_quota_mb`` setting."""
        from studio.data.uploads import UploadStore

        return UploadStore(self.workspace.root).keep(path, user, self.settings().upload_quota_mb)

    def clean_uploads(self) -> list[Path]:
        """Delete the uploads no run uses that are older than a week (``studio.data.uploads``);
        the server calls this when it starts, and new uploads do it now and then."""
        from studio.data.uploads import UploadStore

        return UploadStore(self.workspace.root).clean()

    # ---- who is asking -----------------------------------------------------------------------------
    def user(self, request) -> "User | None":
        """The signed-in user of a request (None when the studio runs without accounts)."""
        name = username(request)
        if not name:
            return None
        from studio.users import UserStore

        return UserStore(self.workspace.root).get(name)

    def is_admin(self, request) -> bool:
        """Admins manage the settings and the queue and may change any run or dataset. A call
        without a request (the server itself) and a studio without accounts count as admin."""
        if request is None:
            return True
        if not username(request):
            from studio.users import UserStore

            # Accounts added after this server started (it did not ask for a login): nobody is admin.
            return not UserStore(self.workspace.root).exists()
        user = self.user(request)
        return user is not None and user.is_admin

    def check_admin(self, request) -> None:
        if not self.is_admin(request):
            name = username(request)
            raise StudioError(t("services.admins_only", user=name) if name else t("services.nobody_signed_in"))

    def may_change(self, request, owner: str | None) -> bool:
        """Members change their own runs and datasets only; admins anything."""
        if self.is_admin(request):
            return True
        name = username(request)
        return bool(name) and owner == name

    def check_may_change(self, request, record, action: str = "change") -> None:
        """Members change (cancel, resume, delete) and download their own runs only; admins any
        run. Without accounts everyone may."""
        if not self.may_change(request, record.owner):
            owner = record.owner or t("services.no_owner_run")
            actions = {"download": t("services.action_download")}
            raise StudioError(t("services.run_belongs_to", run=record.id, owner=owner,
                                action=actions.get(action, t("services.action_change"))))

    def check_may_download(self, request, run_id: str) -> None:
        """The one check before any of a run's files leave the server."""
        self.check_may_change(request, self.jobs.get(run_id), action="download")

    def check_may_change_dataset(self, request, name: str) -> None:
        """Replace or delete a saved dataset: its owner or an admin (one saved before accounts: admins)."""
        from studio.data.datasets_store import dataset_info

        info = dataset_info(self.workspace.datasets, name)
        if not self.may_change(request, info.owner):
            raise StudioError(t("services.dataset_belongs_to", name=name, owner=info.owner or t("services.no_owner_dataset")))

    # ---- the workspace's settings --------------------------------------------------------------------
    def settings(self) -> "Settings":
        return self.jobs.settings()

    def model_roots(self) -> list[Path]:
        """Folders local models may come from: the server's --model-dir folders and the admin's."""
        return self.jobs.model_roots() or []

    def samples(self) -> dict[str, Path]:
        """Bundled sample data files, by file name."""
        folder = self.samples_dir
        if folder is None or not folder.is_dir():
            return {}
        return {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def username(request) -> str | None:
    return getattr(request, "username", None) if request is not None else None
