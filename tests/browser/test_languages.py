"""The page in Chinese for a browser whose language is Chinese, switched to English and back in
the page; a screenshot of every tab in Chinese goes to test-artifacts/zh-<tab>.png."""

from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import shot  # noqa: E402

ZH_TABS = {"data": "数据", "train": "训练", "runs": "运行记录", "evaluate": "评估", "playground": "试用"}
EN_TABS = {"data": "Data", "train": "Train", "runs": "Runs", "evaluate": "Evaluate", "playground": "Playground"}


def expect_tabs(page, names: dict[str, str]) -> None:
    for name in names.values():
        expect(page.get_by_role("tab", name=name, exact=True)).to_be_visible()


def test_a_chinese_browser_gets_chinese_and_can_switch(browser, server):
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

        page.locator("#studio-lang").get_by_text("中文", exact=True).click()
        expect_tabs(page, ZH_TABS)
        for key, name in ZH_TABS.items():
            page.get_by_role("tab", name=name, exact=True).click()
            page.wait_for_timeout(700)
            shot(page, f"zh-{key}")
            assert page.locator(".toast-body.error").count() == 0, f"an error toast on the {key} tab"

        # The choice is kept in the browser: a reload stays in the language picked.
        page.locator("#studio-lang").get_by_text("English", exact=True).click()
        expect_tabs(page, EN_TABS)
        page.reload()
        page.wait_for_selector("#data-file")
        expect(page.locator("#data-save")).to_have_text("Save dataset")
        expect_tabs(page, EN_TABS)
        assert not errors, errors
    finally:
        context.close()
