"""The Sweeps tab: start a hyperparameter search from a finished run's settings, follow its
trials (each a normal run in the Runs tab) on a leaderboard with Optuna's figures, cancel it.

The sweeps are driven by one background thread of the server (``studio.sweeps.driver.SweepRunner``),
started with the first sweep and whenever the workspace already has sweeps, so a sweep goes on
while nobody watches and after a restart.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import yaml

from studio.errors import StudioError
from studio.ui import words
from studio.ui.common import error_html, messages_html
from studio.ui.i18n import t
from studio.ui.services import Services, username

_runners: dict[int, Any] = {}
_started: dict[str, str] = {}
"""The sweep each page started last (by its session), shown when the page opens this tab."""


def runner(services: Services):
    """The server's sweep driver thread (one per job manager)."""
    from studio.sweeps.driver import SweepRunner

    key = id(services.jobs)
    if key not in _runners:
        _runners[key] = SweepRunner(services.jobs)
    return _runners[key]


def started(services: Services, request, sweep_id: str) -> None:
    """A sweep this page just started (here or in the Train tab): make sure the driver thread runs
    it, and show it when the page opens this tab."""
    runner(services)
    page = getattr(request, "session_hash", None)
    if page:
        _started[page] = sweep_id


def base_choices(services: Services) -> list[tuple[str, str]]:
    return [(f"{r.name or r.id} · {r.id}", r.id) for r in services.jobs.list(status="completed", limit=200) if not r.sweep]


def sweep_choices(services: Services) -> list[str]:
    from studio.sweeps.study import sweep_ids

    return sweep_ids(services.workspace)


def base_config(services: Services, run_id: str):
    from studio.config import RunConfig

    config = RunConfig.load(services.jobs.folder(run_id).config)
    config.name = f"{config.name or 'run'}-sweep"
    config.training.score_test = True
    return config


def leaderboard(services: Services, sweep_id: str) -> tuple[str, list[list[Any]], list[Any]]:
    """The summary line, the table's rows and the three figures of a sweep."""
    from studio.sweeps.report import figures, report, seconds_text, settings_text, value_text

    r = report(services.jobs, sweep_id)
    spec = r.spec
    statuses = {"running": t("sweeps.status_running"), "scoring": t("sweeps.status_scoring"),
                "completed": t("sweeps.status_completed"), "cancelled": t("sweeps.status_cancelled")}
    lines = [t("sweeps.summary", status=statuses.get(r.status, r.status), done=r.finished, trials=spec.trials, metric=spec.metric)]
    if r.best is not None:
        lines.append(t("sweeps.best", trial=r.best.trial, run=r.best.run_id, metric=spec.metric, value=value_text(r.best.value)))
        test = (r.test or {}).get(spec.metric)
        lines.append(t("sweeps.best_test", metric=spec.metric, value=value_text(test)) if isinstance(test, (int, float))
                     else t("sweeps.best_test_later"))
    rows = [[row.trial, row.run_id or "-", settings_text(row.settings), value_text(row.value), seconds_text(row.seconds),
             words.status(row.status)] for row in r.rows]
    titles = {"history": t("sweeps.plot_history"), "parallel": t("sweeps.plot_parallel"), "importances": t("sweeps.plot_importances")}
    drawn = figures(services.jobs, sweep_id)
    for name, figure in drawn.items():
        if figure is not None:
            figure.update_layout(title=titles[name])
    return messages_html([("info", line) for line in lines]), rows, [drawn["history"], drawn["parallel"], drawn["importances"]]


