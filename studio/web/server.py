"""The studio's web server: the Gradio app mounted in a FastAPI app of the studio's own, behind
the gate (``studio.web.gate``), served by uvicorn.

Routes of the studio itself: ``/login`` and ``/logout`` (sessions), ``/healthz`` (for container
health checks; says nothing but "ok"), ``/download/<run>/<kind>`` (a run's files, for its owner
and admins). Everything else is Gradio's, each request through the same gate.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from studio.errors import StudioError
from studio.ui.services import Services

log = logging.getLogger("studio.web")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 200
QUEUE_IDLE_SLEEP_S = 0.01


class Caller:
    """Who asks, in the shape ``Services`` reads from a Gradio request (``.username``)."""

    def __init__(self, username: str | None):
        self.username = username or None


def gradio_cache() -> Path:
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def build_server(services: Services, *, max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB, behind_https: bool = False):
    """The FastAPI app with the studio's routes and the Gradio Blocks mounted, behind the gate."""
    import gradio as gr
    from fastapi import FastAPI
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, PlainTextResponse

    from studio.ui.app import build_app, theme
    from studio.ui.common import CSS
    from studio.ui import downloads
    from studio.web.gate import USER_KEY, Gate, GateMiddleware
    from studio.web.login import Login

    # Gradio's queue summarises its last 10,000 events with pandas after every event, for the
    # /monitoring page this server turns off: with pages polling a run every second that summary
    # became the largest share of the server's CPU (read when the queue is made, below).
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(10**9))
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1")
    gate = Gate(services.workspace.root, gradio_cache(), max_upload_mb * 2**20, behind_https=behind_https)
    # Cross-site callers: only the origins an admin listed (read at start), with credentials.
    # Gradio adds no CORS headers of its own when the parent app has this middleware.
    cors = Middleware(CORSMiddleware, allow_origins=list(gate.settings().allowed_origins), allow_credentials=True,
                      allow_methods=["*"], allow_headers=["*"])
    server = FastAPI(docs_url=None, redoc_url=None, openapi_url=None,
                     middleware=[cors, Middleware(GateMiddleware, gate=gate)])
    login = Login(gate)
    # Plain Starlette routes (the request in, a response out): nothing here is an API to describe.
    server.add_route("/login", login.page, methods=["GET"])
    server.add_route("/login", login.submit, methods=["POST"])
    server.add_route("/logout", login.logout, methods=["GET", "POST"])
    server.add_route("/healthz", lambda request: PlainTextResponse("ok"), methods=["GET"])

    async def download(request: Request):
        run_id, kind = request.path_params["run_id"], request.path_params["kind"]
        caller = Caller(request.scope.get(USER_KEY))
        try:
            services.check_may_download(caller, run_id)
        except StudioError as error:
            return JSONResponse({"error": str(error)}, status_code=403)
        services.exports.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="download-", dir=services.exports))
        try:
            path = await run_in_threadpool(downloads.build, services, run_id, kind, folder)
        except StudioError as error:
            shutil.rmtree(folder, ignore_errors=True)
            return JSONResponse({"error": str(error)}, status_code=404)
        log.info("%s downloaded the %s of run %s", caller.username or "local user", kind, run_id)
        return FileResponse(path, filename=path.name, headers={"Cache-Control": "no-store"},
                            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))

    server.add_route("/download/{run_id}/{kind}", download, methods=["GET"])

    blocks = build_app(services)
    blocks.queue(default_concurrency_limit=8)
    from studio.ui import i18n
    from studio.ui.i18n import t

    sign_in = " / ".join(t("app.sign_in", lang) for lang in i18n.LANGUAGES)
    gr.mount_gradio_app(
        server, blocks, path="/",
        # The gate has already checked the session; "" is the user of a studio without accounts.
        auth_dependency=lambda request: request.scope.get(USER_KEY, ""), auth_message=sign_in,
        # Hardening: no server-side rendering (no Node process), no run history, no /monitoring, no
        # install-as-app manifest, no MCP server; uploads capped; Gradio's file routes serve only its
        # own cache (the gate checks that too), never the workspace.
        ssr_mode=False, run_history=False, enable_monitoring=False, pwa=False, mcp_server=False,
        max_file_size=f"{int(max_upload_mb)}mb", allowed_paths=[], blocked_paths=[str(services.workspace.root)],
        theme=theme(), css=CSS, footer_links=["api", "settings"], show_error=True,
        app_kwargs={"docs_url": None, "redoc_url": None, "openapi_url": None},
    )
    # Gradio's queue loop wakes every millisecond while it has nothing to do: ~6% of a core all
    # day, taken from the training on a small machine. Every 10 ms costs an event at most 10 ms.
    queue = getattr(blocks, "_queue", None)
    if queue is not None and getattr(queue, "sleep_when_free", 1.0) < QUEUE_IDLE_SLEEP_S:
        queue.sleep_when_free = QUEUE_IDLE_SLEEP_S
    server.state.blocks, server.state.gate = blocks, gate
    return server


