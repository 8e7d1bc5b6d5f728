"""What a new user does in the studio, in a real browser: upload, fix a column, train, watch,
evaluate, try the model; reload and re-attach; cancel; and a bad upload explained in the page."""

from __future__ import annotations

import re

import pandas as pd
import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import shot  # noqa: E402
from tests.conftest import toy_sentiment_rows, write_csv  # noqa: E402
from tests.browser.ui import (  # noqa: E402
    choose, expect_no_traceback, fill, open_accordion, plot_points, radio, tab, value_of, wait_until,
)

RUN_TIMEOUT_MS = 150_000


def upload_reviews(page, reviews_csv) -> None:
    """Upload the CSV and fix its label column (the studio first guesses 'score')."""
    page.set_input_files("#data-file input[type=file]", str(reviews_csv))
    expect(page.locator("#data-messages")).to_contain_text("the data fits text classification")
    assert value_of(page, "data-task") == "Text classification (classification)"
    assert value_of(page, "data-role-0") == "text"
    assert value_of(page, "data-role-1") == "score"  # a wrong guess the user has to fix
    choose(page, "data-role-1", "feeling")
    expect(page.locator("#data-labels-plot")).to_contain_text("positive")
    assert value_of(page, "data-role-1") == "feeling"


def set_up_training(page, server, *, max_steps: str | None = None, name: str | None = None, logging_steps: str | None = None) -> None:
    tab(page, "Train")
    expect(page.locator("#train-data input")).to_have_value("Data tab: reviews.csv (ready)")
    choose(page, "train-backbone", "tiny-bert · local folder")
    radio(page, "train-preset", "quick")
    open_accordion(page, "train-advanced", "Advanced")
    fill(page, "train-adv-training-batch_size", "4")
    if max_steps:
        fill(page, "train-adv-training-max_steps", max_steps)
    if logging_steps:
        fill(page, "train-adv-training-logging_steps", logging_steps)
    if name:
        fill(page, "train-name", name)
    expect(page.locator("#train-estimate")).to_contain_text("Estimate")


