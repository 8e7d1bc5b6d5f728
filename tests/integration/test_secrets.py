"""No secret lands where the team can read it. Tiny runs train through the job manager (as the web
server starts them) with hub tokens in the server's environment, which every worker inherits, and
with accounts whose passwords were just set; one run completes, one fails with a traceback. Then
every file of the workspace (run folders, exports, model cards, the run index, settings.json,
saved datasets), except the users file that holds the password hashes, is searched byte by byte
for the tokens and the passwords."""

from __future__ import annotations

import shutil
import time

import pytest

from studio.config import RunConfig

TOKEN = "hf_secretTOKENvalue0123456789abcdefXYZ"
OTHER_TOKEN = "hf_anotherSECRETvalue9876543210zyxwvu"
PASSWORDS = {"ann": "ann-secret-password-42", "root": "root-secret-password-42"}


def wait_until_done(manager, run_id: str, timeout: float = 240) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = manager.get(run_id).status
        if status in ("completed", "failed", "cancelled", "interrupted"):
            return status
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} still {manager.get(run_id).status} after {timeout}s")


def leaks(root, secrets: dict[str, str], skip: set) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path in skip:
            continue
        data = path.read_bytes()
        found += [f"{name} in {path.relative_to(root)}" for name, secret in secrets.items() if secret.encode() in data]
    return found


def test_tokens_and_passwords_never_reach_a_file_the_team_can_read(tmp_path, tiny_encoder, toy_csv, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", OTHER_TOKEN)
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "0")
    from studio.data.datasets_store import save_dataset
    from studio.jobs.manager import JobManager
    from studio.settings import SettingsStore
    from studio.ui.model_cache import ModelCache
    from studio.ui.downloads import KINDS, build
    from studio.ui.services import Services
    from studio.users import USERS_FILE, UserStore
    from studio.workspace import Workspace

    workspace = Workspace.at(tmp_path / "workspace")
    users = UserStore(workspace.root)
    users.add("root", PASSWORDS["root"], "admin")
    users.add("ann", PASSWORDS["ann"])
    models = tmp_path / "models"
    shutil.copytree(tiny_encoder, models / "tiny-bert")
    SettingsStore(workspace.root).update(by="root", model_roots=str(models), max_queued_per_user=3)
    import pandas as pd

    save_dataset(workspace.datasets, "reviews", {"train": pd.read_csv(toy_csv)}, {"task": "classification"}, owner="ann")

    manager = JobManager(workspace, poll_s=0.2, allowed_model_roots=[])
    services = Services(workspace=workspace, jobs=manager, models=ModelCache())
    try:
        base = {"data": {"train": str(toy_csv)}, "model": {"backbone": str(models / "tiny-bert")},
                "training": {"max_steps": 4, "batch_size": 8, "max_length": 32, "eval_strategy": "steps", "eval_steps": 2,
                             "save_strategy": "steps", "logging_steps": 1, "early_stopping_patience": 0}}
        completed = manager.submit(RunConfig.from_dict({"name": "clean", **base}), owner="ann")
        # The worker really is handed the tokens (so finding none below means something).
        env = manager._executor("local").env(manager.get(completed))
        assert env["HF_TOKEN"] == TOKEN and env["HUGGING_FACE_HUB_TOKEN"] == OTHER_TOKEN
        assert wait_until_done(manager, completed) == "completed", (manager.run_dir(completed) / "worker.log").read_text()[-3000:]
        failed = manager.submit(RunConfig.from_dict({"name": "broken", **base}), owner="ann",
                                env={"STUDIO_FAULT": "error@2"})
        assert wait_until_done(manager, failed) == "failed"
        assert "Traceback" in (manager.run_dir(failed) / "worker.log").read_text()  # the error path wrote its log
        # What members download: the predictions as CSV, the config, the model with its card.
        # (Written inside the workspace here, so the scan below reads them too.)
        for kind in KINDS:
            folder = services.exports / kind
            folder.mkdir(parents=True)
            assert build(services, completed, kind, folder).exists()
        assert (manager.run_dir(completed) / "README.md").exists()
    finally:
        manager.shutdown(cancel=True)

    secrets = {"HF_TOKEN": TOKEN, "HUGGING_FACE_HUB_TOKEN": OTHER_TOKEN, **{f"password of {n}": p for n, p in PASSWORDS.items()}}
    assert leaks(workspace.root, secrets, skip={workspace.root / USERS_FILE}) == []
    # The users file holds hashes only, never a password.
    assert leaks(workspace.root, {k: v for k, v in secrets.items() if k.startswith("password")}, skip=set()) == []


def test_a_token_in_a_config_is_refused_before_anything_is_written(tmp_path, tiny_encoder, toy_csv, monkeypatch):
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "0")
    from studio.cli import main
    from studio.errors import ConfigError

    config = tmp_path / "config.yaml"
    config.write_text(f"data:\n  train: {toy_csv}\nmodel:\n  backbone: {tiny_encoder}\nname: {TOKEN}\n")
    with pytest.raises(ConfigError, match="config key 'name' holds what looks like an access token"):
        RunConfig.load(config)
    assert main(["runs", "submit", str(config), "--workspace", str(tmp_path / "ws")]) == 2
    runs = tmp_path / "ws" / "runs"
    assert not runs.exists() or not list(runs.iterdir())
