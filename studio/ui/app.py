"""The studio's web app: one Gradio Blocks with a tab per module, and ``serve`` to run it.

Per-browser state (the data being prepared, the run being watched) lives in ``gr.State``; the
run a browser watched is also kept in its local storage (``gr.BrowserState``) so a reload
re-attaches. What every browser shares (the workspace, the job manager, loaded models) is a
``Services`` object made once per server. Every action is an event with an ``api_name``, so
``gradio_client`` scripts can drive the studio as the page does.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
import gradio as gr

from studio.ui import data_tab, evaluate_tab, playground_tab, runs_tab, train_tab
from studio.ui.common import CSS
from studio.ui.services import REPO_ASSETS, Services

log = logging.getLogger("studio.ui")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
TITLE = "The studio"


def build_app(services: Services) -> gr.Blocks:
    # Uploads are copied into the workspace, so Gradio's own temporary copies can go after a day.
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 86400)) as app:
        data_state = gr.State(data_tab.empty_state())
        watch_state = gr.State(train_tab.new_watch(None))
        browser_run = gr.BrowserState(None, storage_key="studio-watched-run")

        gr.Markdown(f"# {TITLE}\nFine-tune language models on your own labeled data: "
                    "**Data** → **Train** → **Evaluate** → **Playground**.", elem_id="studio-header")
        with gr.Tabs(elem_id="studio-tabs"):
            with gr.Tab("Data", id="data", elem_id="tab-data"):
                data_tab.build(services, data_state)
            with gr.Tab("Train", id="train", elem_id="tab-train"):
                train = train_tab.build(services, data_state, watch_state, browser_run)
            with gr.Tab("Runs", id="runs", elem_id="tab-runs") as runs_page:
                runs = runs_tab.build(services)
            with gr.Tab("Evaluate", id="evaluate", elem_id="tab-evaluate") as evaluate_page:
                evaluate = evaluate_tab.build(services)
            with gr.Tab("Playground", id="playground", elem_id="tab-playground") as playground_page:
                playground = playground_tab.build(services)
        gr.Markdown(f"<small>workspace: <code>{services.workspace.root}</code></small>", elem_id="studio-footer")

        for fn, inputs, outputs, api_name in train.loads:
            if api_name:
                app.load(fn, inputs, outputs, api_name=api_name)
            else:
                app.load(fn, inputs, outputs, api_visibility="private")
        for page, tab in ((runs_page, runs), (evaluate_page, evaluate), (playground_page, playground)):
            fn, inputs, outputs = tab["refresh"]
            app.load(fn, inputs, outputs, api_visibility="private")
            page.select(fn, inputs, outputs, api_visibility="private")
    return app


def theme() -> gr.themes.Theme:
    # System fonts only: the studio must look right on a machine with no internet access.
    return gr.themes.Soft(primary_hue="blue", font=["ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "Consolas", "monospace"])


def model_roots(given: list[str] | None) -> list[Path]:
    """Folders whose model subfolders users may train from: --model-dir, then $STUDIO_MODEL_DIRS."""
    roots = list(given or [])
    roots += [p for p in os.environ.get("STUDIO_MODEL_DIRS", "").split(os.pathsep) if p.strip()]
    return [Path(p).expanduser().resolve() for p in roots]


def make_services(workspace: str | Path | None = None, model_dirs: list[str] | None = None, cpu_slots: int = 1) -> Services:
    from studio.jobs.manager import JobManager
    from studio.ui.model_cache import ModelCache
    from studio.workspace import Workspace

    ws = Workspace.at(workspace)
    roots = model_roots(model_dirs)
    jobs = JobManager(ws, cpu_slots=cpu_slots, allowed_model_roots=roots)
    services = Services(workspace=ws, jobs=jobs, models=ModelCache(), allowed_model_roots=roots, samples_dir=REPO_ASSETS / "data")
    services.exports.mkdir(parents=True, exist_ok=True)
    return services


def launch(services: Services, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, block: bool = True, quiet: bool = False) -> gr.Blocks:
    from studio.users import UserStore

    app = build_app(services)
    app.queue(default_concurrency_limit=8)
    users = UserStore(services.workspace.root)
    # With accounts ('studio users add'), the studio asks for a name and password; runs get owners.
    auth = (lambda name, password: users.authenticate(name, password) is not None) if users.exists() else None
    app.launch(
        auth=auth, auth_message="Sign in with your studio account." if auth else None,
        server_name=host, server_port=port, prevent_thread_lock=True, quiet=quiet, show_error=True, ssr_mode=False,
        allowed_paths=[str(services.exports)], theme=theme(), css=CSS, footer_links=["api", "settings"],
        max_file_size="2gb", mcp_server=False,
    )
    # Count tokens in the Data tab without a wait on the first upload: load the tokenizer now.
    threading.Thread(target=_warm_up, args=(services,), name="studio-warm-up", daemon=True).start()
    if block:
        try:
            app.block_thread()
        finally:
            services.jobs.shutdown()
    return app


def _warm_up(services: Services) -> None:
    try:
        from studio.config import RunConfig
        from studio.tasks import get_task
        from studio.ui.data_tab import services_tokenizer

        services_tokenizer(services, get_task(RunConfig().task.name))
    except Exception:  # noqa: BLE001 - only a head start
        log.debug("warm-up failed", exc_info=True)


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workspace: str | Path | None = None,
          model_dirs: list[str] | None = None, cpu_slots: int = 1) -> int:
    """Start the studio's web server and block until it is stopped (Ctrl-C)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    services = make_services(workspace, model_dirs, cpu_slots)
    print(f"the studio: http://{host}:{port}  (workspace {services.workspace.root}; Ctrl-C stops it)", flush=True)
    launch(services, host, port, block=True, quiet=True)
    return 0