def build(services: Services) -> dict[str, Any]:
    from studio.sweeps.study import SWEEPS_DB

    if (services.workspace.root / SWEEPS_DB).exists():
        runner(services)  # sweeps left open by a previous server go on
    gr.Markdown(t("sweeps.intro"))
    with gr.Row():
        base = gr.Dropdown(choices=[], label=t("sweeps.base_run"), info=t("sweeps.base_run_info"), elem_id="sweeps-base", scale=3)
        trials = gr.Number(value=12, precision=0, minimum=1, label=t("sweeps.trials"), elem_id="sweeps-trials")
        parallel = gr.Number(value=1, precision=0, minimum=1, label=t("sweeps.parallel"), elem_id="sweeps-parallel")
        pruner = gr.Dropdown(choices=[(t("sweeps.pruner_median"), "median"), (t("sweeps.pruner_halving"), "halving"),
                                      (t("sweeps.pruner_none"), "none")], value="median", label=t("sweeps.pruner"),
                             elem_id="sweeps-pruner")
    space = gr.Code(value="", language="yaml", label=t("sweeps.space"), interactive=True, elem_id="sweeps-space")
    start = gr.Button(t("sweeps.start"), variant="primary", elem_id="sweeps-start")
    message = gr.HTML("", elem_id="sweeps-message")
    with gr.Row():
        pick = gr.Dropdown(choices=[], label=t("sweeps.sweep"), elem_id="sweeps-pick", scale=3)
        stop_running = gr.Checkbox(value=False, label=t("sweeps.stop_running"), info=t("sweeps.stop_running_info"),
                                   elem_id="sweeps-stop-running", scale=1)
        cancel = gr.Button(t("sweeps.cancel"), elem_id="sweeps-cancel", scale=1)
    summary = gr.HTML("", elem_id="sweeps-summary")
    table = gr.Dataframe(headers=[t("sweeps.col_trial"), t("sweeps.col_run"), t("sweeps.col_settings"), t("sweeps.col_score"),
                                  t("sweeps.col_time"), t("sweeps.col_status")], interactive=False, elem_id="sweeps-table")
    with gr.Row():
        history = gr.Plot(label=t("sweeps.plot_history"), elem_id="sweeps-plot-history")
        coordinates = gr.Plot(label=t("sweeps.plot_parallel"), elem_id="sweeps-plot-parallel")
        importances = gr.Plot(label=t("sweeps.plot_importances"), elem_id="sweeps-plot-importances")
    timer = gr.Timer(3.0)
    shown = [summary, table, history, coordinates, importances]

    def load_fn(current=None, request: gr.Request = None):
        """The base runs and the sweeps; the one shown: the sweep this page started last, else the
        one chosen already, else the newest."""
        ids = sweep_choices(services)
        mine = _started.pop(getattr(request, "session_hash", None), None)
        shown = next((x for x in (mine, current) if x in ids), ids[0] if ids else None)
        return gr.update(choices=base_choices(services)), gr.update(choices=ids, value=shown)

    def space_fn(run_id):
        """The default space for the chosen run's settings: shown, to be edited."""
        from studio.sweeps.driver import base_space
        from studio.sweeps.space import space_to_dict

        if not run_id:
            return "", ""
        try:
            found = base_space(services.jobs, base_config(services, run_id))
            return yaml.safe_dump(space_to_dict(found), sort_keys=False), ""
        except StudioError as error:
            return "", error_html(error)

    def start_fn(run_id, n, at_once, prune, text, request: gr.Request = None):
        from studio.sweeps.driver import create_sweep
        from studio.sweeps.space import parse_space

        if not run_id:
            return messages_html([("error", t("sweeps.pick_base"))]), gr.update()
        try:
            try:
                data = yaml.safe_load(text or "") or None
            except yaml.YAMLError as error:
                raise StudioError(t("sweeps.space_not_yaml", error=str(error))) from None
            sweep_id = create_sweep(services.jobs, base_config(services, run_id), trials=int(n or 1),
                                    space=parse_space(data) if data else None, parallel=int(at_once or 1), pruner=prune,
                                    owner=username(request))
        except StudioError as error:
            return error_html(error), gr.update()
        runner(services)
        return messages_html([("ok", t("sweeps.started", sweep=sweep_id))]), gr.update(choices=sweep_choices(services), value=sweep_id)

    def show_fn(sweep_id):
        if not sweep_id:
            return ["", [], None, None, None]
        try:
            text, rows, figures = leaderboard(services, sweep_id)
        except StudioError as error:
            return [error_html(error), [], None, None, None]
        return [text, rows, *figures]

    def cancel_fn(sweep_id, stop, request: gr.Request = None):
        from studio.sweeps import study
        from studio.sweeps.driver import cancel_sweep

        if not sweep_id:
            return ""
        try:
            owner = study.spec_of(study.load(services.workspace, sweep_id)).owner
            if not services.may_change(request, owner):
                raise StudioError(t("sweeps.not_yours"))
            n = cancel_sweep(services.jobs, sweep_id, stop_running=bool(stop))
        except StudioError as error:
            return error_html(error)
        text = t("sweeps.cancelled_stopped", sweep=sweep_id, n=n) if stop else t("sweeps.cancelled", sweep=sweep_id, n=n)
        return messages_html([("ok", text)])

    base.change(space_fn, [base], [space, message], api_visibility="private")
    start.click(start_fn, [base, trials, parallel, pruner, space], [message, pick], api_visibility="private")
    pick.change(show_fn, [pick], shown, api_visibility="private", show_progress="hidden")
    timer.tick(show_fn, [pick], shown, api_visibility="private", show_progress="hidden")
    cancel.click(cancel_fn, [pick, stop_running], [message], api_visibility="private")
    return {"refresh": (load_fn, [pick], [base, pick])}
