"""The Train tab's live view: the watched run's status, progress, charts and log, its Cancel and
Resume buttons, and the timer that keeps them up to date.

Every answer is a dict keyed by component (Gradio's way to update some outputs and leave the rest
as they are): a component left out of an answer is not touched in the page. A tick reads the
watched run's new events by byte offset (``JobManager.events``), folds them into the page's
``RunSeries`` and sends only what changed since that page's last answer; the timer switches itself
off when the run ends. ``live.PageRuns`` drops an answer about a run the page no longer watches.
"""

from __future__ import annotations

import html
import json
from typing import Any

import gradio as gr

from studio.errors import StudioError
from studio.runs.state import ACTIVE, CANCELLING, UNFINISHED
from studio.ui import charts, i18n, live, words
from studio.ui.common import duration, messages_html
from studio.ui.i18n import t
from studio.ui.services import Services

LOG_SHOWN = 40
RESUMABLE_SHOWN = ("interrupted", "failed", "cancelled")
"""Statuses whose run the Resume button continues."""

FOLLOW_LOG_JS = """() => {
  // The log box shows its newest line whenever lines are added, unless the reader scrolled up to
  // read older ones (scrolling back to the bottom follows again). Gradio's own autoscroll follows
  // only the first change after the box starts to scroll.
  const box = document.querySelector('#run-log textarea');
  if (!box) return;
  if (!box.dataset.follow) {
    box.dataset.follow = 'yes';
    box.addEventListener('scroll', () => {
      box.dataset.follow = box.scrollTop + box.clientHeight >= box.scrollHeight - 8 ? 'yes' : 'no';
    });
  }
  const follow = () => { if (box.dataset.follow === 'yes') box.scrollTop = box.scrollHeight; };
  requestAnimationFrame(() => requestAnimationFrame(follow));
}"""


def new_watch(run_id: str | None) -> dict[str, Any]:
    return {"run_id": run_id, "series": charts.RunSeries(run_id) if run_id else None}


# ---- what the view shows ------------------------------------------------------------------------
def headline_split(services: Services, record, series: charts.RunSeries | None) -> str | None:
    """The split the run's headline score was measured on: the worker reports the test split's
    score, else the validation split's (``Status(status="completed", headline=...)``). Read from
    the run's final scores, else from its metrics.json; None when neither says."""
    if getattr(record, "metric_value", None) is None:
        return None
    final = series.final if series is not None else {}
    for split in ("test", "validation"):
        if split in final:
            return split
    try:
        metrics = json.loads(services.jobs.folder(record.id).metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError, StudioError):
        return None
    if not isinstance(metrics, dict):
        return None
    return next((split for split in ("test", "validation") if isinstance(metrics.get(split), dict)), None)


def headline_text(record, split: str | None) -> str:
    """The run's headline score with its split: 'test accuracy 0.9000'."""
    value = record.metric_value
    name = words.metric(record.metric_name) if record.metric_name else ""
    if split and name:
        name = t("charts.split_metric", split=words.split(split), metric=name)
    shown = f"{value:.4f}" if isinstance(value, float) else str(value)
    return f"{name} {shown}".strip()


def status_html(record, series: charts.RunSeries | None, split: str | None = None) -> str:
    """The status line of the watched run (``split``: the one its headline score is of)."""
    if record is None:
        return messages_html([("info", t("train.no_run_yet"))])
    title = html.escape(record.name or record.id)
    status = record.status
    bits = [f"<b>{title}</b> <code>{html.escape(record.id)}</code>",
            t("train.status_is", status=f"<b>{html.escape(words.status(status))}</b>")]
    if status == CANCELLING:
        bits.append(html.escape(t("train.cancelling_note")))
    if status == "queued" and record.position:
        ahead = record.position - 1
        if not ahead:
            bits.append(t("train.queue_next", position=record.position))
        else:
            bits.append(t("train.queue_ahead", position=record.position, ahead=ahead) if ahead != 1
                        else t("train.queue_one_ahead", position=record.position))
    if record.devices:
        bits.append(html.escape(t("train.on_devices", devices=", ".join(record.devices))))
    if record.metric_value is not None:
        bits.append(html.escape(headline_text(record, split)))
    out = '<div class="studio-status">' + " · ".join(bits) + "</div>"
    facts = []
    if series is not None and series.settings:
        facts.append(t("train.chosen_settings", settings=words.speed_settings(series.settings)))
    if series is not None and series.memory:
        facts.append(t("train.memory_used", memory=series.memory_summary()))
    if facts:
        out += '<div class="studio-facts" id="run-facts">' + "<br>".join(html.escape(f) for f in facts) + "</div>"
    if status == "failed" or record.error_message:
        # The worker's own message is English (it is also in events.jsonl and the CLI): framed.
        level = "error" if status == "failed" else "warning"
        reason = record.error_message or (series.error if series else None)
        text = t("train.run_error", message=reason) if reason else t("train.run_failed")
        if record.error_hint:
            text += "\n" + t("train.run_hint", hint=record.error_hint)
        out += messages_html([(level, text)])
    elif status == "completed":
        out += messages_html([("ok", t("train.finished"))])
    elif status == "cancelled":
        out += messages_html([("info", t("train.cancelled"))])
    elif status == "interrupted":
        out += messages_html([("warning", t("train.interrupted"))])
    return out


