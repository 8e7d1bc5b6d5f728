"""The Runs tab: every run of the workspace, filters, overlaid loss curves, config diff, delete,
downloads (model as zip, config as YAML, predictions as CSV with formula-like cells escaped), and
for admins the order of the queue.

Everyone sees the team's runs; deleting and downloading one is for its owner and admins. The
buttons say so for the chosen run, and every handler checks again through ``Services`` (a hidden
or disabled button is only a convenience).
"""

from __future__ import annotations

import html
import json
import urllib.parse
from pathlib import Path
from typing import Any

import gradio as gr

from studio.ui import i18n, words
from studio.ui.i18n import t
import pandas as pd
import yaml

from studio.errors import StudioError
from studio.runs import state as run_state
from studio.tasks import list_tasks
from studio.ui import charts
from studio.ui.common import error_html, messages_html, metric_text, run_choice, run_duration, when
from studio.ui.services import Services

STATUSES = list(run_state.STATUSES)
MOVES = ("top", "up", "down", "bottom")


def columns() -> list[str]:
    """The runs table's headers, in the page's language."""
    return [t("runs.col_run"), t("runs.col_name"), t("runs.col_sweep"), t("runs.col_task"), t("runs.col_backbone"),
            t("runs.col_status"), t("runs.col_metric"), t("runs.col_duration"), t("runs.col_owner"), t("runs.col_created")]


def runs_frame(services: Services, statuses: list[str] | None, task: str | None, owner: str | None, search: str | None):
    records = services.jobs.list(status=statuses or None, task=task or None, owner=(owner or "").strip() or None)
    needle = (search or "").strip().lower()
    if needle:  # a sweep's id finds its trials
        records = [r for r in records
                   if needle in " ".join(str(x) for x in (r.id, r.name, r.backbone, r.task, r.owner, r.sweep)).lower()]
    rows = []
    for r in records:
        status = words.status(r.status) + (f" (#{r.position})" if r.status == "queued" and r.position else "")
        if r.executor != "local":  # where a cluster run is: its executor and, once placed, its node
            status += f" · {r.executor}" + (f" {r.node}" if r.node else "")
        # A trial's run shows its sweep (its name says which trial: '<name>-trial-<n>').
        rows.append([r.id, r.name or "", r.sweep or "", words.task_title_of(r.task), _short_backbone(r.backbone), status,
                     metric_text(r), run_duration(r), r.owner or "—", when(r.created)])
    return pd.DataFrame(rows, columns=columns()), records


def _short_backbone(name: str | None) -> str:
    if not name:
        return ""
    return Path(name).name if name.startswith(("/", "~", ".")) else name


def run_series(services: Services, run_id: str) -> charts.RunSeries:
    series = charts.RunSeries(run_id)
    events, offset = services.jobs.events(run_id, 0)
    series.feed(events)
    series.offset = offset
    return series


def legend_names(services: Services, run_ids: list[str]) -> dict[str, str]:
    """The name each run goes by in a chart's legend: its own name (a run id is long, and the
    legend ran over the chart), with the id's last characters when two runs share a name."""
    names = {}
    for run_id in run_ids:
        try:
            names[run_id] = services.jobs.get(run_id).name or run_id
        except StudioError:
            names[run_id] = run_id
    shared = {name for name in names.values() if list(names.values()).count(name) > 1}
    return {run_id: f"{name} · {run_id[-4:]}" if name in shared else name for run_id, name in names.items()}


def config_diff_html(services: Services, a: str | None, b: str | None) -> str:
    if not a or not b:
        return messages_html([("info", t("runs.pick_two_runs"))])
    try:
        left = _flat(yaml.safe_load(services.jobs.folder(a).config.read_text(encoding="utf-8")) or {})
        right = _flat(yaml.safe_load(services.jobs.folder(b).config.read_text(encoding="utf-8")) or {})
    except (OSError, StudioError, yaml.YAMLError) as error:
        return error_html(error if isinstance(error, StudioError) else StudioError(t("runs.config_unreadable", error=str(error))))
    keys = [k for k in dict.fromkeys([*left, *right]) if left.get(k) != right.get(k)]
    if not keys:
        return messages_html([("info", t("runs.configs_identical"))])
    rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(_show(left.get(k)))}</td>"
                   f"<td>{html.escape(_show(right.get(k)))}</td></tr>" for k in keys)
    return (f'<table class="studio-diff"><thead><tr><th>{html.escape(t("runs.col_setting"))}</th><th>{html.escape(a)}</th>'
            f'<th>{html.escape(b)}</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        if not data and prefix:
            out[prefix[:-1]] = {}
        return out
    out[prefix[:-1]] = data
    return out


def _show(value: Any) -> str:
    return "—" if value is None else (json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value))


