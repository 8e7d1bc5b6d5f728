"""The everyday flow in the Data, Evaluate and Runs tabs at a laptop's width (1280 px): the
columns that matter in sight, a file's encoding chosen in the page, a cleared upload that leaves
nothing behind, a filter that stays when the split changes, a download in one click.

The Evaluate and Runs tests use run folders written here (predictions, metrics, a model marker)
and indexed as ``studio runs reindex`` would: no training needed to see how a finished run shows.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import shot  # noqa: E402
from tests.browser.ui import choose, expect_no_traceback, fill, radio, tab, value_of  # noqa: E402
from tests.conftest import toy_sentiment_rows, write_csv  # noqa: E402

LAPTOP = {"width": 1280, "height": 900}
LONG = ("this is a long review that goes on about the plot, the acting, the music and the ending, "
        "and then it goes on some more about the scenery and the costumes and the cinema's seats ")


def headers(page, elem_id: str) -> list[str]:
    return page.evaluate(f"() => [...document.querySelectorAll('#{elem_id} thead th')].map(th => th.innerText.trim())"
                         ".filter(text => text)")


def in_sight(page, elem_id: str, header: str) -> bool:
    """Whether a column's header lies inside the table's box (no sideways scroll to see it)."""
    return page.evaluate(
        """([id, name]) => {
            const box = document.getElementById(id).getBoundingClientRect();
            const th = [...document.querySelectorAll(`#${id} thead th`)].find(th => th.innerText.trim() === name);
            if (!th) return false;
            const r = th.getBoundingClientRect();
            return r.width > 0 && r.left >= box.left - 1 && r.right <= box.right + 1;
        }""", [elem_id, header])


# ---- Data ----------------------------------------------------------------------------------------
@pytest.fixture
def wide_csv(tmp_path) -> Path:
    """Reviews with long texts and the label as the last of several columns."""
    rows = [{"id": f"r{i:04d}", "title": f"review number {i} of the season", "text": f"{r['text']} {LONG}",
             "source": "imported from the old review site", "date": "2024-01-01", "label": r["label"]}
            for i, r in enumerate(toy_sentiment_rows(60))]
    return write_csv(tmp_path / "wide.csv", rows)


def test_the_preview_shows_the_text_and_label_columns_first(page, wide_csv):
    page.set_viewport_size(LAPTOP)
    page.set_input_files("#data-file input[type=file]", str(wide_csv))
    expect(page.locator("#data-messages")).to_contain_text("the data fits text classification")
    expect(page.locator("#data-preview")).to_contain_text("r0000")
    assert headers(page, "data-preview")[:3] == ["row", "text", "label"], headers(page, "data-preview")
    assert in_sight(page, "data-preview", "label")
    shot(page, "everyday-data-preview")
    expect_no_traceback(page)


@pytest.fixture
def latin1_csv(tmp_path) -> Path:
    """Western text in Latin-1 with bytes Windows-1252 does not define (0x81, 0x8D): read as Latin-1."""
    rows = ["text,label"] + [f"caf\xe9 cr\xe8me number {i} tr\xe8s bien \x81 and \x8d here,{'pos' if i % 2 else 'neg'}"
                             for i in range(40)]
    path = tmp_path / "latin.csv"
    path.write_bytes("\n".join(rows).encode("latin-1"))
    return path


def test_the_encoding_is_named_and_can_be_chosen(page, latin1_csv):
    page.set_input_files("#data-file input[type=file]", str(latin1_csv))
    messages = page.locator("#data-messages")
    expect(messages).to_contain_text("read as Latin-1")
    expect(messages).to_contain_text("Line 2 reads: 'café crème number 0")
    expect(page.locator("#data-summary")).to_contain_text("Latin-1")
    expect(page.locator("#data-preview")).to_contain_text("café crème")
    assert value_of(page, "data-encoding") == "auto (detect)"

    choose(page, "data-encoding", "Windows-1251")
    expect(messages).to_contain_text("decoded as Windows-1251 (Cyrillic), as chosen")
    expect(page.locator("#data-preview")).to_contain_text("cafй crиme")
    expect(page.locator("#data-summary")).to_contain_text("Windows-1251")
    shot(page, "everyday-data-encoding")

    choose(page, "data-encoding", "auto")
    expect(page.locator("#data-preview")).to_contain_text("café crème")
    expect(messages).to_contain_text("read as Latin-1")
    expect_no_traceback(page)


def test_clearing_the_upload_leaves_nothing_of_the_old_file(page, tmp_path):
    reviews = write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(60))
    page.set_input_files("#data-file input[type=file]", str(reviews))
    expect(page.locator("#data-messages")).to_contain_text("the data fits text classification")
    expect(page.locator("#data-labels-plot")).to_contain_text("positive")
    expect(page.locator("#data-profile textarea")).not_to_have_value("")
    fill(page, "data-save-name", "cleared-later")
    page.locator("#data-save").click()
    expect(page.locator("#data-save-message")).to_contain_text("saved dataset 'cleared-later'")

    page.locator("#data-file button[aria-label='Clear']").click()
    expect(page.locator("#data-summary")).to_contain_text("Upload a file, or pick a sample, to begin.")
    expect(page.locator("#data-messages")).to_have_text("")
    expect(page.locator("#data-save-message")).to_have_text("")
    expect(page.locator("#data-profile textarea")).to_have_value("")
    expect(page.locator("#data-labels-plot")).not_to_contain_text("positive")
    expect(page.locator("#data-preview")).to_be_hidden()
    expect(page.locator("#data-role-0")).to_be_hidden()
    tab(page, "Train")
    expect(page.locator("#train-data input")).not_to_have_value("Data tab: reviews.csv (ready)")
    shot(page, "everyday-data-cleared")
    expect_no_traceback(page)


# ---- finished runs, written as a worker leaves them --------------------------------------------
def write_run(workspace: Path, run_id: str, name: str, predictions: dict[str, list[dict]], *, model: bool = True) -> Path:
    import yaml

    from studio.config import RunConfig

    folder = workspace / "runs" / run_id
    folder.mkdir(parents=True)
    config = RunConfig.from_dict({"name": name, "task": {"name": "classification"}, "model": {"backbone": "tiny-bert"}})
    (folder / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    now = time.time()
    events = [{"t": now - 60, "kind": "status", "status": "queued", "owner": ""},
              {"t": now - 30, "kind": "status", "status": "running"},
              {"t": now, "kind": "status", "status": "completed"}]
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    metrics = {}
    for split, rows in predictions.items():
        (folder / f"predictions_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        metrics[split] = {"accuracy": sum(r["correct"] for r in rows) / len(rows), "examples": len(rows)}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    if model:
        add_model(folder)
    return folder


def add_model(folder: Path) -> None:
    (folder / "model").mkdir(exist_ok=True)
    (folder / "model" / "config.json").write_text("{}")
    (folder / "model" / "task.json").write_text(json.dumps({"task": "classification"}))


def reindex(workspace: Path) -> None:
    from studio.jobs.store import reindex as rebuild

    rebuild(workspace)


def predictions(n: int, wrong_every: int, seed: int = 0) -> list[dict]:
    rows = []
    for i, r in enumerate(toy_sentiment_rows(n, seed=seed)):
        wrong = i % wrong_every == 0
        other = "negative" if r["label"] == "positive" else "positive"
        predicted = other if wrong else r["label"]
        rows.append({"text": f"{r['text']} {LONG}{LONG}", "gold": r["label"], "predicted": predicted,
                     "confidence": 0.7, "probabilities": {predicted: 0.7, r["label"] if wrong else other: 0.3},
                     "correct": not wrong})
    return rows


@pytest.fixture(scope="module")
def finished_runs(server):
    workspace = server["workspace"]
    a = write_run(workspace, "20240101-000001-everyday-a-0001", "everyday-a",
                  {"test": predictions(12, 3), "validation": predictions(10, 4, seed=1)})
    b = write_run(workspace, "20240101-000002-everyday-b-0002", "everyday-b",
                  {"test": predictions(12, 2), "validation": predictions(10, 5, seed=1)})
    reindex(workspace)
    yield {"a": a, "b": b}
    # The server (and its workspace) is shared with the other browser suites, which expect their
    # own runs to be the newest: leave the workspace as it was found.
    for folder in (workspace / "runs").glob("*-everyday-*"):
        shutil.rmtree(folder, ignore_errors=True)
    reindex(workspace)


def test_evaluate_shows_gold_and_predicted_first_and_keeps_the_filter(page, finished_runs):
    page.set_viewport_size(LAPTOP)
    tab(page, "Evaluate")
    page.locator("#eval-refresh").click()
    choose(page, "eval-run", "everyday-a")
    count = page.locator("#eval-count")
    expect(count).to_contain_text("12 of 12 predictions")
    names = headers(page, "eval-predictions")
    assert names[:3] == ["#", "gold", "predicted"] and names[-1] == "text", names
    for name in ("gold", "predicted", "correct"):
        assert in_sight(page, "eval-predictions", name), name

    radio(page, "eval-outcome", "wrong")
    expect(count).to_contain_text("4 of 12 predictions")
    radio(page, "eval-split", "validation")
    expect(page.locator("#eval-message")).to_contain_text("validation split: 10 predictions")
    expect(count).to_contain_text("3 of 10 predictions")  # still only the wrong ones
    expect(page.locator("#eval-outcome input[value=wrong]")).to_be_checked()
    shot(page, "everyday-evaluate-filter")

    choose(page, "eval-compare-run", "everyday-b")
    page.locator("#eval-compare").click()
    expect(page.locator("#eval-compare-summary")).to_contain_text("agree")
    names = headers(page, "eval-compare-table")
    assert names[:4] == ["#", "right", "gold", "predicted (A)"], names
    for name in ("right", "gold", "predicted (A)", "predicted (B)"):
        assert in_sight(page, "eval-compare-table", name), name
    shot(page, "everyday-evaluate-compare")
    expect_no_traceback(page)


def test_a_download_starts_on_one_click(page, server, finished_runs):
    workspace = server["workspace"]
    run = write_run(workspace, "20240101-000003-everyday-c-0003", "everyday-c", {"test": predictions(6, 3)}, model=False)
    reindex(workspace)
    tab(page, "Runs")
    page.locator("#runs-refresh").click()
    expect(page.locator("#runs-table")).to_contain_text("everyday-c")
    # A click on a run in the table makes it the chosen run.
    page.locator("#runs-table [role=gridcell]", has_text="everyday-c").first.click()
    expect(page.locator("#runs-chosen input")).to_have_value(re.compile(re.escape(run.name)))
    expect(page.locator("#runs-download-model")).to_contain_text("not available yet")

    add_model(run)  # the model is written while the page shows the run
    tab(page, "Evaluate")
    tab(page, "Runs")
    link = page.locator("a#runs-download-model")
    expect(link).to_be_visible()
    with page.expect_download() as download:  # one click: the file arrives
        link.click()
    assert download.value.suggested_filename == f"{run.name}-model.zip"
    with page.expect_download() as download:
        page.locator("a#runs-download-predictions").click()
    assert download.value.suggested_filename == f"{run.name}-predictions.csv"
    shot(page, "everyday-runs-download")
    expect_no_traceback(page)
