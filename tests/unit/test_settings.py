"""Workspace settings (settings.json, 'studio settings') and what they allow the job manager:
remote code, local model folders, the per-member queue limit."""

from __future__ import annotations

import json

import pytest

from studio.cli import main
from studio.errors import StudioError
from studio.settings import Settings, SettingsError, SettingsStore, allowed_model_roots


def test_defaults_without_a_file_and_a_damaged_file_is_refused(tmp_path):
    store = SettingsStore(tmp_path)
    assert store.load() == Settings()
    assert store.load().trust_remote_code is False and store.load().max_queued_per_user is None
    store.path.write_text("{not json")
    with pytest.raises(SettingsError, match="cannot be read"):
        store.load()
    store.path.write_text(json.dumps({"trust_remote_code": "perhaps"}))
    with pytest.raises(SettingsError, match="true or false"):  # never read as "allowed"
        store.load()


def test_update_checks_values_and_writes_atomically(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    store = SettingsStore(workspace)
    saved = store.update(by="root", model_roots=f"{models}, {models}\n", trust_remote_code="yes", max_queued_per_user="3")
    assert saved.model_roots == (str(models.resolve()),) and saved.trust_remote_code is True
    assert saved.max_queued_per_user == 3 and saved.changed_by == "root"
    assert store.load() == saved
    assert [p.name for p in workspace.iterdir()] == ["settings.json"]  # no temporary file left
    assert store.update(max_queued_per_user="none").max_queued_per_user is None
    for key, value, message in [
        ("max_queued_per_user", "0", "at least 1"), ("max_queued_per_user", "2.5", "whole number"),
        ("model_roots", "relative/models", "absolute"), ("model_roots", str(tmp_path / "missing"), "does not exist"),
        ("model_roots", str(tmp_path), "holds the studio's workspace"), ("trust_remote_code", "maybe", "true or false"),
    ]:
        with pytest.raises(SettingsError, match=message):
            store.update(**{key: value})
    with pytest.raises(SettingsError, match="no setting"):
        store.update(colour="blue")
    assert store.load().trust_remote_code is True  # a refused change changes nothing


def test_command_line_roots_always_stay_and_the_admins_are_added(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    settings = Settings(model_roots=(str(b), str(a)))
    assert allowed_model_roots([a], settings) == [a.resolve(), b.resolve()]
    assert allowed_model_roots(None, settings) is None  # the command line's manager: any folder


def test_settings_command(tmp_path, capsys):
    ws = str(tmp_path / "ws")
    assert main(["settings", "show", "--workspace", ws]) == 0
    assert "max_queued_per_user  none (no limit)" in capsys.readouterr().out
    assert main(["--workspace", ws, "settings", "set", "max_queued_per_user", "2"]) == 0
    assert "max_queued_per_user  2" in capsys.readouterr().out
    assert main(["--workspace", ws, "settings", "set", "trust_remote_code", "sometimes"]) == 2
    assert "true or false" in capsys.readouterr().err
    assert "(command line)" in json.loads((tmp_path / "ws" / "settings.json").read_text())["changed"]["by"]


# ---- what the job manager allows ---------------------------------------------------------------------
@pytest.fixture
def manager(workspace, monkeypatch):
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "0")
    from studio.jobs.manager import JobManager

    made = JobManager(workspace, supervise=False, allowed_model_roots=[])
    yield made
    made.shutdown()


@pytest.fixture
def config(tiny_encoder, toy_csv):
    from studio.config import RunConfig

    def make(**model):
        return RunConfig.from_dict({"name": "toy", "data": {"train": str(toy_csv)},
                                    "model": {"backbone": str(tiny_encoder), **model}, "training": {"max_steps": 2}})

    return make


def runs_on_disk(workspace) -> list[str]:
    return sorted(p.name for p in workspace.runs.iterdir() if not p.name.startswith("."))


def test_local_models_only_from_allowed_folders_and_the_admin_can_add_one(manager, config, workspace, tiny_encoder):
    with pytest.raises(StudioError, match="outside the folders an admin allowed"):
        manager.submit(config(), owner="ann")
    SettingsStore(workspace.root).update(model_roots=str(tiny_encoder))
    run_id = manager.submit(config(), owner="ann")
    assert manager.get(run_id).status == "queued"


def test_remote_code_is_refused_until_an_admin_allows_it(manager, config, workspace, tiny_encoder):
    from studio.jobs.policy import RemoteCodeRefused

    SettingsStore(workspace.root).update(model_roots=str(tiny_encoder))
    with pytest.raises(RemoteCodeRefused, match="trust_remote_code") as refused:
        manager.submit(config(trust_remote_code=True), owner="ann")
    assert "studio settings set trust_remote_code true" in str(refused.value)
    assert runs_on_disk(workspace) == []  # refused before anything was prepared
    SettingsStore(workspace.root).update(trust_remote_code=True)
    run_id = manager.submit(config(trust_remote_code=True), owner="ann")
    # Queued while allowed, then disallowed: it does not start.
    SettingsStore(workspace.root).update(trust_remote_code=False)
    manager.poll()
    record = manager.get(run_id)
    assert record.status == "failed" and record.error_kind == "remote_code" and not record.pid


def test_a_member_may_queue_up_to_the_limit_admins_are_exempt(manager, config, workspace, tiny_encoder):
    from studio.jobs.store import QueueLimitReached
    from studio.users import UserStore

    users = UserStore(workspace.root)
    users.add("ann", "long enough secret")
    users.add("root", "long enough secret", "admin")
    SettingsStore(workspace.root).update(model_roots=str(tiny_encoder), max_queued_per_user=2)
    first = manager.submit(config(), owner="ann")
    manager.submit(config(), owner="ann")
    before = runs_on_disk(workspace)
    with pytest.raises(QueueLimitReached) as refused:
        manager.submit(config(), owner="ann")
    message = str(refused.value)
    assert "ann already has 2 runs waiting in the queue" in message and "at most 2" in message
    assert "cancel one" in message and "max_queued_per_user" in message
    assert runs_on_disk(workspace) == before  # nothing left behind
    for _ in range(3):
        manager.submit(config(), owner="root")  # an admin: no limit
    manager.submit(config(), owner="bob")  # another member has places of his own
    # A resumed run counts like a new one.
    manager.cancel(first)
    manager.submit(config(), owner="ann")
    with pytest.raises(QueueLimitReached):
        manager.resume(first)
    assert manager.get(first).status == "cancelled"
    assert manager.resume(first, queue_limit=False).status == "queued"  # an admin resuming it
    # The atomic check in the store: an insert past the limit is refused in its transaction.
    from studio.jobs.store import RunRecord

    with pytest.raises(QueueLimitReached):
        manager.store.insert(RunRecord(id="x", run_dir=str(workspace.runs / "x"), owner="ann"), queue_limit=3)


def test_tokens_never_enter_a_runs_config_or_environment(manager, config, workspace, tiny_encoder):
    from studio.config import RunConfig
    from studio.errors import ConfigError

    token = "hf_" + "a1B2" * 9
    with pytest.raises(ConfigError, match="looks like an access token") as refused:
        RunConfig.from_dict({"name": "x", "task": {"name": "generation", "system_prompt": f"use {token}"}})
    assert token not in str(refused.value) and "task.system_prompt" in str(refused.value)
    with pytest.raises(ConfigError, match="HF_TOKEN"):
        RunConfig.from_dict({}).with_overrides([f"model.backbone={token}"])
    SettingsStore(workspace.root).update(model_roots=str(tiny_encoder))
    with pytest.raises(StudioError, match="HUB_KEY holds what looks like an access token"):
        manager.submit(config(), owner="ann", env={"HUB_KEY": token})
    assert runs_on_disk(workspace) == []
