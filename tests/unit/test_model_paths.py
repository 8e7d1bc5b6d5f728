"""A member's ``model.backbone`` outside the folders an admin allowed gets one refusal whether or
not the folder exists (no oracle for which folders the server has), through ``..`` and symlinks
too; only inside an allowed folder may the answer say a folder does not exist. Checked on
``resolve_backbone``, on ``JobManager.submit`` and on the Train tab's estimate."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from studio.errors import ModelNotAvailableError, StudioError
from studio.models.resolve import resolve_backbone

OUTSIDE = "is outside the folders an admin allowed"


@pytest.fixture
def folders(tmp_path, tiny_encoder):
    """An allowed folder with a model, an empty folder and a link out; a secret folder beside it."""
    import shutil

    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(tiny_encoder, models / "tiny")
    (models / "empty").mkdir()
    secret = tmp_path / "secret"
    (secret / "inner").mkdir(parents=True)
    (secret / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (models / "link-out").symlink_to(secret)
    (tmp_path / "link-in").symlink_to(models / "tiny")
    return tmp_path, models, secret


def refusal(name: str, roots) -> str:
    with pytest.raises(ModelNotAvailableError) as caught:
        resolve_backbone(name, allowed_roots=roots)
    return str(caught.value).replace(name, "<name>")


def test_outside_the_allowed_folders_one_message_whether_or_not_the_folder_exists(folders):
    tmp, models, secret = folders
    roots = [models]
    outside = [str(secret), str(tmp / "nonexistent"), "/root", "/nonexistent", "/etc/passwd",
               f"{models}/../secret", f"{models}/../nonexistent",
               f"{models}/nope/../../secret",  # '..' by its letters: 'nope' need not exist
               f"{secret}/inner/../../models/../secret", str(models / "link-out"), str(models / "link-out" / "inner"),
               str(models / "link-out" / "missing"), "~", "~/anything", "~nobody-at-all/x"]
    messages = {name: refusal(name, roots) for name in outside}
    assert len(set(messages.values())) == 1, messages
    assert OUTSIDE in next(iter(messages.values()))
    assert str(secret) not in "".join(messages.values())  # a link's target is never named

    # Inside an allowed folder the answer may say what is wrong with it.
    assert "does not exist" in refusal(str(models / "missing"), roots)
    assert "does not exist" in refusal(f"{models}/nope/../missing", roots)
    assert "has no config.json" in refusal(str(models / "empty"), roots)
    assert resolve_backbone(str(models / "tiny"), allowed_roots=roots).source == "local"
    assert resolve_backbone(f"{models}/empty/../tiny", allowed_roots=roots).source == "local"
    assert resolve_backbone(str(tmp / "link-in"), allowed_roots=roots).source == "local"  # a link into one: allowed
    # No folders allowed at all: everything local is outside.
    assert refusal(str(models / "tiny"), []) == refusal("/nonexistent", [])
    # The command line (no roots given) may use any folder, and says what is missing.
    assert "does not exist" in refusal(str(tmp / "nonexistent"), None)


def test_a_relative_name_outside_the_allowed_folders_is_a_hub_id_not_a_folder(folders, monkeypatch):
    tmp, models, secret = folders
    monkeypatch.chdir(tmp)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # 'secret' exists under the server's working folder, 'absent' does not: the same answer.
    assert refusal("secret", [models]) == refusal("absent", [models])
    assert "not in the local cache" in refusal("secret", [models])
    # Inside an allowed folder a relative name is the folder.
    monkeypatch.chdir(models)
    assert resolve_backbone("tiny", allowed_roots=[models]).source == "local"


@pytest.fixture
def manager(folders, monkeypatch):
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "0")
    from studio.data.datasets_store import save_dataset
    from studio.jobs.manager import JobManager
    from studio.workspace import Workspace

    tmp, models, _ = folders
    ws = Workspace.at(tmp / "ws")
    save_dataset(ws.datasets, "saved", {"train": pd.DataFrame({"text": ["good", "bad"] * 4, "label": ["p", "n"] * 4})},
                 {"task": "classification", "columns": {"text": "text", "label": "label"}, "task_options": {}})
    jobs = JobManager(ws, supervise=False, allowed_model_roots=[models])
    yield jobs
    jobs.shutdown()


def test_a_submit_refuses_every_folder_outside_alike(manager, folders):
    from studio.config import RunConfig

    tmp, models, secret = folders

    def submitted(backbone: str) -> str:
        config = RunConfig.from_dict({"task": {"name": "classification"}, "data": {"dataset": "saved"},
                                      "model": {"backbone": backbone}})
        with pytest.raises(StudioError) as caught:
            manager.submit(config, owner="alice")
        return str(caught.value).replace(backbone, "<name>")

    assert submitted("/root") == submitted("/nonexistent") == submitted(str(secret)) == submitted(f"{models}/../secret")
    assert OUTSIDE in submitted("/root")
    assert "does not exist" in submitted(str(models / "missing"))
    assert manager.store.list() == []  # nothing queued


def test_the_estimate_says_the_same_for_every_folder_outside(manager, folders, monkeypatch):
    from studio.ui.model_cache import ModelCache
    from studio.ui.services import Services
    from studio.ui.train_tab import DATASET, estimate_md

    tmp, models, secret = folders
    services = Services(workspace=manager.workspace, jobs=manager, models=ModelCache())

    def estimate(backbone: str) -> str:
        return estimate_md(services, None, DATASET + "saved", "classification", backbone, "full", "balanced", "cpu", {})

    refused = {estimate(name) for name in ("/root", "/nonexistent", str(secret), f"{models}/../secret", "~")}
    assert len(refused) == 1 and "not among the model folders" in refused.pop()
    assert "Estimate" in estimate(str(models / "tiny")) and "not among" not in estimate(str(models / "tiny"))
