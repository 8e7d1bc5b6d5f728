"""The page in Chinese for a browser whose language is Chinese, switched to English and back in
the page. With a dataset uploaded and saved and a quick run trained, every tab (Settings too: a
studio without accounts makes everyone its admin) is checked for English the handlers wrote, and a
screenshot of each goes to test-artifacts/zh-<tab>.png."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import shot  # noqa: E402
from tests.conftest import NEGATIVE, POSITIVE, WORDS  # noqa: E402
from tests.browser.test_flows import RUN_TIMEOUT_MS  # noqa: E402
from tests.browser.ui import choose, click_first_row, expect_no_traceback, fill, open_accordion, radio, value_of  # noqa: E402

ZH_TABS = {"data": "数据", "train": "训练", "runs": "运行记录", "evaluate": "评估", "playground": "试用", "settings": "设置"}
EN_TABS = {"data": "Data", "train": "Train", "runs": "Runs", "evaluate": "Evaluate", "playground": "Playground",
           "settings": "Settings"}
ENGLISH_LEFT = re.compile(r"\b(the data fits|rows|columns|status:|queue position|steps|epoch|elapsed|finished|pick a|"
                          r"predictions|Estimate|trainable|metric|Confusion matrix|Loss|Learning rate|Throughput|"
                          r"Labels|Text length|last changed|defaults|Always allowed|saved dataset)\b")
"""Phrases of the English page that a Chinese page must not show (user data aside: the reviews are English)."""


def expect_tabs(page, names: dict[str, str]) -> None:
    for name in names.values():
        expect(page.get_by_role("tab", name=name, exact=True)).to_be_visible()


def open_tab(page, key: str) -> None:
    page.get_by_role("tab", name=ZH_TABS[key], exact=True).click()


DATA_LAYER = re.compile(r"数据(检查|有问题)：.*")
"""The data layer's own notes stay English (file, line, column), framed in Chinese."""


