"""Markup planted in what users name reaches every tab of a running studio as text: no element it
would create exists in the page, and the text itself is shown as it was typed.

The studio is served from a subprocess (``studio serve``) on a workspace without accounts (on
loopback nobody signs in), seeded with a finished run that has a real (tiny, random) model so the
Playground can predict, a failed run, a saved dataset and an allowed model folder, each holding
markup in its name, owner, labels, texts or error. Chromium is Debian's, driven by Playwright.
Every planted element has an id starting with ``planted``: one locator finds any that got in.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.servers import free_port, start_server, stop, wait_until_up

NAME = "<img src=x id=planted-name onerror=window.__planted=1><svg id=planted-svg></svg>**bold**"
OWNER = "<svg id=planted-owner></svg>_eve_"
LABEL = '<a href="https://evil.example" id=planted-link>click</a>__l__'
FAILED_NAME = "<b id=planted-b>second</b> **run**"
ERROR = "could not read <img src=x id=planted-error>"
ROOT = "<svg id=planted-root>"
PLANTED = "[id^=planted]"


def _run(workspace: Path, run_id: str, *, name: str, status: str, model: Path | None, created: float,
         error: str | None = None) -> None:
    import yaml

    from studio.config import RunConfig
    from studio.jobs.store import RunRecord, RunStore

    folder = workspace / "runs" / run_id
    folder.mkdir(parents=True)
    if model is not None:
        shutil.copytree(model, folder / "model")
        meta = {"task": "classification", "problem_type": "single_label", "labels": [LABEL, "ok"], "label_delimiter": None,
                "has_pair": False, "columns": {"text": "text", "label": "label"}}
        (folder / "model" / "task.json").write_text(json.dumps(meta))
    config = RunConfig.from_dict({"name": name, "task": {"name": "classification"}, "model": {"backbone": str(model or "x")},
                                  "training": {"max_length": 32}})
    (folder / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    predictions = [{"text": NAME, "gold": LABEL, "predicted": LABEL, "confidence": 0.9, "correct": True},
                   {"text": "fine", "gold": "ok", "predicted": LABEL, "confidence": 0.6, "correct": False}]
    (folder / "predictions_test.jsonl").write_text("".join(json.dumps(p) + "\n" for p in predictions))
    matrix = {"labels": [LABEL, "ok"], "matrix": [[1, 0], [1, 0]]}
    (folder / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.5, "confusion_matrix": matrix,
                                                              "per_class": {LABEL: {"f1": 0.67}, "ok": {"f1": 0.0}}}}))
    RunStore.for_workspace(workspace).insert(RunRecord(
        id=run_id, run_dir=str(folder), status=status, name=name, owner=OWNER, task="classification",
        backbone=str(model or "x"), created=created, started=created, ended=created + 3, error_message=error,
        metric_name="accuracy", metric_value=0.5))


@pytest.fixture(scope="module")
def planted_server(tmp_path_factory, tiny_encoder):
    import pandas as pd

    from studio.data.datasets_store import save_dataset
    from studio.workspace import Workspace

    root = tmp_path_factory.mktemp("escaping")
    workspace = Workspace.at(root / "workspace").root
    (root / ROOT).mkdir()
    now = time.time()
    _run(workspace, "20260101-000000-planted-0000aaaa", name=NAME, status="completed", model=tiny_encoder, created=now - 60)
    # The newest run: the Train tab's live view shows it when the page opens.
    _run(workspace, "20260101-000001-planted-0000bbbb", name=FAILED_NAME, status="failed", model=None, created=now,
         error=ERROR)
    save_dataset(workspace / "datasets", "reviews", {"train": pd.DataFrame({"text": ["a", "b"], "label": [LABEL, "ok"]})},
                 {"task": "classification", "columns": {"text": "text", "label": "label"}, "task_options": {}}, owner=OWNER)
    port = free_port()
    log = root / "server.log"
    process = start_server(workspace, port, log, "--model-dir", str(root / ROOT))
    url = f"http://127.0.0.1:{port}/"
    wait_until_up(process, url, log)
    yield {"url": url, "root": root}
    stop(process)


@pytest.fixture(scope="module")
def page(planted_server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.add_init_script("window.__planted = 0")
    page.goto(planted_server["url"])
    yield page
    context.close()


def no_planted_element(page) -> None:
    from playwright.sync_api import expect

    expect(page.locator(PLANTED)).to_have_count(0)
    assert page.evaluate("window.__planted") == 0


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def test_every_tab_shows_planted_names_as_text(page):
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    tab(page, "Data")
    expect(page.locator("#data-datasets")).to_contain_text(OWNER)  # a saved dataset's owner: a table cell
    no_planted_element(page)

    # Train: the newest run's status (its name, its error).
    tab(page, "Train")
    expect(page.locator("#run-status")).to_contain_text("second</b> **run**")
    expect(page.locator("#run-status")).to_contain_text(ERROR)
    no_planted_element(page)

    tab(page, "Runs")
    expect(page.locator("#runs-table")).to_contain_text(NAME)
    expect(page.locator("#runs-table")).to_contain_text(OWNER)
    page.locator("#runs-overlay input[role=combobox]").click()
    expect(page.locator("#runs-overlay li[role=option]", has_text=NAME)).to_have_count(1)  # a choice: text
    page.keyboard.press("Escape")
    no_planted_element(page)

    tab(page, "Evaluate")
    page.locator("#eval-run input[role=combobox]").click()
    page.locator("#eval-run li[role=option]", has_text="completed").first.click()
    expect(page.locator("#eval-details")).to_contain_text(LABEL)  # per class: a table of text
    expect(page.locator("#confusion-matrix .xtick").first).to_have_text(LABEL)  # plotly's tick label: text
    expect(page.locator("#eval-predictions")).to_contain_text(NAME[:60])  # cells are cut at 80 characters
    page.locator("#eval-compare-run input[role=combobox]").click()
    page.locator("#eval-compare-run li[role=option]", has_text="failed").first.click()
    page.locator("#eval-compare").click()
    expect(page.locator("#eval-compare-summary")).to_contain_text("agree")
    no_planted_element(page)

    tab(page, "Playground")
    page.locator("#play-run input[role=combobox]").click()
    page.locator("#play-run li[role=option]", has_text="completed").first.click()
    page.locator("#play-text textarea").fill("good film")
    page.locator("#play-predict").click()
    title = page.locator("#play-title-a")
    expect(title).to_contain_text(NAME, timeout=60_000)  # the finding: the name as typed, nothing rendered
    expect(page.locator("#play-label-a")).to_contain_text("click</a>")  # a class name: text
    no_planted_element(page)

    tab(page, "Settings")  # on loopback without accounts the page's user is an admin
    expect(page.locator("#settings-fixed-roots")).to_contain_text(ROOT)
    no_planted_element(page)
