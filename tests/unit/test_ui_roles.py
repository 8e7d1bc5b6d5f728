"""Who may do what in the web app, checked in the handlers themselves (called as Gradio calls
them, with a request whose user is signed in): settings and the queue's order for admins,
datasets and run downloads for their owners and admins, remote code only where allowed."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pandas as pd
import pytest

gr = pytest.importorskip("gradio")

from tests.conftest import toy_sentiment_rows, write_csv  # noqa: E402

ANN, BOB, ROOT = (SimpleNamespace(username=name) for name in ("ann", "bob", "root"))


@pytest.fixture
def services(tmp_path, monkeypatch):
    """Services on a job manager that starts nothing (queued runs stay queued)."""
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "0")
    from studio.jobs.manager import JobManager
    from studio.ui.model_cache import ModelCache
    from studio.ui.services import Services
    from studio.users import UserStore
    from studio.workspace import Workspace

    ws = Workspace.at(tmp_path / "ws")
    users = UserStore(ws.root)
    users.add("ann", "long enough secret")
    users.add("bob", "long enough secret")
    users.add("root", "long enough secret", "admin")
    made = Services(workspace=ws, jobs=JobManager(ws, supervise=False, allowed_model_roots=[]), models=ModelCache())
    made.exports.mkdir(parents=True, exist_ok=True)
    yield made
    made.jobs.shutdown()


@pytest.fixture
def app(services):
    from studio.ui.app import build_app

    return build_app(services)


def endpoint(app, name: str):
    return next(dep.fn for dep in app.fns.values() if dep.api_name == name)


def queued_run(services, run_id: str, owner: str):
    from studio.jobs.store import RunRecord

    run_dir = services.workspace.runs / run_id
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("name: x\ntask:\n  name: classification\n")
    services.jobs.store.insert(RunRecord(id=run_id, run_dir=str(run_dir), owner=owner, created=time.time()))


def test_roles_come_from_the_users_file(services, tmp_path):
    from studio.errors import StudioError
    from studio.ui.app import make_services

    assert services.is_admin(ROOT) and not services.is_admin(ANN)
    assert services.is_admin(None)  # the server itself
    assert not services.is_admin(SimpleNamespace(username=None))  # accounts exist, nobody signed in
    assert not services.is_admin(SimpleNamespace(username="ghost"))  # removed from the users file
    with pytest.raises(StudioError, match="only an admin can do this \\(ann is not one\\)"):
        services.check_admin(ANN)
    alone = make_services(tmp_path / "alone", [])
    try:
        assert alone.is_admin(SimpleNamespace(username=None))  # no accounts: whoever is at this machine
    finally:
        alone.jobs.shutdown()


def test_settings_are_saved_by_admins_only_and_never_sent_to_every_page(services, app, tmp_path):
    from studio.settings import SettingsStore

    models = tmp_path / "models"
    models.mkdir()
    save = endpoint(app, "settings_save")
    refused = save(str(models), True, "2", request=ANN)
    assert "only an admin" in refused[0]
    assert SettingsStore(services.workspace.root).load().trust_remote_code is False
    saved = save(str(models), True, "2", request=ROOT)
    assert "settings saved" in saved[0] and saved[2] == str(models.resolve()) and saved[3] is True and saved[4] == "2"
    settings = SettingsStore(services.workspace.root).load()
    assert settings.trust_remote_code and settings.max_queued_per_user == 2 and settings.changed_by == "root"
    assert services.model_roots() == [models.resolve()]
    bad = save("relative/path", False, "", request=ROOT)
    assert "absolute path" in bad[0] and SettingsStore(services.workspace.root).load().trust_remote_code
    # The page's configuration (sent to every signed-in user) holds no setting; an admin's page loads them.
    from studio.ui.app import build_app

    config = build_app(services).get_config_file()
    roots_box = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "settings-model-roots")
    assert roots_box["props"].get("value", "") == "" and str(models) not in str(config)
    tab = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "tab-settings")
    assert tab["props"]["visible"] is False


def test_the_queue_order_is_changed_by_admins_only(services, app):
    queued_run(services, "run-a", "ann")
    queued_run(services, "run-b", "bob")
    top = endpoint(app, "runs_queue_top")
    _, message = top("run-b", request=BOB)
    assert "only an admin" in message and [r.id for r in services.jobs.queue()] == ["run-a", "run-b"]
    _, message = top("run-b", request=ROOT)
    assert "position 1" in message and [r.id for r in services.jobs.queue()] == ["run-b", "run-a"]
    _, message = endpoint(app, "runs_queue_down")(None, request=ROOT)
    assert "pick a queued run" in message


def test_downloads_go_through_one_owner_check(services, app):
    from studio.errors import StudioError

    queued_run(services, "run-a", "ann")
    with pytest.raises(StudioError, match="run run-a belongs to ann; only its owner or an admin can download it"):
        services.check_may_download(BOB, "run-a")
    # The Runs tab links the run's files (the server's checked route) for its owner and admins only.
    ownership = next(dep.fn for dep in app.fns.values() if getattr(dep.fn, "__name__", "") == "ownership_fn")
    links, *_ = ownership("run-a", request=BOB)
    assert "download/" not in links
    for who in (ANN, ROOT):
        services.check_may_download(who, "run-a")
        links, *_ = ownership("run-a", request=who)
        assert 'href="download/run-a/config"' in links and 'id="runs-download-model"' in links


def test_datasets_are_replaced_and_deleted_by_their_owner_or_an_admin(services, app, tmp_path):
    from studio.data.datasets_store import dataset_info, list_datasets, save_dataset
    from studio.ui.data_state import DataState

    csv = write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(40))
    state = DataState(path=str(csv), name="reviews.csv", task="classification", columns={"text": "text", "label": "label"},
                      ok=True)
    save = endpoint(app, "data_save")
    _, message = save("reviews", state, False, request=ANN)
    assert "saved dataset 'reviews'" in message and dataset_info(services.workspace.datasets, "reviews").owner == "ann"
    _, message = save("reviews", state, False, request=BOB)
    assert "already exists" in message and "Replace a dataset of this name" in message
    _, message = save("reviews", state, True, request=BOB)
    assert "dataset 'reviews' belongs to ann" in message
    _, message = save("reviews", state, True, request=ROOT)
    assert "saved dataset 'reviews'" in message
    assert dataset_info(services.workspace.datasets, "reviews").owner == "ann"  # an admin's fix leaves it Ann's

    save_dataset(services.workspace.datasets, "legacy", {"train": pd.DataFrame({"text": ["a"], "label": ["x"]})}, {})
    delete = endpoint(app, "data_delete_dataset")
    message, _, table, _ = delete("reviews", False, request=ANN)
    assert "tick the confirmation box" in message
    message, *_ = delete("reviews", True, request=BOB)
    assert "belongs to ann" in message and "reviews" in list_datasets(services.workspace.datasets)
    message, *_ = delete("legacy", True, request=ANN)
    assert "belongs to nobody (saved before accounts existed)" in message
    message, _, table, picker = delete("reviews", True, request=ANN)
    assert "deleted dataset 'reviews'" in message
    assert table["owner"].tolist() == ["—"] and table["name"].tolist() == ["legacy"]
    message, *_ = delete("legacy", True, request=ROOT)
    assert list_datasets(services.workspace.datasets) == []


def test_remote_code_switch_and_refusals_in_the_page(services):
    from studio.jobs.policy import RemoteCodeRefused
    from studio.jobs.store import QueueLimitReached
    from studio.settings import SettingsStore
    from studio.ui import i18n
    from studio.ui.train_tab import REMOTE_CODE_KEY, ADVANCED, refusal_html, remote_code_allowed

    assert REMOTE_CODE_KEY in {key for _, _, key in ADVANCED}
    assert remote_code_allowed(services) is False
    SettingsStore(services.workspace.root).update(trust_remote_code=True)
    assert remote_code_allowed(services) is True
    SettingsStore(services.workspace.root).path.write_text("{damaged")
    assert remote_code_allowed(services) is False  # a damaged file allows nothing
    assert "ask an admin to allow it in Settings" in refusal_html(RemoteCodeRefused("x"))
    text = refusal_html(QueueLimitReached("ann", 3, 3))
    assert "you already have 3 runs waiting" in text and "(3)" in text and "cancel one" in text
    assert "3" in i18n.t("train.queue_limit", "zh", queued=3, limit=3)


def test_every_handler_that_asks_for_the_request_gets_it(app):
    """Gradio passes the request only to a positional parameter; one after *args stays None, and a
    run launched that way would have no owner (anyone could cancel or delete it)."""
    import inspect
    import typing

    for dep in app.fns.values():
        if dep.fn is None:
            continue
        hints = typing.get_type_hints(dep.fn)
        for param in inspect.signature(dep.fn).parameters.values():
            if hints.get(param.name) in (gr.Request, typing.Optional[gr.Request]):
                assert param.kind is param.POSITIONAL_OR_KEYWORD, f"{dep.api_name or dep.fn.__name__}: {param.name}"


def test_the_playground_loads_a_remote_code_run_only_while_allowed(services):
    from studio.errors import StudioError
    from studio.settings import SettingsStore
    from studio.ui.playground_tab import check_remote_code, load_model

    run_dir = services.workspace.runs / "remote"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("model:\n  backbone: some/model\n  trust_remote_code: true\n")
    with pytest.raises(StudioError, match="run remote was trained with trust_remote_code"):
        load_model(services, "remote")
    SettingsStore(services.workspace.root).update(trust_remote_code=True)
    check_remote_code(services, run_dir)  # allowed now
    (run_dir / "config.yaml").write_text("model:\n  backbone: some/model\n")
    SettingsStore(services.workspace.root).update(trust_remote_code=False)
    check_remote_code(services, run_dir)  # a run without remote code is always fine


def test_accounts_added_after_the_server_started_leave_nobody_admin(services):
    from studio.errors import StudioError

    with pytest.raises(StudioError, match="nobody is signed in: restart the server"):
        services.check_admin(SimpleNamespace(username=None))


def test_the_log_a_page_shows_never_holds_a_token(services, monkeypatch):
    from studio.credentials import REDACTED
    from studio.ui.train_tab import log_text

    secret = "hf_" + "Zy9" * 12
    monkeypatch.setenv("HF_TOKEN", "plain-secret-value")
    queued_run(services, "run-x", "ann")
    (services.workspace.runs / "run-x" / "worker.log").write_text(f"token={secret}\nheader plain-secret-value\n")
    record = SimpleNamespace(id="run-x", status="failed")
    shown = log_text(services, record, None)
    assert secret not in shown and "plain-secret-value" not in shown and shown.count(REDACTED) == 2