def test_upload_fix_label_train_watch_evaluate_and_try(page, server, reviews_csv, tmp_path):
    upload_reviews(page, reviews_csv)
    expect(page.locator("#data-lengths-plot")).to_contain_text("max length")
    shot(page, "01-data")

    # 80 steps of at least 0.2 s: long enough that the checks below see the run still training.
    set_up_training(page, server, name="reviews-tiny", max_steps="80")
    # One memory estimate before the launch and in the run: the run records the figure shown here.
    expect(page.locator("#train-estimate")).to_contain_text("of memory")
    planned = re.search(r"of memory \(estimated (\d+ MB)\)", page.locator("#train-estimate").inner_text()).group(1)
    page.locator("#train-launch").click()
    expect(page.locator("#train-message")).to_contain_text("trains in its own process", timeout=60_000)
    expect(page.locator("#run-status")).to_contain_text("running", timeout=RUN_TIMEOUT_MS)
    # The loss chart gains points while the run trains.
    first = wait_until(lambda: plot_points(page, "loss-chart"), timeout=90, what="the first loss points")
    wait_until(lambda: plot_points(page, "loss-chart") > first, timeout=60, what="more loss points")
    assert "running" in page.locator("#run-status").inner_text()
    expect(page.locator("#run-progress")).to_contain_text("steps")
    # What the worker chose for this machine (a CPU: full precision, the batch asked for).
    expect(page.locator("#run-facts")).to_contain_text("Chosen for this machine: fp32 · batch 4")
    shot(page, "02-train-running")

    # The page answers while the run trains: another tab, a button.
    tab(page, "Runs")
    page.locator("#runs-refresh").click()
    expect(page.locator("#runs-table")).to_contain_text("reviews-tiny")
    expect(page.locator("#runs-table")).to_contain_text("running")
    tab(page, "Train")

    expect(page.locator("#run-status")).to_contain_text("completed", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#metric-chart")).to_contain_text("accuracy")
    expect(page.locator("#train-cancel")).to_be_disabled()
    expect(page.locator("#run-facts")).to_contain_text(re.compile(r"Memory: peak \d+ MB above the process's start \(estimated \d+ MB"))
    expect(page.locator("#run-facts")).to_contain_text(f"(estimated {planned}")
    shot(page, "03-train-completed")

    tab(page, "Evaluate")
    expect(page.locator("#eval-run input")).to_have_value(re.compile("reviews-tiny"))
    expect(page.locator("#confusion-matrix .heatmaplayer")).to_have_count(1, timeout=30_000)
    expect(page.locator("#eval-metrics")).to_contain_text("accuracy")
    expect(page.locator("#eval-details")).to_contain_text("precision")
    expect(page.locator("#eval-count")).to_contain_text("predictions")
    shot(page, "04-evaluate")

    tab(page, "Playground")
    expect(page.locator("#play-run input")).not_to_have_value("")
    page.locator("#play-text textarea").fill("a wonderful film, i loved the acting")
    page.locator("#play-predict").click()
    label = page.locator("#play-label-a")
    expect(label).to_be_visible(timeout=60_000)
    expect(label).to_contain_text("positive")
    expect(label).to_contain_text("negative")
    expect(label).to_contain_text("%")
    shot(page, "05-playground")

    # A whole file, predicted in the page with the same code as `studio predict`, comes back to download.
    page.locator("#play-file-box").get_by_text("Predict a file").click()
    unlabeled = write_csv(tmp_path / "new-reviews.csv", [{"text": r["text"]} for r in toy_sentiment_rows(5, seed=9)])
    page.set_input_files("#play-file input[type=file]", str(unlabeled))
    page.locator("#play-file-predict").click()
    expect(page.locator("#play-file-message")).to_contain_text("5 rows predicted", timeout=60_000)
    with page.expect_download() as download:
        page.locator("#play-file-out a").first.click()
    predicted = pd.read_csv(download.value.path())
    assert len(predicted) == 5 and set(predicted["predicted"]) <= {"positive", "negative"}
    shot(page, "05b-playground-file")

    tab(page, "Runs")
    page.locator("#runs-refresh").click()
    expect(page.locator("#runs-table")).to_contain_text("completed")
    shot(page, "06-runs")
    expect_no_traceback(page)


def test_reload_reattaches_and_cancel_stops_the_run(page, browser, server, reviews_csv):
    upload_reviews(page, reviews_csv)
    set_up_training(page, server, max_steps="400", name="long-one", logging_steps="1")
    page.locator("#train-launch").click()
    expect(page.locator("#run-status")).to_contain_text("running", timeout=RUN_TIMEOUT_MS)
    wait_until(lambda: plot_points(page, "loss-chart") >= 2, timeout=90, what="loss points")
    run_id = page.locator("#run-status code").inner_text()

    page.reload()
    tab(page, "Train")
    expect(page.locator("#run-status")).to_contain_text(run_id, timeout=30_000)
    expect(page.locator("#run-status")).to_contain_text("running")
    before = wait_until(lambda: plot_points(page, "loss-chart"), timeout=30, what="charts after the reload")
    wait_until(lambda: plot_points(page, "loss-chart") > before, timeout=30, what="new points after the reload")
    # The form shows the watched run's settings, not the defaults (balanced, no backbone).
    expect(page.locator("#train-preset input[value=quick]")).to_be_checked()
    expect(page.locator("#train-backbone input")).to_have_value(re.compile("tiny-bert"))

    other = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        second = other.new_page()
        second.goto(server["url"])
        tab(second, "Train")
        expect(second.locator("#run-status")).to_contain_text(run_id, timeout=30_000)
    finally:
        other.close()

    page.locator("#train-cancel").click()
    expect(page.locator("#train-message")).to_contain_text("cancelling")
    expect(page.locator("#run-status")).to_contain_text("cancelled", timeout=60_000)
    expect(page.locator("#train-resume")).to_be_enabled()
    expect(page.locator("#train-cancel")).to_be_disabled()
    shot(page, "07-train-cancelled")
    expect_no_traceback(page)


@pytest.mark.parametrize("content, expected", [
    (b"PK\x03\x04" + b"\x00" * 64, "ZIP archive"),
    (b"", "is empty"),
])
def test_bad_upload_shows_the_data_layers_message(page, tmp_path, content, expected):
    bad = tmp_path / "reviews.csv"
    bad.write_bytes(content)
    page.set_input_files("#data-file input[type=file]", str(bad))
    message = page.locator("#data-messages .studio-error")
    expect(message).to_contain_text(expected)
    expect(page.locator("#data-file .wrap.generating")).to_have_count(0)
    expect_no_traceback(page)
    if expected == "ZIP archive":
        shot(page, "08-data-bad-upload")
