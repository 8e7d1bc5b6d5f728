"""The studio's web app: one Gradio Blocks with a tab per module, and ``serve`` to run it.

Per-browser state (the data being prepared, the run being watched) lives in ``gr.State``; the
run a browser watched is also kept in its local storage (``gr.BrowserState``) so a reload
re-attaches. What every browser shares (the workspace, the job manager, loaded models) is a
``Services`` object made once per server. Every action is an event with an ``api_name``, so
``gradio_client`` scripts can drive the studio as the page does.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path
import gradio as gr

from studio.ui import data_tab, evaluate_tab, i18n, playground_tab, runs_tab, settings_tab, train_tab
from studio.ui.common import CSS
from studio.ui.i18n import t
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
        lang_state = gr.State(i18n.DEFAULT)
        browser_lang = gr.BrowserState(None, storage_key="studio-language")

        with gr.Row(elem_id="studio-top"):
            gr.Markdown(t("app.header", title=t("app.title")), elem_id="studio-header")
            lang_pick = gr.Radio([(name, code) for code, name in i18n.LANGUAGES.items()], value=i18n.DEFAULT,
                                 show_label=False, container=False, elem_id="studio-lang", scale=0, min_width=240)
        with gr.Tabs(elem_id="studio-tabs"):
            with gr.Tab(t("app.tab_data"), id="data", elem_id="tab-data"):
                data = data_tab.build(services, data_state)
            with gr.Tab(t("app.tab_train"), id="train", elem_id="tab-train"):
                train = train_tab.build(services, data_state, watch_state, browser_run)
            with gr.Tab(t("app.tab_runs"), id="runs", elem_id="tab-runs") as runs_page:
                runs = runs_tab.build(services)
            with gr.Tab(t("app.tab_evaluate"), id="evaluate", elem_id="tab-evaluate") as evaluate_page:
                evaluate = evaluate_tab.build(services)
            with gr.Tab(t("app.tab_playground"), id="playground", elem_id="tab-playground") as playground_page:
                playground = playground_tab.build(services)
            # Admins only: shown by on_roles below; its handlers check the role themselves.
            with gr.Tab(t("app.tab_settings"), id="settings", elem_id="tab-settings", visible=False) as settings_page:
                settings = settings_tab.build(services)
        gr.Markdown(t("app.footer", root=services.workspace.root), elem_id="studio-footer")

        # Saving the settings re-enables (or disables) the admin's own trust_remote_code switch at once.
        settings["saved"].then(*train.refresh_trust, api_visibility="private")

        admin_parts = [settings_page, *runs["admin_only"]]

        def on_roles(request: gr.Request):
            """Show the admin's parts (the settings, the queue's order) to admins only."""
            return [gr.update(visible=services.is_admin(request))] * len(admin_parts)

        for page, tab in ((runs_page, runs), (evaluate_page, evaluate), (playground_page, playground), (settings_page, settings)):
            page.select(*tab["refresh"], api_visibility="private")
        page_loads = [*train.loads, *((*tab["refresh"], None) for tab in (runs, evaluate, playground, settings)),
                      (*data["refresh"], None), (on_roles, None, admin_parts, None)]
        # What the tabs' handlers write (before the language's own events are added below).
        written = {id(block) for dep in app.fns.values() for block in dep.outputs}
        written_md = {id(block) for dep in app.fns.values() for block in dep.outputs if isinstance(block, gr.Markdown)}

        # Languages: every text that came from a key is re-labelled on load (the language picked
        # before, else the browser's) and when the switch changes. Texts handlers write are theirs:
        # they translate with the session's language, so the page's loads run after the language
        # is settled, and a switch runs the handlers that show text again instead of wiping it.
        translator = i18n.Translator(app.blocks)
        written_on_load = {id(block) for _, _, outputs, _ in page_loads for block in outputs or []}
        translator.redraws = [(chart, make) for chart, make in translator.redraws if id(chart) not in written_on_load]
        outputs = translator.components

        def on_load(saved: str | None, request: gr.Request):
            lang = saved if saved in i18n.LANGUAGES else i18n.pick_language(request.headers.get("accept-language"))
            i18n.remember(request, lang)
            return [lang, gr.update(value=lang), *translator.updates(lang, written_on_load, written_on_load), *translator.redrawn(lang)]

        def on_switch(lang: str, request: gr.Request):
            lang = lang if lang in i18n.LANGUAGES else i18n.DEFAULT
            i18n.remember(request, lang)
            return [lang, lang, *translator.updates(lang, written_md, written)]

        language = app.load(on_load, [browser_lang], [lang_state, lang_pick, *outputs, *translator.charts], api_visibility="private")
        for fn, inputs, outputs_of, api_name in page_loads:
            if api_name:
                language.then(fn, inputs, outputs_of, api_name=api_name)
            else:
                language.then(fn, inputs, outputs_of, api_visibility="private")
        switched = lang_pick.input(on_switch, [lang_pick], [lang_state, browser_lang, *outputs], api_visibility="private")
        for chain in [*train.relabel, *data["relabel"], *runs["relabel"], *evaluate["relabel"], *playground["relabel"],
                      *settings["relabel"]]:
            step = switched
            for fn, inputs, outputs_of in chain:
                step = step.then(fn, inputs, outputs_of, api_visibility="private")
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
    # The command line's folders always stay allowed; admins add theirs in the settings.
    jobs = JobManager(ws, cpu_slots=cpu_slots, allowed_model_roots=model_roots(model_dirs))
    services = Services(workspace=ws, jobs=jobs, models=ModelCache(), samples_dir=REPO_ASSETS / "data")
    services.exports.mkdir(parents=True, exist_ok=True)
    return services


DEFAULT_MAX_UPLOAD_MB = 200
QUEUE_IDLE_SLEEP_S = 0.01


def blocked_paths(services: Services) -> list[str]:
    """What Gradio's file routes must never serve: the users file, the settings, the run index and
    every run's folder (checkpoints, models). Gradio compares these as path prefixes, resolved."""
    from studio.jobs.store import DB_FILE
    from studio.settings import SETTINGS_FILE
    from studio.users import USERS_FILE

    root = services.workspace.root
    return [str(root / USERS_FILE), str(root / SETTINGS_FILE), *(str(root / (DB_FILE + s)) for s in ("", "-wal", "-shm", "-journal")),
            str(services.workspace.runs)]


