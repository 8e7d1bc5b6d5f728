"""No directory-existence oracle in a member's ``model.backbone``: over HTTP, through the Train
tab's named endpoints (``/train_launch``, ``/train_estimate``) as a signed-in member, a folder
outside the ones an admin allowed gets one answer whether it exists or not (``/root`` and
``/nonexistent`` alike, through ``..`` and symlinks too). Inside an allowed folder the answer may
still say that a folder does not exist."""

from __future__ import annotations

import json
import secrets

import pandas as pd
import pytest

from tests.security.conftest import PASSWORDS
from tests.servers import free_port, start_server, stop, wait_until_up

DATASET = "paths-reviews"
OUTSIDE = "is outside the folders an admin allowed"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A studio with accounts whose one allowed model folder (``--model-dir``) holds an empty
    folder and a link to a secret folder beside it, and a saved dataset to launch with (saved
    before the server starts, so the Train tab offers it to every session)."""
    from studio.data.datasets_store import save_dataset
    from studio.users import UserStore
    from studio.workspace import Workspace

    root = tmp_path_factory.mktemp("model-paths")
    workspace = Workspace.at(root / "workspace")
    users = UserStore(workspace.root)
    users.add("root", PASSWORDS["root"], "admin")
    users.add("alice", PASSWORDS["alice"], "member")
    models = root / "models"
    (models / "empty").mkdir(parents=True)
    secret = root / "secret"
    secret.mkdir()
    (secret / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (models / "link-out").symlink_to(secret)
    save_dataset(workspace.datasets, DATASET, {"train": pd.DataFrame({"text": ["good", "bad"] * 4, "label": ["p", "n"] * 4})},
                 {"task": "classification", "columns": {"text": "text", "label": "label"}, "task_options": {}}, owner="alice")
    port = free_port()
    log = root / "server.log"
    process = start_server(workspace.root, port, log, "--model-dir", str(models))
    url = f"http://127.0.0.1:{port}"
    wait_until_up(process, url + "/", log)
    yield {"url": url, "workspace": workspace.root, "models": models, "secret": secret}
    stop(process)


def _client(served, name: str):
    from gradio_client import Client

    return Client(served["url"] + "/", auth=(name, PASSWORDS[name]), verbose=False, download_files=False)


def _runs(served) -> set[str]:
    runs = served["workspace"] / "runs"
    return {p.name for p in runs.iterdir()} if runs.is_dir() else set()


def test_a_member_learns_nothing_about_folders_outside_the_allowed_ones(served):
    models, secret = served["models"], served["secret"]
    alice = _client(served, "alice")
    before = _runs(served)

    def launched(backbone: str) -> str:
        # source, task, backbone, method, preset, device, GPUs, run name; the Advanced fields keep their defaults.
        result = alice.predict(f"dataset:{DATASET}", "classification", backbone, "full", "quick", "cpu", 1, "",
                               api_name="/train_launch")
        message = result[0] if isinstance(result, (list, tuple)) else result
        return str(message).replace(backbone, "<name>")

    def estimated(backbone: str) -> str:
        return str(alice.predict(f"dataset:{DATASET}", "classification", backbone, "full", "quick", "cpu",
                                 api_name="/train_estimate"))

    outside = ["/root", f"/nonexistent-{secrets.token_hex(4)}", str(secret), f"{models}/../secret",
               f"{models}/nope/../../secret", str(models / "link-out"), f"/root/{secrets.token_hex(4)}"]
    answers = {name: launched(name) for name in outside}
    assert len(set(answers.values())) == 1, answers
    assert OUTSIDE in next(iter(answers.values()))
    assert str(secret) not in json.dumps(answers[str(models / "link-out")])  # a link's target is never named

    estimates = {name: estimated(name) for name in outside}
    assert len(set(estimates.values())) == 1, estimates

    # Inside the allowed folder the member is told what is wrong.
    assert "does not exist" in launched(str(models / "missing"))
    assert "has no config.json" in launched(str(models / "empty"))
    assert _runs(served) == before  # nothing was queued