def phase_text(phase) -> str:
    """Work outside the training steps in words: 'scoring test split 120/300'."""
    done, total = phase.done or 0, phase.total or 0
    if phase.phase != "scoring":
        return t("train.phase_other", phase=phase.phase or "", done=done, total=total)
    if not phase.split:
        return t("train.phase_scoring_plain", done=done, total=total)
    split = words.split(phase.split)
    if phase.part:
        part = {"loss": t("train.phase_part_loss"), "predictions": t("train.phase_part_predictions")}.get(phase.part, phase.part)
        return t("train.phase_scoring_part", split=split, part=part, done=done, total=total)
    return t("train.phase_scoring", split=split, done=done, total=total)


def _eta(seconds: float) -> str:
    return t("train.progress_eta", eta=duration(seconds) or t("train.progress_under_a_second"))


def progress_html(record, series: charts.RunSeries | None) -> str:
    """The progress bar: the training steps, or while the run is at work outside them (scoring a
    split after training), that work's own count and ETA."""
    if record is None or series is None:
        return ""
    phase = series.phase
    total = series.total or record.total_steps
    step = series.step if series.step is not None else record.step
    if record.status in ACTIVE and phase is not None and phase.phase != "evaluating":
        share = min(1.0, (phase.done or 0) / phase.total) if phase.total else 0.0
        parts = [phase_text(phase)]
        if phase.eta_s is not None:
            parts.append(_eta(phase.eta_s))
        label = " · ".join(parts)
    elif not total:
        label = {"queued": t("train.progress_queued"), "starting": t("train.progress_starting")}.get(
            record.status, words.status(record.status))
        share = 0.0
    else:
        step = step or 0
        share = min(1.0, step / total) if total else 0.0
        parts = [t("train.progress_steps", step=step, total=total, share=f"{share:.0%}")]
        if series.epoch is not None:
            parts.append(t("train.progress_epoch", epoch=f"{series.epoch:.2f}"))
        if record.status == "running" and series.eta_s is not None:
            parts.append(_eta(series.eta_s))
        if series.elapsed_s:
            parts.append(t("train.progress_elapsed", elapsed=duration(series.elapsed_s)))
        label = " · ".join(parts)
    if record.status == "completed":
        share, label = 1.0, t("train.progress_done_after", label=label) if total else t("train.progress_done")
    return (f'<div class="studio-progress" id="run-progress-bar" data-share="{share:.3f}">'
            f'<div class="bar" style="width:{share * 100:.1f}%"></div><div class="text">{html.escape(label)}</div></div>')


def log_text(services: Services, record, series: charts.RunSeries | None) -> str:
    lines = list(series.log[-LOG_SHOWN:]) if series else []
    if record is not None and record.status in ("failed", "interrupted"):
        try:
            tail = services.jobs.folder(record.id).log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        except OSError:
            tail = []
        if tail:
            lines += ["", t("train.log_tail")] + tail
    # Every member may watch any run: should a library ever print a hub token, the page must not show it.
    from studio.credentials import redact

    return redact("\n".join(lines))