class WorkspaceFileGuard:
    """ASGI middleware: no file route serves a file inside the workspace directly. What the app
    hands out (exports, predictions) reaches the browser as a copy in Gradio's cache, whose names
    cannot be guessed, so another user cannot fetch a run's exports by their predictable path."""

    def __init__(self, app, root: Path, cache: Path):
        self.app, self.root, self.cache = app, Path(root).resolve(), Path(cache).resolve()

    def _forbidden(self, path: str) -> bool:
        marker = path.find("/file=")
        if marker < 0:
            return False
        target = path[marker + len("/file="):]
        if "://" in target:
            return False  # URLs: Gradio's own SSRF-safe fetcher decides
        try:
            resolved = Path(os.path.abspath(target)).resolve()
        except (OSError, ValueError):
            return True
        inside = lambda folder: resolved == folder or folder in resolved.parents  # noqa: E731
        return (inside(self.root) or str(resolved).lower().startswith(str(self.root).lower())) and not inside(self.cache)

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http" and self._forbidden(scope.get("path", "")):
            await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"File not allowed."})
            return
        await self.app(scope, receive, send)


def launch(services: Services, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, block: bool = True, quiet: bool = False,
           max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB, share: bool = False) -> gr.Blocks:
    from starlette.middleware import Middleware

    from studio.users import UserStore

    # Gradio's queue summarises its last 10,000 events with pandas after every event, for the
    # /monitoring page this server turns off: with pages polling a run every second that summary
    # became the largest share of the server's CPU (read when the queue is made, below).
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(10**9))
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1")
    app = build_app(services)
    app.queue(default_concurrency_limit=8)
    # Gradio's queue loop wakes every millisecond while it has nothing to do: ~6% of a core all
    # day, taken from the training on a small machine. Every 10 ms costs an event at most 10 ms.
    queue = getattr(app, "_queue", None)
    if queue is not None and getattr(queue, "sleep_when_free", 1.0) < QUEUE_IDLE_SLEEP_S:
        queue.sleep_when_free = QUEUE_IDLE_SLEEP_S
    users = UserStore(services.workspace.root)
    # With accounts ('studio users add'), the studio asks for a name and password; runs get owners.
    auth = (lambda name, password: users.authenticate(name, password) is not None) if users.exists() else None
    gradio_cache = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")
    # The sign-in page comes before any page language is known: it says it in both.
    sign_in = " / ".join(t("app.sign_in", lang) for lang in i18n.LANGUAGES)
    app.launch(
        auth=auth, auth_message=sign_in if auth else None,
        server_name=host, server_port=port, prevent_thread_lock=True, quiet=quiet, show_error=True, share=share,
        # Hardening: no server-side rendering (no Node process), no run history, no /monitoring, no
        # install-as-app manifest, no MCP server; uploads capped; files only from the exports folder.
        ssr_mode=False, run_history=False, enable_monitoring=False, pwa=False, mcp_server=False,
        max_file_size=f"{int(max_upload_mb)}mb",
        allowed_paths=[str(services.exports)], blocked_paths=blocked_paths(services),
        app_kwargs={"middleware": [Middleware(WorkspaceFileGuard, root=services.workspace.root, cache=gradio_cache)]},
        theme=theme(), css=CSS, footer_links=["api", "settings"],
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


def is_loopback(host: str) -> bool:
    if host.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_exposure(host: str, has_users: bool, insecure: bool) -> None:
    """Refuse to listen beyond this machine without accounts, unless told to (--insecure)."""
    from studio.errors import StudioError

    if is_loopback(host) or has_users:
        return
    if not insecure:
        raise StudioError(
            f"refusing to listen on {host} without accounts: anyone on the network could use the studio. "
            "Add an admin first ('studio users add admin --role admin'), or pass --insecure if this network is trusted.")
    bar = "!" * 78
    print(f"{bar}\nWARNING: the studio listens on {host} WITHOUT LOGIN (--insecure). Anyone who can reach this port\n"
          f"can read every run and dataset, start training and delete runs. Add accounts with 'studio users add'.\n{bar}",
          file=sys.stderr, flush=True)


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workspace: str | Path | None = None,
          model_dirs: list[str] | None = None, cpu_slots: int = 1, *, insecure: bool = False,
          max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB, share: bool = False, services: Services | None = None) -> int:
    """Start the studio's web server and block until it is stopped (Ctrl-C)."""
    from studio.users import UserStore
    from studio.workspace import Workspace

    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    root = services.workspace.root if services is not None else Workspace.at(workspace).root
    has_users = UserStore(root).exists()
    check_exposure(host, has_users, insecure)
    if share and not has_users:
        print("WARNING: --share publishes the studio on a public link WITHOUT LOGIN; add accounts with 'studio users add'.",
              file=sys.stderr, flush=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    services = services or make_services(root, model_dirs, cpu_slots)
    print(f"the studio: http://{host}:{port}  (workspace {services.workspace.root}; Ctrl-C stops it)", flush=True)
    launch(services, host, port, block=True, quiet=not share, max_upload_mb=max_upload_mb, share=share)
    return 0
