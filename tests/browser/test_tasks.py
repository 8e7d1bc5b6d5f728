"""One browser flow each for token classification (NER) and generation: the same tabs, with the
task's own display widgets (highlighted entities; prompt, reference, base and fine-tuned output)."""

from __future__ import annotations

import json
import random
import re

import pytest
import yaml

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import shot  # noqa: E402
from tests.browser.test_flows import RUN_TIMEOUT_MS  # noqa: E402
from tests.browser.ui import (  # noqa: E402
    choose, click_first_row, expect_no_traceback, fill, open_accordion, radio, tab, value_of, wait_until,
)
from tests.conftest import FILLER, write_csv  # noqa: E402
from tests.tiny_generation import colour_rows  # noqa: E402

ITEMS = ["film", "movie", "book"]


@pytest.fixture
def ner_jsonl(tmp_path):
    rng = random.Random(3)
    path = tmp_path / "items.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(60):
            words = rng.sample([w for w in FILLER if w not in ITEMS], 4) + [rng.choice(ITEMS)]
            rng.shuffle(words)
            tags = ["B-ITEM" if w in ITEMS else "O" for w in words]
            f.write(json.dumps({"tokens": words, "tags": tags}) + "\n")
    return path


def train(page, server, backbone: str, name: str, data_file: str, **advanced: str) -> None:
    """Launch a quick run of the Data tab's file with these Advanced fields, check the run got them, and wait for it."""
    tab(page, "Train")
    # The Train tab follows the Data tab (data, task, backbone choices) through a chain of events;
    # choices are made once it has ended, so none of its answers can arrive after them.
    expect(page.locator("#train-data input")).to_have_value(f"Data tab: {data_file} (ready)")
    choose(page, "train-backbone", backbone)
    radio(page, "train-preset", "quick")
    fill(page, "train-name", name)
    open_accordion(page, "train-advanced", "Advanced")
    for key, value in advanced.items():
        fill(page, "train-adv-" + key, value)
    if "training-batch_size" in advanced:  # the estimate is worked out by the server from the page's values
        expect(page.locator("#train-estimate")).to_contain_text(f"batch {advanced['training-batch_size']},")
    page.locator("#train-launch").click()
    expect(page.locator("#train-message")).to_contain_text("trains in its own process", timeout=60_000)
    run_id = re.search(r"run (\S+) is", page.locator("#train-message").inner_text()).group(1)
    config = yaml.safe_load((server["workspace"] / "runs" / run_id / "config.yaml").read_text(encoding="utf-8"))
    for key, value in advanced.items():
        section, field = key.split("-", 1)
        got = config[section][field]
        assert got is not None and float(got) == float(value), f"{key}: typed {value}, the run got {got}"
    expect(page.locator("#run-status")).to_contain_text("completed", timeout=RUN_TIMEOUT_MS)


def test_ner_entities_are_highlighted(page, server, ner_jsonl):
    page.set_input_files("#data-file input[type=file]", str(ner_jsonl))
    expect(page.locator("#data-messages")).to_contain_text("the data fits named entities")
    assert value_of(page, "data-task").endswith("(ner)")
    expect(page.locator("#data-labels-plot")).to_contain_text("B-ITEM")
    shot(page, "10-data-ner")

    train(page, server, "tiny-bert · local folder", "items-ner", "items.jsonl",
          **{"training-batch_size": "8", "training-learning_rate": "0.005", "training-epochs": "6"})

    tab(page, "Evaluate")
    choose(page, "eval-run", "items-ner")
    expect(page.locator("#eval-details")).to_contain_text("ITEM")
    click_first_row(page, "eval-predictions")
    expect(page.locator("#eval-spans")).to_be_visible()
    expect(page.locator("#eval-gold-spans")).to_contain_text("ITEM")
    shot(page, "11-evaluate-ner")

    tab(page, "Playground")
    choose(page, "play-run", "items-ner")
    page.locator("#play-text textarea").fill("the movie was great")
    page.locator("#play-predict").click()
    expect(page.locator("#play-spans-a")).to_be_visible(timeout=60_000)
    expect(page.locator("#play-spans-a")).to_contain_text("movie")
    expect(page.locator("#play-spans-a")).to_contain_text("ITEM")  # the tagger learned the toy entity
    shot(page, "12-playground-ner")
    expect_no_traceback(page)