class WebServer:
    """uvicorn serving the studio, in this thread (``run``) or a background one (``start``)."""

    def __init__(self, services: Services, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, quiet: bool = False,
                 max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB, behind_https: bool = False):
        import uvicorn

        self.services = services
        self.app = build_server(services, max_upload_mb=max_upload_mb, behind_https=behind_https)
        # Behind a reverse proxy (--behind-https), the proxy's X-Forwarded-For/-Proto are believed
        # (the client's address for the sign-in limits, https for the cookie) when it connects from
        # this machine, or from the addresses in FORWARDED_ALLOW_IPS. Served directly, never: anyone
        # could claim another address.
        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning" if quiet else "info",
                                access_log=False, proxy_headers=behind_https,
                                forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def blocks(self):
        return self.app.state.blocks

    def start(self, timeout: float = 30) -> "WebServer":
        import time

        self.thread = threading.Thread(target=self.server.run, name="studio-web", daemon=True)
        self.thread.start()
        deadline = time.time() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.time() > deadline:
                raise StudioError(f"the web server did not start on {self.server.config.host}:{self.server.config.port} "
                                  "(is the port in use?)")
            time.sleep(0.01)
        return self

    def run(self) -> None:
        """Serve until Ctrl-C or SIGTERM (uvicorn's signal handling, in the main thread)."""
        self.server.run()
        if not self.server.started:
            raise StudioError(f"the web server could not listen on {self.server.config.host}:{self.server.config.port} "
                              "(is the port in use?)")

    def close(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(15)
        queue = getattr(self.blocks, "_queue", None)
        if queue is not None:
            queue.close()


def _warm_up(services: Services) -> None:
    # Count tokens in the Data tab without a wait on the first upload: load the tokenizer now.
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
          max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB, share: bool = False, behind_https: bool = False,
          services: Services | None = None) -> int:
    """Start the studio's web server and block until it is stopped (Ctrl-C)."""
    from studio.ui.app import make_services
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
    _clean_up(services)
    web = WebServer(services, host, port, quiet=not share, max_upload_mb=max_upload_mb, behind_https=behind_https)
    print(f"the studio: http://{host}:{port}  (workspace {services.workspace.root}; Ctrl-C stops it)", flush=True)
    threading.Thread(target=_warm_up, args=(services,), name="studio-warm-up", daemon=True).start()
    if share:
        threading.Thread(target=_share, args=(web, host, port), name="studio-share", daemon=True).start()
    try:
        web.run()
    finally:
        services.jobs.shutdown()
    return 0


def _clean_up(services: Services) -> None:
    """Downloads are deleted once sent (what a crash left behind goes now), expired sessions and
    old sign-in failures are forgotten, and uploads no run uses go a week after they came."""
    from studio.web.gate import Gate

    shutil.rmtree(services.exports, ignore_errors=True)
    gate_rules = Gate(services.workspace.root, gradio_cache(), 0)
    idle_s, max_s = gate_rules.session_limits()
    gate_rules.auth.prune(idle_s=idle_s, max_s=max_s)
    gate_rules.auth.close()
    removed = services.clean_uploads()
    if removed:
        log.info("deleted %d upload folder(s) no run used for a week", len(removed))


def _share(web: WebServer, host: str, port: int) -> None:
    import time

    from gradio import networking

    while not web.server.started:
        time.sleep(0.1)
    try:
        import secrets

        url = networking.setup_tunnel(host if host != "0.0.0.0" else "127.0.0.1", port, secrets.token_urlsafe(32), None, None)
        print(f"public link: {url}", flush=True)
    except Exception as error:  # noqa: BLE001 - the studio still serves locally
        print(f"WARNING: no public link ({error})", file=sys.stderr, flush=True)