def settle(page) -> None:
    """Wait until no event is in progress (Gradio dims the components it is updating)."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('.translucent, .pending, .generating')", timeout=20_000)


def no_english(page, *elem_ids: str) -> None:
    for elem_id in elem_ids:
        text = page.locator(f"#{elem_id}").inner_text()
        left = ENGLISH_LEFT.findall(DATA_LAYER.sub("", text))
        assert not left, f"English in #{elem_id}: {left} in {text!r}"


SHOWN_AS_IS = {
    *WORDS, *POSITIVE, *NEGATIVE, "positive", "negative", "wonderful", "reviews", "feeling", "score", "text", "label",  # the data
    "quick", "balanced", "best", "epoch", "cpu", "seed",  # configuration values and keys
    "LoRA", "Hub", "MiniLM", "Python", "Parquet", "CoNLL", "word", "grams", "logistic", "regression",  # names (the baseline's model)
    "models", "tmp",  # the workspace's folder (Settings)
    "jemalloc",  # the allocator a CPU run's settings name, as they name fp32 and adamw_torch_fused
}
"""English a Chinese page may show: user data, configuration keys and values, names."""


def english_words(text: str) -> list[str]:
    """Words of English prose in ``text``: not identifiers (a_b, a-b, a.b), not acronyms, not the data."""
    words = re.findall(r"(?<![\w.-])[A-Za-z][a-z]+(?![\w.-])", text)
    return sorted({word for word in words if word not in SHOWN_AS_IS and word.lower() not in SHOWN_AS_IS})


def test_a_chinese_browser_gets_chinese_and_can_switch(browser, server, reviews_csv):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(server["url"])
        page.wait_for_selector("#data-file")
        expect_tabs(page, ZH_TABS)
        expect(page.locator("#studio-header")).to_contain_text("微调语言模型")
        expect(page.locator("#data-save")).to_have_text("保存数据集")

        page.locator("#studio-lang").get_by_text("English", exact=True).click()
        expect_tabs(page, EN_TABS)
        expect(page.locator("#data-save")).to_have_text("Save dataset")
        expect(page.locator("#studio-header")).to_contain_text("Fine-tune language models")
        expect(page.locator("#data-file [data-testid=upload-text]")).to_contain_text("Click to Upload")  # Gradio's own words too
        page.locator("#studio-lang").get_by_text("中文", exact=True).click()
        expect_tabs(page, ZH_TABS)

        # Data: an upload, its label column fixed, saved as a dataset.
        page.set_input_files("#data-file input[type=file]", str(reviews_csv))
        expect(page.locator("#data-messages")).to_contain_text("数据符合文本分类任务")
        assert value_of(page, "data-task") == "文本分类（classification）"
        choose(page, "data-role-1", "feeling")
        expect(page.locator("#data-labels-plot")).to_contain_text("positive")
        expect(page.locator("#data-profile textarea")).to_have_value(re.compile("行数：训练集"))
        fill(page, "data-save-name", "reviews-zh")
        page.locator("#data-save").click()
        expect(page.locator("#data-save-message")).to_contain_text("已保存数据集")
        expect(page.locator("#data-datasets")).to_contain_text("reviews-zh")
        no_english(page, "data-summary", "data-messages", "data-save-message", "data-datasets", "data-page-info")

        # Train: a quick run on the saved dataset, watched until it completes.
        open_tab(page, "train")
        expect(page.locator("#train-data input")).to_have_value("已保存的数据集：reviews-zh")
        choose(page, "train-backbone", "tiny-bert · 本地文件夹")
        radio(page, "train-preset", "快速")
        open_accordion(page, "train-advanced", "高级")
        fill(page, "train-adv-training-batch_size", "8")
        fill(page, "train-adv-training-max_steps", "12")
        fill(page, "train-name", "reviews-zh-quick")
        expect(page.locator("#train-estimate")).to_contain_text("估算")
        page.locator("#studio-header").click()  # no dropdown left open in the screenshot
        settle(page)
        shot(page, "zh-train-advanced")
        page.locator("#train-launch").click()
        expect(page.locator("#train-message")).to_contain_text("独立进程", timeout=60_000)
        expect(page.locator("#run-status")).to_contain_text("已完成", timeout=RUN_TIMEOUT_MS)
        expect(page.locator("#run-progress")).to_contain_text("完成")
        page.locator("#train-advanced").get_by_text("高级").click()  # closed again for the screenshot
        no_english(page, "run-status", "run-progress", "train-message", "train-estimate", "loss-chart", "lr-chart")

        open_tab(page, "runs")
        page.locator("#runs-refresh").click()
        expect(page.locator("#runs-table")).to_contain_text("已完成")
        choose(page, "runs-overlay", "reviews-zh-quick")
        expect(page.locator("#runs-overlay-chart")).to_contain_text("训练")
        no_english(page, "runs-table", "runs-overlay-chart")

        open_tab(page, "evaluate")
        choose(page, "eval-run", "reviews-zh-quick")  # other tests' runs may share the server
        expect(page.locator("#eval-run input")).to_have_value(re.compile("reviews-zh-quick"))
        expect(page.locator("#confusion-matrix .heatmaplayer")).to_have_count(1, timeout=30_000)
        expect(page.locator("#eval-metrics")).to_contain_text("准确率")
        expect(page.locator("#eval-count")).to_contain_text("条预测")
        click_first_row(page, "eval-predictions")  # a row in full: its fields under Chinese labels
        expect(page.locator("#eval-side-0")).to_be_visible()
        no_english(page, "eval-message", "eval-metrics", "eval-details", "confusion-matrix", "eval-count", "eval-predictions")

        open_tab(page, "playground")
        choose(page, "play-run", "reviews-zh-quick")
        page.locator("#play-text textarea").fill("a wonderful film, i loved the acting")
        page.locator("#play-predict").click()
        expect(page.locator("#play-label-a")).to_be_visible(timeout=60_000)
        expect(page.locator("#play-row-a")).to_contain_text("置信度")
        no_english(page, "play-row-a")

        open_tab(page, "settings")
        expect(page.locator("#settings-message")).to_contain_text("默认")
        no_english(page, "settings-message", "settings-fixed-roots")

        for key in ZH_TABS:
            open_tab(page, key)
            settle(page)
            shot(page, f"zh-{key}")
            left = english_words(page.locator(f"#tab-{key}").inner_text())
            assert not left, f"English on the Chinese {key} tab: {left}"
            assert page.locator(".toast-body.error").count() == 0, f"an error toast on the {key} tab"

        # A switch shows the handlers' texts again in the new language.
        page.locator("#studio-lang").get_by_text("English", exact=True).click()
        expect_tabs(page, EN_TABS)
        expect(page.locator("#settings-message")).to_contain_text("defaults")
        page.get_by_role("tab", name="Data", exact=True).click()
        expect(page.locator("#data-messages")).to_contain_text("the data fits text classification")
        expect(page.locator("#data-datasets")).to_contain_text("owner")
        page.get_by_role("tab", name="Train", exact=True).click()
        expect(page.locator("#run-status")).to_contain_text("completed")

        # The choice is kept in the browser: a reload stays in the language picked.
        page.reload()
        page.wait_for_selector("#data-file")
        expect(page.locator("#data-save")).to_have_text("Save dataset")
        expect_tabs(page, EN_TABS)
        expect(page.locator("#data-datasets")).to_contain_text("owner")
        expect_no_traceback(page)
        assert not errors, errors
    finally:
        context.close()
