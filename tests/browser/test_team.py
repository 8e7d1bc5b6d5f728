"""A studio with accounts, used by three people at once in separate browser contexts: two members
and an admin, each signed in through the login page. Alice trains; Bob sees her run and her
dataset in the team's lists but is offered none of her run's actions, and the server refuses them
when he calls them anyway; only the admin gets the Settings tab and the queue's order.

Alice's run waits in the queue behind a run Bob started from a terminal, which holds the only CPU
slot until the test cancels it: her run stays active while the others look at it however slow the
machine is, and then trains only a few steps. Screenshots: test-artifacts/team-*.png."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import ARTIFACTS, STEP_DELAY, _kill_workers, shot  # noqa: E402
from tests.browser.test_flows import RUN_TIMEOUT_MS, set_up_training, upload_reviews  # noqa: E402
from tests.browser.ui import choose, expect_no_traceback, fill, tab  # noqa: E402
from tests.servers import free_port, start_server, stop, wait_until_up  # noqa: E402

PASSWORDS = {"root": "root-password-1", "alice": "alice-password-1", "bob": "bob-password-1"}


@pytest.fixture(scope="module")
def team_server(tmp_path_factory, tiny_encoder):
    """The studio with an admin and two members, and the tiny BERT in an allowed model folder."""
    from studio.users import UserStore
    from studio.workspace import Workspace

    root = tmp_path_factory.mktemp("studio-team")
    workspace = Workspace.at(root / "workspace").root
    users = UserStore(workspace)
    users.add("root", PASSWORDS["root"], "admin")
    users.add("alice", PASSWORDS["alice"])
    users.add("bob", PASSWORDS["bob"])
    models = root / "models"
    shutil.copytree(tiny_encoder, models / "tiny-bert")
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "team-server.log", "wb")
    process = start_server(workspace, port, log, "--model-dir", str(models), env={"STUDIO_STEP_DELAY": STEP_DELAY})
    url = f"http://127.0.0.1:{port}/"
    wait_until_up(process, url)
    yield {"url": url, "workspace": workspace, "models": models}
    stop(process)
    log.close()
    _kill_workers(workspace)


@pytest.fixture
def sign_in(browser, team_server):
    """Open a fresh browser context (its own cookies) and sign in through the login page."""
    contexts = []

    def open_as(name: str):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(team_server["url"])
        page.wait_for_url(re.compile(r"/login\?next="))  # the studio's sign-in page
        page.locator("#username").fill(name)
        page.locator("#password").fill(PASSWORDS[name])
        page.locator("#login-submit").click()
        page.wait_for_selector("#data-file")
        expect(page.locator("#studio-footer")).to_contain_text(f"signed in as {name}")
        return page

    yield open_as
    for context in contexts:
        context.close()


def test_members_see_the_teams_work_but_change_only_their_own(sign_in, team_server, reviews_csv):
    from gradio_client import Client

    from studio.config import RunConfig
    from studio.jobs.manager import JobManager

    # Bob's runs come from a terminal, as 'studio runs submit' sends them. The first trains until it
    # is cancelled below (steps of at least 0.2 s, no early stop, no evaluation): it holds the only
    # CPU slot.
    terminal = JobManager(team_server["workspace"], supervise=False)
    config = RunConfig.from_dict({"data": {"train": str(reviews_csv), "columns": {"text": "text", "label": "feeling"}},
                                  "model": {"backbone": str(team_server["models"] / "tiny-bert")}, "training": {"max_steps": 2}})
    slot_holder = terminal.submit(config.with_overrides(
        ["name=bob-1", "training.max_steps=100000", "training.early_stopping_patience=0", "training.eval_strategy=no"]),
        owner="bob")

    # Alice: her data, saved as a dataset, and a quick run, queued behind Bob's.
    alice = sign_in("alice")
    upload_reviews(alice, reviews_csv)
    set_up_training(alice, team_server, name="alice-run", max_steps="8")
    # No admin allowed models' own code: the switch is off and cannot be turned on.
    expect(alice.locator("#train-adv-model-trust_remote_code input")).to_be_disabled()
    expect(alice.locator("#train-adv-model-trust_remote_code")).to_contain_text("an admin has not allowed")
    alice.locator("#train-launch").click()
    expect(alice.locator("#train-message")).to_contain_text("trains in its own process", timeout=60_000)
    expect(alice.locator("#run-status")).to_contain_text("status: queued")
    run_id = alice.locator("#run-status code").inner_text()
    expect(alice.locator("#train-cancel")).to_be_enabled()  # her own run
    tab(alice, "Data")
    fill(alice, "data-save-name", "alice-reviews")
    alice.locator("#data-save").click()
    expect(alice.locator("#data-save-message")).to_contain_text("saved dataset 'alice-reviews'")
    expect(alice.locator("#data-datasets")).to_contain_text("alice-reviews")
    expect(alice.get_by_role("tab", name="Settings")).to_have_count(0)

    # Bob: the team's list shows Alice's run; nothing of hers is offered to him.
    bob = sign_in("bob")
    expect(bob.get_by_role("tab", name="Settings")).to_have_count(0)
    expect(bob.locator("#data-datasets")).to_contain_text("alice-reviews")
    expect(bob.locator("#data-datasets")).to_contain_text("alice")
    choose(bob, "data-dataset-pick", "alice-reviews")
    bob.locator("#data-dataset-delete-confirm input").check()
    bob.locator("#data-dataset-delete").click()
    expect(bob.locator("#data-datasets-message")).to_contain_text("dataset 'alice-reviews' belongs to alice")
    shot(bob, "team-01-bob-data")
    tab(bob, "Runs")
    bob.locator("#runs-refresh").click()
    expect(bob.locator("#runs-table")).to_contain_text("alice-run")
    expect(bob.locator("#runs-chosen input")).to_have_value(re.compile(re.escape(run_id)))
    expect(bob.locator("#runs-owner-note")).to_contain_text("this run belongs to alice")
    for link in ("runs-download-model", "runs-download-config", "runs-download-predictions"):
        expect(bob.locator(f"#{link}")).to_have_count(0)  # no download offered...
    expect(bob.locator("#runs-delete")).to_be_disabled()
    status = bob.evaluate(f"fetch('download/{run_id}/config').then(r => r.status)")
    assert status == 403  # ...and the server refuses it too
    expect(bob.locator("#runs-queue")).to_be_hidden()
    shot(bob, "team-02-bob-runs")
    tab(bob, "Train")
    expect(bob.locator("#run-status")).to_contain_text(run_id)  # he can watch it...
    expect(bob.locator("#run-status")).to_contain_text(re.compile(r"status: (queued|starting|running)"))
    expect(bob.locator("#train-cancel")).to_be_disabled()  # ...not cancel it, though it is active
    shot(bob, "team-03-bob-train")

    # Another of Bob's runs waits behind Alice's.
    waiting = terminal.submit(config.with_overrides(["name=bob-2"]), owner="bob")

    # The admin: the Settings tab and the queue's order; any run's actions.
    root = sign_in("root")
    expect(root.get_by_role("tab", name="Settings")).to_be_visible()
    tab(root, "Runs")
    root.locator("#runs-refresh").click()
    expect(root.locator("#runs-queue")).to_be_visible()
    choose(root, "runs-chosen", run_id)
    expect(root.locator("#runs-download-config")).to_be_visible()
    expect(root.locator("#runs-owner-note")).not_to_contain_text("belongs to")
    choose(root, "runs-queue-run", "bob-2")
    root.locator("#runs-queue-top").click()
    expect(root.locator("#runs-queue-message")).to_contain_text(f"run {waiting} is now at position 1")
    assert [r.id for r in terminal.queue()] == [waiting, run_id]
    shot(root, "team-04-admin-runs")
    # Bob's runs make way: Alice's starts.
    terminal.cancel(waiting)
    terminal.cancel(slot_holder)

    # While it trains: a disabled button is not the check, Bob calling the endpoints himself is refused
    # by the server.
    client = Client(team_server["url"], auth=("bob", PASSWORDS["bob"]), verbose=False, download_files=False)
    client.predict([], "", "", "", [], None, None, None, api_name="/runs_list")
    result = client.predict(run_id, True, [], "", "", "", [], None, None, api_name="/runs_delete")
    assert "belongs to alice" in json.dumps(result)
    refused = client.predict("", True, "1", api_name="/settings_save")
    assert "only an admin can do this (bob is not one)" in json.dumps(refused)
    assert not (team_server["workspace"] / "settings.json").exists()

    # The admin's settings.
    tab(root, "Settings")
    expect(root.locator("#settings-message")).to_contain_text("nobody has changed the settings yet")
    expect(root.locator("#settings-fixed-roots")).to_contain_text("models")
    fill(root, "settings-max-queued", "2")
    root.locator("#settings-save").click()
    expect(root.locator("#settings-message")).to_contain_text("settings saved")
    expect(root.locator("#settings-message")).to_contain_text("last changed by root")
    shot(root, "team-05-admin-settings")
    saved = json.loads((team_server["workspace"] / "settings.json").read_text())
    assert saved["max_queued_per_user"] == 2 and saved["changed"]["by"] == "root" and saved["trust_remote_code"] is False

    # Alice's run ends; she (its owner) may download it.
    expect(alice.locator("#run-status")).to_contain_text("completed", timeout=RUN_TIMEOUT_MS)
    tab(alice, "Runs")
    alice.locator("#runs-refresh").click()
    choose(alice, "runs-chosen", run_id)
    expect(alice.locator("a#runs-download-config")).to_be_visible()
    with alice.expect_download() as download:  # one click: the file arrives
        alice.locator("a#runs-download-config").click()
    assert download.value.suggested_filename == f"{run_id}.yaml"
    assert "task:" in Path(download.value.path()).read_text()
    # Signing out ends the session: the page goes back to the sign-in form.
    bob.locator("#studio-logout").click()
    bob.wait_for_url(re.compile(r"/login$"))
    assert bob.evaluate("fetch('config').then(r => r.status)") == 401
    # The admin's tab in Chinese.
    root.locator("#studio-lang").get_by_text("中文", exact=True).click()
    expect(root.get_by_role("tab", name="设置", exact=True)).to_be_visible()
    expect(root.locator("#settings-save")).to_have_text("保存设置")
    shot(root, "team-06-admin-settings-zh")
    for page in (alice, bob, root):
        expect_no_traceback(page)
