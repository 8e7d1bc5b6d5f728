"""What the page draws fits it: charts as wide as their box whenever their tab shows (a chart
drawn in a hidden tab once kept plotly's default 700px), Gradio's own words in the page's language
after the switch, and no empty table with Gradio's "1 2 3" headers."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import shot  # noqa: E402
from tests.browser.ui import tab, wait_until  # noqa: E402

CHARTS = {"训练": ["loss-chart", "metric-chart", "lr-chart", "throughput-chart"], "运行记录": ["runs-overlay-chart"],
          "数据": ["data-labels-plot"]}
WIDTHS = """(id) => {
  const plot = document.querySelector('#' + id + ' [data-testid=plotly]');
  const svg = plot && plot.querySelector('svg.main-svg');
  return svg ? [Math.round(svg.getBoundingClientRect().width), Math.round(plot.getBoundingClientRect().width)] : null;
}"""


def to_chinese(page) -> None:
    page.locator("#studio-lang").get_by_text("中文", exact=True).click()
    expect(page.get_by_role("tab", name="训练", exact=True)).to_be_visible()


def test_charts_fill_their_box_after_a_language_switch_and_a_tab_change(page):
    for name in ("Train", "Runs", "Data"):  # Gradio mounts a tab when it first shows
        tab(page, name)
        page.wait_for_timeout(300)
    to_chinese(page)  # redraws every chart, in tabs that do not show
    page.wait_for_timeout(1500)
    for name, charts in CHARTS.items():
        page.get_by_role("tab", name=name, exact=True).click()
        for chart in charts:
            expect(page.locator(f"#{chart} svg.main-svg").first).to_be_visible()
            widths = wait_until(lambda: (w := page.evaluate(WIDTHS, chart)) and abs(w[0] - w[1]) <= 2 and w,
                                timeout=1, what=f"#{chart} as wide as its box: {page.evaluate(WIDTHS, chart)}")
            assert widths[1] > 300, (chart, widths)
    shot(page, "charts-fit-data")


def test_gradio_words_follow_the_language_switch(page):
    upload = page.locator("#data-file [data-testid=upload-text]")
    expect(upload).to_contain_text("Drop File Here")
    to_chinese(page)
    expect(upload).to_contain_text("将文件拖放到此处")
    expect(upload).to_contain_text("点击上传")
    expect(upload).not_to_contain_text("Click to Upload")
    assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
    page.locator("#studio-lang").get_by_text("English", exact=True).click()
    expect(upload).to_contain_text("Click to Upload")


TABLES = {"Evaluate": ["eval-metrics", "eval-details", "eval-predictions", "eval-compare-table"],
          "Playground": ["play-row-a", "play-row-b"]}


def test_no_table_shows_gradio_numbers_for_headers(page):
    for name, tables in TABLES.items():
        tab(page, name)
        page.wait_for_timeout(1500)
        for table in tables:
            shown = page.locator(f"#{table}")
            if shown.is_visible():
                assert not re.search(r"\b1\s+2\s+3\b", shown.inner_text()), f"#{table} is empty, with 1 2 3 for headers"
        shot(page, f"empty-{name.lower()}")