def test_generation_shows_base_and_fine_tuned_output(page, server, tmp_path):
    data = write_csv(tmp_path / "colours.csv", colour_rows(80))
    page.set_input_files("#data-file input[type=file]", str(data))
    expect(page.locator("#data-messages")).to_contain_text("the data fits text generation")
    # Token lengths with the default backbone's tokenizer: read from its GGUF file on first use (seconds).
    expect(page.locator("#data-lengths-plot")).to_contain_text("max length", timeout=60_000)
    shot(page, "15-data-generation")

    train(page, server, "tiny-llama · local folder", "colours-gen", "colours.csv",
          **{"training-batch_size": "8", "training-learning_rate": "0.005", "generation-max_new_tokens": "8",
             "generation-max_eval_examples": "4"})

    tab(page, "Evaluate")
    choose(page, "eval-run", "colours-gen")
    expect(page.locator("#eval-metrics")).to_contain_text("test_base")
    expect(page.locator("#eval-predictions")).to_contain_text("base generation")
    click_first_row(page, "eval-predictions")
    for i, label in enumerate(["prompt", "reference", "base generation", "generation"]):
        expect(page.locator(f"#eval-side-{i}")).to_be_visible()
        expect(page.locator(f"#eval-side-{i}")).to_contain_text(label)
    shot(page, "13-evaluate-generation")

    tab(page, "Playground")
    choose(page, "play-run", "colours-gen")
    expect(page.locator("#play-decoding")).to_be_visible()
    choose(page, "play-run-b", "base model")
    page.locator("#play-text textarea").fill("what colour is the sky ?")
    page.locator("#play-predict").click()
    expect(page.locator("#play-output-a")).to_be_visible(timeout=60_000)
    expect(page.locator("#play-output-b")).to_be_visible()
    expect(page.locator("#play-title-b")).to_contain_text("base model")
    shot(page, "14-playground-generation")

    # SFT, then DPO in two clicks: the finished run is offered to continue from, and the run
    # launched with it starts from its model.
    run_id = next(p.name for p in (server["workspace"] / "runs").iterdir()
                  if p.is_dir() and yaml.safe_load((p / "config.yaml").read_text(encoding="utf-8"))["name"] == "colours-gen")
    tab(page, "Train")
    expect(page.locator("#train-data input")).to_have_value("Data tab: colours.csv (ready)")
    expect(page.locator("#train-adv-model-from_run")).to_be_visible()  # Advanced is still open: listed on a click
    choose(page, "train-adv-model-from_run", "colours-gen")
    assert run_id in value_of(page, "train-adv-model-from_run")
    fill(page, "train-name", "colours-continued")
    page.locator("#train-launch").click()
    expect(page.locator("#train-message")).to_contain_text("colours-continued", timeout=60_000)  # not the last launch's
    continued = re.search(r"run (\S+) is", page.locator("#train-message").inner_text()).group(1)
    config = yaml.safe_load((server["workspace"] / "runs" / continued / "config.yaml").read_text(encoding="utf-8"))
    assert config["model"]["from_run"] == run_id
    folder = server["workspace"] / "runs" / continued
    assert json.loads((folder / "task.json").read_text(encoding="utf-8")).get("from_run") == run_id
    wait_until(lambda: '"status": "completed"' in (folder / "events.jsonl").read_text(encoding="utf-8"),
               timeout=RUN_TIMEOUT_MS / 1000, what="the continued run to complete")
    expect_no_traceback(page)