# ---- the view -------------------------------------------------------------------------------------
class LiveView:
    """The live view's components and the answers that update them, keyed by component.

    Built in two parts where the tab places them: ``buttons()`` (Cancel, Resume: beside the run
    picker) and ``panel()`` (status, progress, charts, log, timer)."""

    def __init__(self, services: Services, watch_state: gr.State):
        self.services = services
        self.watch_state = watch_state
        self.watchers = live.Watchers()
        self.page_runs = live.PageRuns()

    def buttons(self) -> None:
        self.cancel = gr.Button(t("train.cancel_run"), variant="stop", interactive=False, elem_id="train-cancel", scale=1)
        self.resume = gr.Button(t("train.resume_run"), interactive=False, elem_id="train-resume", scale=1)

    def panel(self) -> None:
        empty = charts.RunSeries("")
        self.status = gr.HTML(status_html(None, None), elem_id="run-status")
        self.progress = gr.HTML("", elem_id="run-progress")
        plots = {}
        with gr.Row():
            plots["loss"] = i18n.redraw(gr.Plot(charts.loss_figure(empty), show_label=False, elem_id="loss-chart"),
                                        lambda: charts.loss_figure(charts.RunSeries("")))
            plots["metric"] = i18n.redraw(gr.Plot(charts.metric_figure(empty), show_label=False, elem_id="metric-chart"),
                                          lambda: charts.metric_figure(charts.RunSeries("")))
        with gr.Row():
            plots["lr"] = i18n.redraw(gr.Plot(charts.lr_figure(empty), show_label=False, elem_id="lr-chart"),
                                      lambda: charts.lr_figure(charts.RunSeries("")))
            plots["throughput"] = i18n.redraw(gr.Plot(charts.throughput_figure(empty), show_label=False,
                                                      elem_id="throughput-chart"),
                                              lambda: charts.throughput_figure(charts.RunSeries("")))
        self.plots = [plots[chart] for chart in charts.LIVE_CHARTS]
        self.log = gr.Textbox(label=t("train.log"), lines=8, max_lines=16, interactive=False, elem_id="run-log", autoscroll=True)
        self.log.change(None, None, None, js=FOLLOW_LOG_JS, api_visibility="private")
        self.timer = gr.Timer(live.TICK_S, active=False)

    @property
    def outputs(self) -> list[Any]:
        """Every component an answer may update, in a fixed order (a client gets the values so)."""
        return [self.watch_state, self.status, self.progress, *self.plots, self.log, self.cancel, self.resume, self.timer]

    # ---- answers ------------------------------------------------------------------------------
    def _nothing(self, watch: dict[str, Any], message: str, figures: bool) -> dict[Any, Any]:
        answer = {self.watch_state: watch, self.status: message, self.progress: "", self.log: "",
                  self.cancel: gr.update(interactive=False), self.resume: gr.update(interactive=False),
                  self.timer: gr.Timer(active=False)}
        if figures:
            answer.update(zip(self.plots, charts.live_figures(charts.RunSeries(""))))
        return answer

    def answer(self, watch: dict[str, Any] | None, force: bool = False, request: gr.Request | None = None) -> dict[Any, Any]:
        """Read the watched run's new events and answer the live view. Cancel and resume are
        offered only for a run the request's user may change (its owner, or an admin).

        A tick sends only what changed since this page's last answer (``force`` sends all): the
        progress line moves every tick, a chart only when its data grew, the log now and then."""
        services = self.services
        watch = watch or new_watch(None)
        run_id = watch.get("run_id")
        if not run_id:
            return self._nothing(watch, status_html(None, None), figures=force)
        try:
            # A tick may show a record a fraction of a tick old; a click shows the latest.
            record = services.jobs.get(run_id) if force else services.jobs.get_recent(run_id, max_age_s=live.TICK_S / 2)
        except StudioError:
            return self._nothing(new_watch(None), messages_html([("info", t("train.run_gone", run=run_id))]), figures=True)
        series: charts.RunSeries = watch.get("series") or charts.RunSeries(run_id)
        sizes = charts.live_sizes(series)
        events, offset = services.jobs.events(run_id, series.offset)
        series.feed(events)
        series.offset = offset
        if record.status not in UNFINISHED:
            series.status = record.status
        running = record.status in UNFINISHED
        mine = services.may_change(request, record.owner)
        tick = self.watchers.tick(getattr(request, "session_hash", None)) if running else live.TICK_S
        shown = {"status": status_html(record, series, headline_split(services, record, series)),
                 "progress": progress_html(record, series),
                 "log": log_text(services, record, series),
                 # A run already cancelling is not cancelled twice: it is saving its checkpoint.
                 "cancel": running and mine and record.status != CANCELLING,
                 "resume": mine and record.status in RESUMABLE_SHOWN,
                 "timer": (tick, running)}
        sent = None if force else watch.get("sent")
        sent = sent if isinstance(sent, dict) else None
        changed = {name for name, value in shown.items() if sent is None or sent.get(name) != value}
        answer: dict[Any, Any] = {self.watch_state: {"run_id": run_id, "series": series, "sent": shown}}
        for plot, chart, new, old in zip(self.plots, charts.LIVE_CHARTS, charts.live_sizes(series), sizes):
            if force or new != old:
                answer[plot] = charts.live_figure(series, chart)
        for name, component in (("status", self.status), ("progress", self.progress), ("log", self.log)):
            if name in changed:
                answer[component] = shown[name]
        for name, button in (("cancel", self.cancel), ("resume", self.resume)):
            if name in changed:
                answer[button] = gr.update(interactive=shown[name])
        if "timer" in changed:
            answer[self.timer] = gr.Timer(value=tick, active=running)
        return answer

    def poll(self, watch: dict[str, Any] | None, request: gr.Request = None):
        """One timer tick: the watched run's new events, folded into the charts."""
        answer = self.answer(watch, request=request)
        if self.page_runs.is_stale(getattr(request, "session_hash", None), (watch or {}).get("run_id")):
            return gr.skip()  # the page chose another run while this was read: nothing changes
        return answer

    def choose(self, page: str | None, run_id: str | None) -> None:
        """Note the run ``page`` watches from now on (a launch, a pick, a reload's attach)."""
        self.page_runs.choose(page, run_id)

    def chosen(self, page: str | None) -> str | None:
        return self.page_runs.chosen(page)

    def is_stale(self, page: str | None, run_id: str | None) -> bool:
        """Whether an answer about ``run_id`` is for a run ``page`` no longer watches."""
        return self.page_runs.is_stale(page, run_id)
