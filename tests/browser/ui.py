"""Helpers to drive Gradio components by their ``elem_id``."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect


def choose(page: Page, elem_id: str, option: str) -> None:
    """Pick a dropdown option whose text contains ``option``."""
    page.locator(f"#{elem_id} input[role=combobox]").click()
    page.locator(f"#{elem_id} li[role=option]", has_text=option).first.click()


def type_into_dropdown(page: Page, elem_id: str, value: str) -> None:
    """Enter a custom value (dropdowns that allow one)."""
    box = page.locator(f"#{elem_id} input[role=combobox]")
    box.click()
    box.fill(value)
    box.press("Enter")


def value_of(page: Page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} input").first.input_value()


def radio(page: Page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} label", has_text=option).first.click()


def fill(page: Page, elem_id: str, value: str) -> None:
    """Type into a textbox or number field, then leave it."""
    box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    box.fill(value)
    box.press("Tab")


def open_accordion(page: Page, elem_id: str, label: str) -> None:
    """Open a closed gr.Accordion and wait until Gradio has finished revealing its fields.

    Gradio mounts a closed accordion's children when it opens and, on a later animation frame,
    hands them their stored state: a value typed in between is replaced by the old one. A person
    never sees the fields before that frame is painted; a test can type into them, and on a busy
    machine it did (the run trained with the preset's batch, not the one typed). Two frames of our
    own end after Gradio's.
    """
    page.locator(f"#{elem_id}").get_by_text(label).click()
    expect(page.locator(f"#{elem_id} [data-testid=accordion-content] :is(input, textarea)").first).to_be_visible()
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 0))))")


def click_first_row(page: Page, elem_id: str, column: int = 1) -> None:
    """Click a cell of a gr.Dataframe's first body row (its cells are role=gridcell divs)."""
    page.locator(f"#{elem_id} [role=gridcell]").nth(column).click()


def tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def plot_points(page: Page, elem_id: str) -> int:
    """Markers drawn by plotly in a gr.Plot."""
    return page.evaluate(f"() => document.querySelectorAll('#{elem_id} .scatterlayer path.point').length")


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.25, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def expect_no_traceback(page: Page) -> None:
    expect(page.locator("body")).not_to_contain_text("Traceback (most recent call last)")