# ---- downloads ----------------------------------------------------------------------------------
def downloads_html(services: Services, run_id: str | None, allowed: bool) -> str:
    """One-click links to a run's files (the server's checked download route), for its owner and admins."""
    if not run_id or not allowed:
        return ""
    from studio.ui.downloads import available

    labels = {"model": t("runs.model_zip"), "config": t("runs.config_yaml"), "predictions": t("runs.predictions_csv")}
    try:
        ready = available(services, run_id)
    except StudioError:
        return ""
    quoted = urllib.parse.quote(run_id, safe="")
    links = [f'<a class="studio-download" id="runs-download-{kind}" href="download/{quoted}/{kind}" download>'
             f"{html.escape(label)}</a>" if kind in ready else
             f'<span class="studio-download off" id="runs-download-{kind}">{html.escape(t("runs.download_unavailable", what=label))}</span>'
             for kind, label in labels.items()]
    return f'<div class="studio-downloads">{html.escape(t("runs.downloads"))} {" ".join(links)}</div>'


def queue_choices(services: Services, current: str | None = None):
    """The queued runs in their order, for the admin's queue panel (without ``current``, the
    choice made in the page stays)."""
    choices = [(f"#{r.position} · {r.name or r.id} · {r.owner or '—'} · {r.id}", r.id) for r in services.jobs.queue()]
    if current is None:
        return gr.update(choices=choices)
    ids = {value for _, value in choices}
    return gr.update(choices=choices, value=current if current in ids else None)


