"""Shared fixtures: an offline environment, a temporary workspace, and tiny models built from
configs (seconds to train) so most tests never touch real weights."""

from __future__ import annotations

import csv
import os
import random
import shutil
from pathlib import Path

import pytest

# No test may reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets"

WORDS = (
    "the a film movie book story plot acting cast music scene ending it was is this and but not very "
    "good great wonderful superb lovely brilliant fun bad awful terrible boring dull poor weak waste "
    "i we they loved hated liked enjoyed really quite so too"
).split()
POSITIVE = ["good", "great", "wonderful", "superb", "lovely", "brilliant", "fun", "loved", "enjoyed", "liked"]
NEGATIVE = ["bad", "awful", "terrible", "boring", "dull", "poor", "weak", "waste", "hated"]
FILLER = ["the", "film", "movie", "book", "story", "plot", "acting", "cast", "music", "scene", "was", "is", "this", "very", "really"]


def toy_sentiment_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Learnable two-class data: the label follows from the sentiment words in each text."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        cue = POSITIVE if label == "positive" else NEGATIVE
        words = rng.sample(FILLER, rng.randint(2, 6)) + rng.sample(cue, 2)
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": label})
    return rows


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def only_run(workspace) -> Path:
    """The one run folder of ``workspace``."""
    runs = [p for p in workspace.runs.iterdir() if not p.name.startswith(".")]
    assert len(runs) == 1, runs
    return runs[0]


def train_quietly(config: Path, folder: Path):
    """``studio train config --quiet`` into a new workspace in ``folder``: the workspace, its one
    run folder and what the command printed (for module fixtures that share one trained run)."""
    import contextlib
    import io
    from types import SimpleNamespace

    from studio.cli import main
    from studio.workspace import Workspace

    workspace = Workspace.at(folder / "workspace")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["train", str(config), "--workspace", str(workspace.root), "--quiet"])
    assert code == 0, out.getvalue()[-3000:]
    return SimpleNamespace(workspace=workspace, run=only_run(workspace), out=out.getvalue())


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A 2-layer BERT with a word-level vocabulary, saved like any Hugging Face model folder."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(WORDS))
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)}, do_lower_case=True, model_max_length=128)
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(folder)
    return folder


@pytest.fixture
def workspace(tmp_path):
    from studio.workspace import Workspace

    return Workspace.at(tmp_path / "workspace")


@pytest.fixture
def toy_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(200))


# ---- the browser: one Playwright and one chromium for the whole session ---------------------------
# Playwright's sync API runs an event loop in this thread while it is open, so a second one cannot
# start beside it: every suite that drives a page (browser tests, the security tests' rendering
# checks) takes this fixture.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium() -> str | None:
    """Debian's chromium (never a browser downloaded by Playwright)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    executable = chromium()
    if executable is None:
        pytest.skip("chromium is not installed (scripts/setup.sh test installs Debian's chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


