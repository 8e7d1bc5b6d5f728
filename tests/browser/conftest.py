"""Browser tests: the studio served from a subprocess on a free port with a temporary workspace,
driven by Playwright in Debian's chromium (never a browser downloaded by Playwright).

One server serves the whole module (starting it costs seconds); each test gets a fresh browser
context, so per-browser state starts empty. Training runs use the tiny random BERT of
``tests/conftest.py`` through an allowed local model folder, and every worker step is slowed a
little (``STUDIO_STEP_DELAY``) so the page can be seen while a run trains. Screenshots go to
``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, toy_sentiment_rows, write_csv
from tests.servers import free_port, start_server, stop, wait_until_up

ARTIFACTS = REPO / "test-artifacts"
STEP_DELAY = "0.2"

try:
    from playwright.sync_api import expect
except ImportError:  # the tests skip themselves (see the browser fixture)
    pass
else:
    # The machine running the suite may be busy (a worker trains on the same CPUs): give the page time.
    expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def server(tmp_path_factory, tiny_encoder):
    """The studio on a free port; yields its URL, workspace and the model folder users may pick."""
    root = tmp_path_factory.mktemp("studio-ui")
    workspace = root / "workspace"
    models = root / "models"
    models.mkdir()
    model = models / "tiny-bert"
    shutil.copytree(tiny_encoder, model)
    from tests.tiny_generation import tiny_causal_lm

    tiny_causal_lm(models / "tiny-llama")
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "browser-server.log", "wb")
    process = start_server(workspace, port, log, "--model-dir", str(models),
                           env={"STUDIO_STEP_DELAY": STEP_DELAY, "PYTHONFAULTHANDLER": "1"})
    url = f"http://127.0.0.1:{port}/"
    wait_until_up(process, url)
    yield {"url": url, "workspace": workspace, "model": model, "decoder": models / "tiny-llama", "process": process}
    if process.poll() is not None:  # it must not have died under the tests
        log.write(f"\n[tests] the server had exited with code {process.returncode}\n".encode())
    stop(process)
    log.close()
    _kill_workers(workspace)


def _kill_workers(workspace: Path) -> None:
    """No worker may outlive the tests (a cancelled or crashed test can leave one)."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "studio.worker" in cmdline and any(str(workspace) in part for part in cmdline):
            try:
                proc.kill()
            except psutil.Error:
                pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.failed_call = report.failed


@pytest.fixture
def page(request, browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server["url"])
    page.wait_for_selector("#data-file")
    yield page
    if getattr(request.node, "failed_call", False):
        shot(page, f"FAILED-{request.node.name}")
    context.close()
    cancel_active_runs(server["workspace"])


def cancel_active_runs(workspace: Path) -> None:
    """A test that failed halfway must not leave a run holding the only CPU slot for the next."""
    from studio.jobs.manager import JobManager

    manager = JobManager(workspace, supervise=False)
    for record in manager.list(status=("queued", "starting", "running")):
        try:
            manager.cancel(record.id)
        except Exception:  # noqa: BLE001 - it may have ended meanwhile
            pass


@pytest.fixture(scope="session")
def reviews_csv(tmp_path_factory) -> Path:
    """Reviews whose label column has a name the studio does not recognise ('feeling'), next to a
    'score' column it guesses first: the user has to fix the label column."""
    import random

    rng = random.Random(1)
    rows = [{"text": r["text"], "score": str(rng.randint(1, 3)), "feeling": r["label"]} for r in toy_sentiment_rows(80)]
    return write_csv(tmp_path_factory.mktemp("upload") / "reviews.csv", rows)


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
