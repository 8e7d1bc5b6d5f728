"""What the workspace's settings allow a run to do: execute a model's own code, wait in the queue
beside the owner's other runs. The job manager asks before it prepares or starts anything, so a
refusal leaves nothing on disk and never reaches a worker."""

from __future__ import annotations

from pathlib import Path

from studio.jobs.store import JobError, QueueLimitReached
from studio.runs import RunDir
from studio.settings import Settings, SettingsStore


class RemoteCodeRefused(JobError):
    kind = "remote_code"


def settings_of(workspace_root: Path) -> Settings:
    return SettingsStore(workspace_root).load()


def check_remote_code(trust_remote_code: bool, settings: Settings, what: str = "this run") -> None:
    """Refuse ``model.trust_remote_code`` unless an admin allowed it: the worker (and later the
    server, loading the model for the playground) would run whatever Python the model ships."""
    if trust_remote_code and not settings.trust_remote_code:
        raise RemoteCodeRefused(
            f"{what} sets model.trust_remote_code: true, which runs Python code shipped with the model, and this "
            "studio does not allow that",
            hint="turn model.trust_remote_code off, or ask an admin to allow it (Settings tab, or "
                 "'studio settings set trust_remote_code true')")


def run_trusts_remote_code(run_dir: Path) -> bool:
    """Whether a run's saved config.yaml sets model.trust_remote_code (read without building it)."""
    import yaml

    try:
        config = yaml.safe_load(RunDir(run_dir).config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return False
    return bool(isinstance(config, dict) and isinstance(config.get("model"), dict) and config["model"].get("trust_remote_code"))


def queue_limit_for(owner: str | None, settings: Settings, workspace_root: Path) -> int | None:
    """The most runs ``owner`` may have queued, or None when no limit applies: no limit set, a run
    without an owner (a studio without accounts), or an admin (who can reorder and cancel any run)."""
    from studio.users import UserStore

    limit = settings.max_queued_per_user
    if not limit or not owner:
        return None
    user = UserStore(workspace_root).get(owner)
    if user is not None and user.is_admin:
        return None
    return limit


__all__ = ["QueueLimitReached", "RemoteCodeRefused", "check_remote_code", "queue_limit_for", "run_trusts_remote_code",
           "settings_of"]
