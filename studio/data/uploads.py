"""Data files uploaded through the web app, kept in the workspace: ``uploads/<user>/<sha16>/<name>``.

The browser's upload folder is temporary, and a run's config.yaml names its data files, so an
upload is copied here (same content, same place: ``<sha16>`` is the start of its SHA-256). Each
user's uploads sit in their own folder (``_`` for a studio without accounts), so what one user
keeps can be measured against the ``upload_quota_mb`` setting, and a user cannot fill the
workspace's disk for everyone.

Uploads are not kept for good. One is kept while a run's config.yaml names it (runs copy the
data they train on into their own folder, but the config still points here, and rerunning a
config reads it again); an upload nothing names is deleted ``KEEP_DAYS`` after it was last
uploaded (uploading the same file again counts as new), or after ``QUOTA_GRACE_DAYS`` when its
owner needs the space for a new one. Saved datasets hold their own copy of the splits (their
meta.json names the uploaded files, not paths), so they do not keep an upload.

Folders from before uploads were per user (``uploads/<sha16>/<name>``) are still read where old
configs point, count as nobody's (``_``) and are cleaned up by the same rules.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from studio.data.readers import human_bytes
from studio.errors import StudioError
from studio.runs import RunDir

UPLOADS = "uploads"
NOBODY = "_"
"""The folder of uploads made without a signed-in user (no user name can be '_')."""
KEEP_DAYS = 7
QUOTA_GRACE_DAYS = 1
CLEAN_EVERY_SECONDS = 3600
"""How often a new upload also sweeps the old ones (the server also does it when it starts)."""
MIB = 1024**2

_DAY = 86_400
_DIGEST = re.compile(r"^[0-9a-f]{16}$")
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DATA_KEYS = ("train", "validation", "test")
_LOCK = threading.Lock()
"""One keep or clean at a time in this process, so a sweep never deletes a folder being reused."""
_LAST_CLEAN: dict[Path, float] = {}


class UploadQuotaExceeded(StudioError):
    kind = "quota"


@dataclass(frozen=True)
class UploadStore:
    workspace_root: Path

    @property
    def root(self) -> Path:
        return Path(self.workspace_root) / UPLOADS

    def folder_of(self, user: str | None) -> Path:
        """Where ``user``'s uploads go (``_`` without a user)."""
        if not user:
            return self.root / NOBODY
        if not _USER.match(user):  # user names are checked when accounts are made; never a path here
            user = "user-" + hashlib.sha256(user.encode("utf-8")).hexdigest()[:16]
        return self.root / user

    # ---- keeping ---------------------------------------------------------------------------------
    def keep(self, source: str | Path, user: str | None = None, quota_mb: int | None = None) -> Path:
        """Copy an uploaded file into ``user``'s uploads and return where it now is; the same
        content under the same name is stored once. Raises ``UploadQuotaExceeded`` when the user's
        uploads and this one would pass ``quota_mb`` (None: no quota)."""
        source = Path(source)
        digest = hashlib.sha256()
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        size = source.stat().st_size
        name = _original_name(source)
        target = self.folder_of(user) / digest.hexdigest()[:16] / name
        self.maybe_clean()
        with _LOCK:
            if target.is_file():
                _touch(target)  # uploaded again: its week starts again
                return target
            if quota_mb is not None:
                quota = quota_mb * MIB
                used = self.used(user)
                if used + size > quota:
                    # Make room from the user's own uploads that nothing uses, if that is enough.
                    self._clean(now=time.time(), owner_folder=self.folder_of(user), keep_seconds=QUOTA_GRACE_DAYS * _DAY)
                    used = self.used(user)
                if used + size > quota:
                    raise UploadQuotaExceeded(
                        f"{name} ({human_bytes(size)}) cannot be stored: "
                        f"{'your' if user else 'the'} uploads already take {human_bytes(used)} of the {quota_mb:,} MB each user "
                        f"may keep (the upload quota), and this file would take {human_bytes(used + size - quota)} more than that",
                        hint=f"uploads that no run uses are deleted {KEEP_DAYS} days after they were uploaded (after "
                             f"{QUOTA_GRACE_DAYS} day when you need the space); delete runs you no longer need, or ask an admin "
                             "to raise the quota with 'studio settings set upload_quota_mb <megabytes>'")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
            try:
                shutil.copyfile(source, tmp)
                tmp.replace(target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            _touch(target)
        return target

    def used(self, user: str | None) -> int:
        """Bytes of ``user``'s stored uploads."""
        return _size(self.folder_of(user))

    # ---- cleaning --------------------------------------------------------------------------------
    def maybe_clean(self, every: float = CLEAN_EVERY_SECONDS) -> list[Path]:
        """``clean`` unless this workspace's uploads were cleaned less than ``every`` seconds ago."""
        now = time.time()
        key = Path(self.workspace_root).resolve()
        if now - _LAST_CLEAN.get(key, 0.0) < every:
            return []
        _LAST_CLEAN[key] = now
        return self.clean(now=now)

    def clean(self, *, now: float | None = None, keep_days: float = KEEP_DAYS) -> list[Path]:
        """Delete every upload that no run's config.yaml names and that was last uploaded more
        than ``keep_days`` ago; returns the folders deleted."""
        with _LOCK:
            _LAST_CLEAN[Path(self.workspace_root).resolve()] = time.time()
            return self._clean(now=time.time() if now is None else now, keep_seconds=keep_days * _DAY)

    def _clean(self, *, now: float, keep_seconds: float, owner_folder: Path | None = None) -> list[Path]:
        uploads = [u for u in self._uploads() if owner_folder is None or u.parent == owner_folder]
        old = [u for u in uploads if now - _last_used(u) > keep_seconds]
        if not old:
            return []
        referenced = self._referenced(old)
        deleted = []
        for folder in old:
            if folder in referenced:
                continue
            aside = self.root / f".deleted-{uuid.uuid4().hex[:12]}"
            try:
                os.replace(folder, aside)  # gone in one step: no reader sees half a folder
            except OSError:
                continue
            shutil.rmtree(aside, ignore_errors=True)
            deleted.append(folder)
        for parent in {f.parent for f in deleted if f.parent != self.root}:
            try:
                parent.rmdir()  # an owner folder left empty
            except OSError:
                pass
        return deleted

    def _uploads(self) -> list[Path]:
        """Every upload folder: ``<user>/<sha16>``, and ``<sha16>`` from before uploads were per user."""
        found: list[Path] = []
        if not self.root.is_dir():
            return found
        for entry in self.root.iterdir():
            if entry.name.startswith(".") or not entry.is_dir() or entry.is_symlink():
                continue
            if _is_legacy(entry):
                found.append(entry)
                continue
            found.extend(sub for sub in entry.iterdir() if sub.is_dir() and not sub.is_symlink() and _DIGEST.match(sub.name))
        return found

    def _referenced(self, candidates: list[Path]) -> set[Path]:
        """The candidates that a run's config.yaml names (a staging run's too). A config that
        cannot be read keeps every candidate whose digest appears anywhere in its text."""
        import yaml

        by_key = {_key(self.root, folder): folder for folder in candidates}
        referenced: set[Path] = set()
        runs = Path(self.workspace_root) / "runs"
        if not runs.is_dir():
            return referenced
        for run in runs.iterdir():
            config = RunDir(run).config
            try:
                text = config.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            try:
                data = (yaml.safe_load(text) or {}).get("data") or {}
                paths = [data.get(k) for k in _DATA_KEYS if isinstance(data.get(k), str)]
            except (yaml.YAMLError, AttributeError, TypeError):
                referenced.update(f for f in candidates if f.name in text)
                continue
            for path in paths:
                folder = by_key.get(_key_of_path(path, self.root))
                if folder is not None:
                    referenced.add(folder)
        return referenced


def _key(root: Path, folder: Path) -> tuple[str, ...]:
    return folder.relative_to(root).parts


def _key_of_path(path: str, root: Path) -> tuple[str, ...] | None:
    """The upload folder a data path in a config points into: the parts after '.../uploads/'
    (the workspace may have moved since, so only the tail is compared)."""
    parts = Path(path).parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] != UPLOADS:
            continue
        rest = parts[i + 1:]
        if len(rest) >= 3 and _DIGEST.match(rest[1]):
            return rest[0], rest[1]
        if len(rest) >= 2 and _DIGEST.match(rest[0]):
            return (rest[0],)
    return None


def _is_legacy(folder: Path) -> bool:
    """``uploads/<sha16>/<file>``: a digest folder holding files (a user's folder holds folders)."""
    if not _DIGEST.match(folder.name):
        return False
    return any(child.is_file() for child in folder.iterdir())


def _last_used(folder: Path) -> float:
    """When the folder's upload was last stored (the newest time of the folder and its files)."""
    times = []
    for path in (folder, *folder.iterdir()):
        try:
            times.append(path.stat().st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)


def _size(folder: Path) -> int:
    total = 0
    if not folder.is_dir():
        return 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _touch(target: Path) -> None:
    now = time.time()
    for path in (target, target.parent):
        try:
            os.utime(path, (now, now))
        except OSError:
            pass


def _original_name(path: Path) -> str:
    # Gradio keeps the uploaded file's own name as the last path component.
    name = path.name.strip() or "data"
    name = name.replace("/", "_").replace("\\", "_")
    return "_" + name if name.startswith(".") else name