# ---- layout -------------------------------------------------------------------------------------
def build(services: Services) -> dict[str, Any]:
    with gr.Row():
        status_filter = gr.Dropdown([(words.status(status), status) for status in STATUSES], value=[], multiselect=True,
                                    label=t("runs.status"), elem_id="runs-status", scale=2)
        task_filter = gr.Dropdown([(t("runs.all_tasks"), "")] + [(words.task_title(task), task.name) for task in list_tasks()],
                                  value="", label=t("runs.task"),
                                  elem_id="runs-task", scale=2)
        owner_filter = gr.Textbox(label=t("runs.owner"), elem_id="runs-owner", scale=1)
        search = gr.Textbox(label=t("runs.search"), placeholder=t("runs.id_name_backbone"), elem_id="runs-search", scale=2)
        refresh = gr.Button(t("runs.refresh"), elem_id="runs-refresh", scale=1)
    table = gr.Dataframe(headers=columns(), interactive=False, elem_id="runs-table", max_height=380, wrap=True,
                         column_widths=["17%", "11%", "11%", "9%", "10%", "8%", "10%", "7%", "7%", "10%"])

    gr.Markdown(t("runs.compare"))
    with gr.Row():
        overlay_runs = gr.Dropdown([], value=[], multiselect=True, label=t("runs.runs_to_overlay"), elem_id="runs-overlay", scale=3)
    overlay_plot = i18n.redraw(gr.Plot(charts.overlay_figure({}), show_label=False, elem_id="runs-overlay-chart"),
                                 lambda: charts.overlay_figure({}))
    with gr.Row():
        diff_a = gr.Dropdown([], value=None, label=t("runs.config_of_run_a"), elem_id="runs-diff-a")
        diff_b = gr.Dropdown([], value=None, label=t("runs.against_run_b"), elem_id="runs-diff-b")
    diff = gr.HTML("", elem_id="runs-diff")

    gr.Markdown(t("runs.one_run"))
    with gr.Row():
        chosen = gr.Dropdown([], value=None, label=t("runs.run"), elem_id="runs-chosen", scale=3)
    downloads = gr.HTML("", elem_id="runs-downloads")
    owner_note = gr.HTML("", elem_id="runs-owner-note")
    with gr.Row():
        confirm = gr.Checkbox(label=t("runs.yes_delete_this_run_and"), elem_id="runs-delete-confirm")
        delete = gr.Button(t("runs.delete_run"), variant="stop", elem_id="runs-delete")
    message = gr.HTML("", elem_id="runs-message")

    # The queue's order, for admins (the app shows this part to admins only; the handlers check).
    with gr.Column(visible=False, elem_id="runs-queue") as queue_panel:
        gr.Markdown(t("runs.queue_heading"))
        with gr.Row():
            queued = gr.Dropdown([], value=None, label=t("runs.queued_run"), elem_id="runs-queue-run", scale=3)
            labels = {"top": t("runs.move_top"), "up": t("runs.move_up"), "down": t("runs.move_down"), "bottom": t("runs.move_bottom")}
            move_buttons = {direction: gr.Button(labels[direction], size="sm", elem_id=f"runs-queue-{direction}", scale=1)
                            for direction in MOVES}
        queue_message = gr.HTML("", elem_id="runs-queue-message")

    def list_fn(statuses, task, owner, text, current_overlay, a, b, current):
        """The runs table (with filters), the run pickers and the queue."""
        frame, records = runs_frame(services, statuses, task, owner, text)
        choices = [run_choice(r) for r in services.jobs.list(limit=500)]
        ids = {c[1] for c in choices}
        keep = lambda value: value if value in ids else None  # noqa: E731
        return (frame, gr.update(choices=choices, value=[v for v in (current_overlay or []) if v in ids]),
                gr.update(choices=choices, value=keep(a)), gr.update(choices=choices, value=keep(b)),
                gr.update(choices=choices, value=keep(current) or (choices[0][1] if choices else None)),
                queue_choices(services))

    def overlay_fn(run_ids):
        """Train and validation loss of the selected runs on one chart."""
        chosen_ids = (run_ids or [])[:8]
        names = legend_names(services, chosen_ids)
        return charts.overlay_figure({names[run_id]: run_series(services, run_id) for run_id in chosen_ids})

    def diff_fn(a, b):
        """The settings in which two runs' configurations differ."""
        return config_diff_html(services, a, b)

    def ownership_fn(run_id, request: gr.Request = None):
        """Offer downloads and delete only for a run the user may change; say whose it is otherwise."""
        try:
            record = services.jobs.get(run_id) if run_id else None
        except StudioError:
            record = None
        mine = record is None or services.may_change(request, record.owner)
        note = "" if mine else messages_html([("info", t("runs.not_yours", owner=record.owner or t("services.no_owner_run")))])
        return (downloads_html(services, record and record.id, mine), gr.update(interactive=mine),
                gr.update(interactive=mine, value=False), note)

    def refresh_fn(statuses, task, owner, text, current_overlay, a, b, current, request: gr.Request = None):
        """The runs table and pickers, and the chosen run's downloads as they are now (a run that
        finished since has its model and predictions to download)."""
        listed = list_fn(statuses, task, owner, text, current_overlay, a, b, current)
        return (*listed, *ownership_fn(listed[4].get("value"), request))

    def pick_fn(event: gr.SelectData):
        """A run clicked in the table becomes the chosen run: its downloads and delete are below."""
        row = getattr(event, "row_value", None) or []
        return gr.update(value=row[0]) if row and row[0] else gr.update()

    def move_fn(run_id, direction, request):
        if not run_id:
            return queue_choices(services), messages_html([("error", t("runs.pick_a_queued_run"))])
        try:
            services.check_admin(request)
            position = services.jobs.move(run_id, direction)
        except StudioError as error:
            return queue_choices(services, run_id), error_html(error)
        return queue_choices(services, run_id), messages_html([("ok", t("runs.moved", run=run_id, position=position))])

    def mover(direction: str):
        def move(run_id, request: gr.Request = None):
            return move_fn(run_id, direction, request)

        move.__doc__ = f"Move a queued run {direction} (admins only)."
        return move

    def delete_fn(run_id, sure, statuses, task, owner, text, current_overlay, a, b, request: gr.Request = None):
        """Delete a finished run and its files (cancel an active run first)."""
        if not run_id:
            return (messages_html([("error", t("runs.pick_a_run"))]), gr.update(),
                    *list_fn(statuses, task, owner, text, current_overlay, a, b, None))
        if not sure:
            return (messages_html([("error", t("data.tick_to_delete"))]), gr.update(),
                    *list_fn(statuses, task, owner, text, current_overlay, a, b, run_id))
        try:
            services.check_may_change(request, services.jobs.get(run_id))
            run_dir = str(services.jobs.run_dir(run_id))
            services.jobs.delete(run_id)
            services.models.drop(run_dir)
            text_out = messages_html([("ok", t("runs.deleted", run=run_id))])
        except StudioError as error:
            text_out = error_html(error)
        return text_out, gr.update(value=False), *list_fn(statuses, task, owner, text, current_overlay, a, b, None)

    filters = [status_filter, task_filter, owner_filter, search]
    list_outputs = [table, overlay_runs, diff_a, diff_b, chosen, queued]
    list_inputs = [*filters, overlay_runs, diff_a, diff_b, chosen]
    ownership_outputs = [downloads, delete, confirm, owner_note]
    gr.on([refresh.click, status_filter.change, task_filter.change, search.submit, owner_filter.submit], list_fn,
          list_inputs, list_outputs, api_name="runs_list").then(ownership_fn, [chosen], ownership_outputs, api_visibility="private")
    table.select(pick_fn, None, [chosen], api_visibility="private")
    overlay_runs.change(overlay_fn, [overlay_runs], [overlay_plot], api_name="runs_overlay")
    gr.on([diff_a.change, diff_b.change], diff_fn, [diff_a, diff_b], [diff], api_name="runs_diff")
    chosen.change(ownership_fn, [chosen], ownership_outputs, api_visibility="private")
    delete.click(delete_fn, [chosen, confirm, *filters, overlay_runs, diff_a, diff_b], [message, confirm, *list_outputs],
                 api_name="runs_delete")
    for direction, button in move_buttons.items():
        button.click(mover(direction), [queued], [queued, queue_message], api_name=f"runs_queue_{direction}")
    return {"refresh": (refresh_fn, list_inputs, [*list_outputs, *ownership_outputs]), "admin_only": [queue_panel],
            "relabel": [[(list_fn, list_inputs, list_outputs)], [(overlay_fn, [overlay_runs], [overlay_plot])],
                        [(diff_fn, [diff_a, diff_b], [diff])]]}
