"""Workspace settings that only admins change: ``<workspace>/settings.json``.

The rules of a shared studio live here, next to the users file, so the web app, the job
manager and the command line read the same ones:

- ``model_roots``: folders whose model subfolders members may train from (added to the folders
  given with ``studio serve --model-dir`` / ``$STUDIO_MODEL_DIRS``, which always stay allowed);
- ``trust_remote_code``: whether a run may execute Python code shipped with a model
  (``model.trust_remote_code``); off unless an admin turns it on;
- ``max_queued_per_user``: how many runs one member may have waiting in the queue (admins are
  exempt: they reorder and cancel anyone's runs, so a limit on them would protect nothing);
- the web server's rules: which other sites may call it with a user's sign-in, how long a sign-in
  lasts, how much a user may keep uploaded and how large a data file may grow once decoded.

The file is small JSON written atomically (a crash never leaves half of it); a missing file means
the defaults, a damaged one is refused rather than read as "everything allowed".
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from studio.errors import StudioError

SETTINGS_FILE = "settings.json"
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NO_LIMIT = ("", "none", "off", "no", "unlimited")


class SettingsError(StudioError):
    kind = "settings"


@dataclass(frozen=True)
class Settings:
    model_roots: tuple[str, ...] = ()
    trust_remote_code: bool = False
    max_queued_per_user: int | None = None
    # The web server's rules (studio.web): cross-site callers, how long a sign-in lasts, what a
    # member may store and what a file may grow to once decoded.
    allowed_origins: tuple[str, ...] = ()
    session_idle_hours: float = 8.0
    session_max_hours: float = 168.0
    upload_quota_mb: int | None = 2048
    max_rows: int | None = 2_000_000
    max_decoded_mb: int | None = 1024
    # Where runs train (studio.jobs.executors): this machine, or a Ray cluster at ray_address.
    executor: str = "local"
    ray_address: str = ""
    changed_by: str | None = None
    changed_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_roots"] = list(self.model_roots)
        data["allowed_origins"] = list(self.allowed_origins)
        return data


KEYS: dict[str, str] = {
    "model_roots": "folders whose model subfolders members may train from (comma-separated absolute paths; "
                   "the --model-dir folders are always allowed too)",
    "trust_remote_code": "allow runs with model.trust_remote_code: true, which execute Python code shipped with a model "
                         "(true/false; default false)",
    "max_queued_per_user": "most runs one member may have waiting in the queue (a number, or 'none' for no limit; "
                           "admins are exempt)",
    "allowed_origins": "other web sites whose pages may call the studio with a user's sign-in (comma-separated, "
                       "e.g. https://portal.example.com; default none: same origin only; read when the server starts)",
    "session_idle_hours": "a sign-in ends after this many hours without a request (default 8, a working day)",
    "session_max_hours": "a sign-in ends this many hours after it began, used or not (default 168, a week)",
    "upload_quota_mb": "megabytes of uploaded files one user may keep in the workspace (default 2048; 'none' for no limit)",
    "max_rows": "most rows a data file may have (default 2000000; 'none' for no limit)",
    "max_decoded_mb": "most megabytes a data file may take once decoded, e.g. a compressed Parquet file "
                      "(default 1024; 'none' for no limit)",
    "executor": "where runs train unless a submit says otherwise: local (worker processes on this machine, the default) "
                "or ray (jobs of the Ray cluster at ray_address, whose nodes mount the workspace at the same path)",
    "ray_address": "the Ray cluster's dashboard address for its Jobs API, e.g. http://head:8265 (empty: no cluster; "
                   "members can choose Ray for a run only when it is set)",
}
"""The keys an admin sets, and what each one means (``studio settings show`` prints these)."""


def _flag(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SettingsError(f"{key} must be true or false, not {raw!r}")


def _items(raw: Any) -> tuple[str, ...]:
    items = raw if isinstance(raw, (list, tuple)) else str(raw or "").replace("\n", ",").split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _limit(key: str, raw: Any) -> int | None:
    """A whole number of at least 1, or None for no limit."""
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in _NO_LIMIT):
        return None
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{key} must be a whole number or 'none', not {raw!r}") from None
    if not number.is_integer() or number < 1:
        raise SettingsError(f"{key} must be a whole number of at least 1 (or 'none' for no limit), not {raw!r}")
    return int(number)


def _hours(key: str, raw: Any) -> float:
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{key} must be a number of hours, not {raw!r}") from None
    if not 0.05 <= number <= 24 * 366:
        raise SettingsError(f"{key} must be between 0.05 and {24 * 366} hours, not {raw!r}")
    return number


def _origins(raw: Any) -> tuple[str, ...]:
    """Origins as browsers send them: scheme://host[:port], nothing after."""
    from urllib.parse import urlsplit

    checked: list[str] = []
    for item in _items(raw):
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise SettingsError(f"allowed origin {item!r} must look like https://host or https://host:port (no path)")
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        if origin not in checked:
            checked.append(origin)
    return tuple(checked)


_PARSERS = {
    "model_roots": _items,
    "trust_remote_code": lambda raw: _flag("trust_remote_code", raw),
    "max_queued_per_user": lambda raw: _limit("max_queued_per_user", raw),
    "allowed_origins": _origins,
    "session_idle_hours": lambda raw: _hours("session_idle_hours", raw),
    "session_max_hours": lambda raw: _hours("session_max_hours", raw),
    "upload_quota_mb": lambda raw: _limit("upload_quota_mb", raw),
    "max_rows": lambda raw: _limit("max_rows", raw),
    "max_decoded_mb": lambda raw: _limit("max_decoded_mb", raw),
    "executor": lambda raw: _executor(raw),
    "ray_address": lambda raw: _ray_address(raw),
}


def _executor(raw: Any) -> str:
    value = str(raw or "local").strip().lower()
    if value not in ("local", "ray"):
        raise SettingsError(f"executor must be local or ray, not {raw!r}")
    return value


def _ray_address(raw: Any) -> str:
    """http(s)://host:port of the cluster's dashboard (a bare host:port is taken as http)."""
    from urllib.parse import urlsplit

    text = str(raw or "").strip().rstrip("/")
    if not text or text.lower() in ("none", "off"):
        return ""
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise SettingsError(f"ray_address must look like http://head:8265 (the dashboard's address), not {raw!r}")
    return text


def parse_value(key: str, raw: Any) -> Any:
    """A setting's value from text (the command line, a form) or a plain value, checked."""
    parser = _PARSERS.get(key)
    if parser is None:
        raise SettingsError(f"there is no setting {key!r}; the settings are: {', '.join(KEYS)}")
    return parser(raw)


def shown(settings: Settings, key: str) -> str:
    """A setting's value as ``studio settings show`` prints it."""
    value = getattr(settings, key)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(value) or ("(none besides --model-dir)" if key == "model_roots" else "(none)")
    if value == "":
        return "(none)"
    return "none (no limit)" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def check_model_roots(roots: tuple[str, ...], workspace_root: Path) -> tuple[str, ...]:
    """Absolute, existing folders, resolved, without repeats; never one holding the workspace
    (that would let members train from every run's model and read other members' work)."""
    from studio.credentials import looks_like_token

    checked: list[str] = []
    workspace = workspace_root.resolve()
    for raw in roots:
        if looks_like_token(raw):
            raise SettingsError("a model folder looks like an access token; settings.json is not a place for secrets")
        path = Path(raw).expanduser()
        if not path.is_absolute():
            raise SettingsError(f"model folder {raw!r} must be an absolute path (e.g. /models)")
        if not path.is_dir():
            raise SettingsError(f"model folder {raw} does not exist or is not a folder on the server")
        real = path.resolve()
        if real == workspace or real in workspace.parents:
            raise SettingsError(f"model folder {raw} holds the studio's workspace: members could train from (and so read) "
                                "every run's model; allow a folder that only holds models")
        if str(real) not in checked:
            checked.append(str(real))
    return tuple(checked)


@dataclass
class SettingsStore:
    workspace_root: Path
    path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workspace_root = Path(self.workspace_root)
        self.path = self.workspace_root / SETTINGS_FILE

    def load(self) -> Settings:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Settings()
        except (OSError, ValueError) as error:
            raise SettingsError(f"the settings file {self.path.name} cannot be read ({error}); fix or delete it "
                                "(deleting it restores the defaults)") from None
        if not isinstance(data, dict):
            raise SettingsError(f"the settings file {self.path.name} is damaged (not a JSON object); fix or delete it")
        values = {key: parse_value(key, data[key]) for key in KEYS if key in data}
        changed = data.get("changed") if isinstance(data.get("changed"), dict) else {}
        return Settings(**values, changed_by=changed.get("by"), changed_at=changed.get("at"))

    def update(self, *, by: str | None = None, **values: Any) -> Settings:
        """Change some settings (``key=value``, text or plain values) and save them; returns the new ones."""
        current = self.load()
        parsed = {key: parse_value(key, value) for key, value in values.items()}
        if "model_roots" in parsed:
            parsed["model_roots"] = check_model_roots(parsed["model_roots"], self.workspace_root)
        new = replace(current, **parsed, changed_by=by, changed_at=time.time())
        self._save(new)
        return new

    def _save(self, settings: Settings) -> None:
        data = {**{key: value for key, value in settings.to_dict().items() if key in KEYS},
                "changed": {"by": settings.changed_by, "at": settings.changed_at}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".settings-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2, ensure_ascii=False)
                f.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def allowed_model_roots(fixed: list[Path] | None, settings: Settings) -> list[Path] | None:
    """The folders local models may come from: the fixed ones (command line, environment) and the
    admin's. ``None`` stays ``None`` (a manager made for the command line allows any folder)."""
    if fixed is None:
        return None
    roots = [Path(p).resolve() for p in fixed]
    for extra in settings.model_roots:
        path = Path(extra).resolve()
        if path not in roots:
            roots.append(path)
    return roots
