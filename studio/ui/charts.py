"""Live training charts: a run's series (folded from its events by ``studio.runs.state``), drawn with plotly.

A browser watching a run keeps one ``RunSeries`` in its session state and feeds it only the
events after the byte offset it reached last tick (``JobManager.events(run_id, offset)``), so a
tick costs the new lines, not the whole log.
"""

from __future__ import annotations

import functools
import html
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable

from studio.runs.event_types import Checkpoint, Error, Eval, Event, Log, Memory, Settings, Status, parse
from studio.runs.state import Note, RunState, scores_of
from studio.ui import i18n, words
from studio.ui.i18n import t

LOG_LINES = 200


@dataclass
class RunSeries:
    """What a page shows of a run: a view over the run's ``RunState`` (the one reducer of its
    events), with the state's notes rendered as the log's lines in the page's language."""

    run_id: str
    offset: int = 0
    """Bytes of events.jsonl fed so far (the caller keeps it: ``JobManager.events`` reads after it)."""
    state: RunState = field(default_factory=RunState)
    _log: tuple[tuple[Any, ...], list[str]] | None = field(default=None, repr=False, compare=False)

    def feed(self, events: Iterable[Event | dict[str, Any]]) -> bool:
        """Fold ``events`` (typed, or the lines as read) in; True when a chart's data changed."""
        before = live_sizes(self)
        for event in events:
            self.state.apply(event if isinstance(event, Event) else parse(event))
        return live_sizes(self) != before

    # The series and the progress, as the state has them.
    train_loss = property(lambda self: self.state.train_loss)
    eval_loss = property(lambda self: self.state.eval_loss)
    eval_metrics = property(lambda self: self.state.eval_metrics)
    learning_rate = property(lambda self: self.state.learning_rate)
    throughput = property(lambda self: self.state.throughput)
    final = property(lambda self: self.state.final)
    """Scores of the finished model per split (the worker's last eval events)."""
    scoring = property(lambda self: self.state.scoring)
    step = property(lambda self: self.state.step)
    total = property(lambda self: self.state.total_steps)
    epoch = property(lambda self: self.state.epoch)
    eta_s = property(lambda self: self.state.eta_s)
    elapsed_s = property(lambda self: self.state.elapsed_s)
    settings = property(lambda self: self.state.settings)
    """What the worker chose for the machine (its ``settings`` event)."""
    phase = property(lambda self: self.state.phase)
    """Work outside the training steps going on now (scoring a split), with its progress."""

    @property
    def status(self) -> str | None:
        return self.state.status

    @status.setter
    def status(self, value: str | None) -> None:
        # The run index knows better once the worker is gone without a last word (interrupted).
        self.state.status = value

    @property
    def error(self) -> str | None:
        """The attempt's error message (English, as in events.jsonl); the page frames it."""
        if self.state.error is None:
            return None
        return str(self.state.error.message or t("train.run_failed"))

    @property
    def memory(self) -> dict[str, Any] | None:
        """The measured peak memory beside the estimate (the ``memory`` event after training)."""
        return self.state.memory.fields() if self.state.memory else None

    def memory_summary(self) -> str:
        from studio.training.speed import MEASURED_GPU

        m = self.memory or {}
        return words.memory(m.get("peak_gib"), m.get("estimated_gib"), m.get("measured") == MEASURED_GPU)

    @property
    def log(self) -> list[str]:
        """The run's latest log lines, in the page's language (drawn again only when they change)."""
        key = (self.state.noted, i18n.current_lang())
        if self._log is None or self._log[0] != key:
            lines = [line for note in self.state.notes for line in _LINES[type(note.event)](self, note)]
            self._log = (key, lines[-LOG_LINES:])
        return self._log[1]

    @property
    def points(self) -> int:
        return len(self.train_loss) + len(self.eval_loss)


# ---- log lines: what each kind of note reads as on the page ---------------------------------------
def _log_lines(series: RunSeries, note: Note) -> list[str]:
    e: Log = note.event  # type: ignore[assignment]
    lines = [t("charts.log_message", step=note.step, message=e.message)] if e.message else []
    if e.loss is not None:
        lines.append(t("charts.log_loss", step=note.step, loss=f"{e.loss:.4f}", lr=f"{e.learning_rate or 0:.2e}"))
    elif e.learning_rate is not None:
        lines.append(t("charts.log_message", step=note.step, message=_short(e)))
    return lines


def _eval_lines(series: RunSeries, note: Note) -> list[str]:
    e: Eval = note.event  # type: ignore[assignment]
    metrics = e.metrics or {}
    shown = [f"{words.metric(k)} {v:.4f}" for k, v in list(scores_of(metrics).items())[:4]]
    loss = metrics.get("loss")
    if isinstance(loss, (int, float)) and math.isfinite(loss):
        shown.append(f"{words.metric('loss')} {loss:.4f}")
    return [t("charts.log_eval", step=note.step, split=words.split(e.split or "validation"),
              scores=t("words.list_separator").join(shown))]


def _status_lines(series: RunSeries, note: Note) -> list[str]:
    e: Status = note.event  # type: ignore[assignment]
    status = words.status(e.status)
    lines = [t("charts.log_status_reason", status=status, reason=e.reason) if e.reason else t("charts.log_status", status=status)]
    if e.status == "running" and e.total_steps:
        lines.append(t("charts.log_training_on", device=e.device, examples=e.train_examples, steps=e.total_steps))
    return lines


def _error_lines(series: RunSeries, note: Note) -> list[str]:
    e: Error = note.event  # type: ignore[assignment]
    message = str(e.message or t("train.run_failed"))
    return [t("charts.log_error", message=message) + ("\n  " + t("train.run_hint", hint=e.hint) if e.hint else "")]


_LINES = {
    Log: _log_lines,
    Eval: _eval_lines,
    Status: _status_lines,
    Error: _error_lines,
    Settings: lambda series, note: [t("charts.log_settings", settings=words.speed_settings(note.event.values))],
    Memory: lambda series, note: [t("charts.log_memory", memory=series.memory_summary())],
    Checkpoint: lambda series, note: [t("charts.log_checkpoint", step=note.step)],
}
"""A line renderer per kind of note (the state notes every kind but progress and summary)."""


def _short(e: Log) -> str:
    return ", ".join(f"{k} {v}" for k, v in e.values.items())[:200]


# ---- figures --------------------------------------------------------------------------------------
# Charts are built as plain plotly specs and wrapped without validation. The live charts are
# redrawn on every tick of every open Train tab, and plotly's validated path (update_layout with a
# named template) cost ~25 ms a chart: with a dozen browsers watching, most of a CPU taken from
# the training next door (and a third of a second of the server's start for the Data tab's empty
# charts). The figures are the same; a unit test checks every spec against plotly's validation.
@functools.lru_cache(maxsize=1)
def _white_template() -> dict[str, Any]:
    import plotly.io as pio

    return pio.templates["plotly_white"].to_plotly_json()


def plot_text(value: Any) -> str:
    """Text for a chart's title, axis, legend or category label: plotly reads a few HTML tags in
    them (bold, links...) and decodes entities, so a run's name, a label value or a column's name
    is escaped here and shown as it was typed."""
    return html.escape(str(value), quote=False)


def _trace(points: list[tuple[int, float]], name: str, dash: str | None = None, markers: bool = True) -> dict[str, Any] | None:
    if not points:
        return None
    xs, ys = zip(*points)
    # Not clipped at the axes: a point at the last step or at a score of 1 sits on the chart's edge.
    trace = {"type": "scatter", "x": list(xs), "y": list(ys), "name": plot_text(name), "mode": "lines+markers" if markers else "lines",
             "marker": {"size": 5}, "cliponaxis": False}
    if dash:
        trace["line"] = {"dash": dash}
    return trace


def _chart(title: str, y_title: str, traces: list[dict[str, Any] | None], note: str | None = None, height: int = 280,
           x_title: str | None = None, **layout_extra: Any):
    """A chart of ``traces`` (None entries skipped); ``note`` in the middle of an empty one. The
    titles and the note are plain text (escaped here); traces escape their own names."""
    import plotly.graph_objects as go

    layout: dict[str, Any] = {
        "title": {"text": plot_text(title), "x": 0.02, "font": {"size": 14}}, "template": _white_template(), "height": height,
        "margin": {"l": 50, "r": 10, "t": 40, "b": 40}, "xaxis": {"title": {"text": plot_text(x_title or t("charts.step"))}},
        "yaxis": {"title": {"text": plot_text(y_title or "")}},
        # Below the chart: above it, the legend sat under the chart's toolbar and a long name ran into the title.
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.25, "xanchor": "left", "x": 0.0, "font": {"size": 11}},
        "uirevision": "keep",
    }
    for name, value in layout_extra.items():
        layout[name] = {**layout[name], **value} if isinstance(layout.get(name), dict) else value
    if note:
        layout["annotations"] = layout.get("annotations", []) + [{"text": plot_text(note), "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
                                  "font": {"color": "#888"}}]
        layout["xaxis"]["showticklabels"] = False
        layout["yaxis"]["showticklabels"] = False
    return go.Figure({"data": [trace for trace in traces if trace], "layout": layout}, _validate=False)


SHARES = ("accuracy", "f1", "precision", "recall", "exact_match", "rouge")
"""Scores that are shares of the examples (0 to 1), by a part of their name."""


def is_share(metric: str) -> bool:
    return any(part in metric for part in SHARES)


def run_steps(series: RunSeries) -> dict[str, Any]:
    """The x axis of a live chart: the whole run (0 to its total steps) once the total is known,
    so a run's first points sit where they are in the run, not spread over the whole width."""
    total = series.total
    return {"xaxis": {"range": [0, total]}} if isinstance(total, (int, float)) and total > 0 else {}


def loss_figure(series: RunSeries):
    return _chart(t("charts.loss"), t("charts.loss_axis"),
                  [_trace(series.train_loss, t("charts.train_loss")), _trace(series.eval_loss, t("charts.validation_loss"), dash="dot")],
                  None if series.points else t("charts.waiting_for_first_steps"), **run_steps(series))


def metric_figure(series: RunSeries):
    shown = list(series.eval_metrics.items())[:4]
    extra = run_steps(series)
    if shown and all(is_share(name) for name, _ in shown):
        # A share's axis is 0 to 1: one point of 0.81 drew an axis from 0.8099 to 0.81.
        extra["yaxis"] = {"range": [0, 1]}
    # The split in every trace's name: the Train tab's status line gives the test split's score.
    return _chart(t("charts.validation_metrics"), t("charts.score"),
                  [_trace(points, t("charts.split_metric", split=words.split("validation"), metric=words.metric(name)))
                   for name, points in shown],
                  None if series.eval_metrics else t("charts.after_first_evaluation"), **extra)


def lr_figure(series: RunSeries):
    return _chart(t("charts.learning_rate"), t("charts.learning_rate_axis"),
                  [_trace(series.learning_rate, t("charts.learning_rate_axis"), markers=False)],
                  None if series.learning_rate else t("charts.waiting_for_first_steps"), **run_steps(series))


def throughput_figure(series: RunSeries):
    return _chart(t("charts.throughput"), t("charts.steps_per_second"),
                  [_trace(series.throughput, t("charts.steps_per_second"), markers=False)],
                  None if series.throughput else t("charts.measured_while_training"), **run_steps(series))


_LIVE_CACHE_SIZE = 64
_live_cache: "OrderedDict[tuple[Any, ...], Any]" = OrderedDict()
_live_lock = threading.Lock()

LIVE_CHARTS = ("loss", "metric", "lr", "throughput")
"""The Train tab's live charts, in the order of its plots."""


def live_sizes(series: RunSeries) -> tuple[tuple[int, ...], ...]:
    """How much data each live chart holds. A run's events only grow, so two pages with the same
    sizes for a chart draw the same chart; a tick that changed a size redraws that chart only
    (the throughput point of every progress event does not redraw the loss chart)."""
    return ((len(series.train_loss), len(series.eval_loss)),
            tuple(len(points) for points in list(series.eval_metrics.values())[:4]),
            (len(series.learning_rate),),
            (len(series.throughput),))


def live_figure(series: RunSeries, chart: str) -> Any:
    """One live chart of a watched run, as a Gradio plot payload (JSON already encoded).

    Every page watching a run draws the same charts from the same events, and each asks every
    tick; drawn per page, twenty pages cost twenty drawings a tick. A chart depends only on the
    run, on how much data it holds (``live_sizes``) and on the page's language, so it is drawn
    once per (run, chart, sizes, language) and shared.
    """
    from gradio.components.plot import PlotData

    index = LIVE_CHARTS.index(chart)
    key = (series.run_id, chart, live_sizes(series)[index], series.total, i18n.current_lang())
    if series.run_id:
        with _live_lock:
            if key in _live_cache:
                _live_cache.move_to_end(key)
                return _live_cache[key]
    draw = (loss_figure, metric_figure, lr_figure, throughput_figure)[index]
    drawn = PlotData(type="plotly", plot=draw(series).to_json())
    if series.run_id:
        with _live_lock:
            _live_cache[key] = drawn
            while len(_live_cache) > _LIVE_CACHE_SIZE:
                _live_cache.popitem(last=False)
    return drawn


def live_figures(series: RunSeries) -> list[Any]:
    """Every live chart of a watched run (``live_figure`` of each)."""
    return [live_figure(series, chart) for chart in LIVE_CHARTS]


def overlay_figure(runs: dict[str, RunSeries]):
    """Train (solid) and validation (dotted) loss of several runs on one chart, each under the
    name it is given (the run's name, see ``runs_tab.legend_names``)."""
    traces = []
    for name, series in runs.items():
        traces += [_trace(series.train_loss, t("charts.run_train", run=name), markers=False),
                   _trace(series.eval_loss, t("charts.run_validation", run=name), dash="dot")]
    return _chart(t("charts.loss_of_selected_runs"), t("charts.loss_axis"), traces,
                  None if runs else t("charts.select_runs_to_compare"), height=360)


def bar_figure(counts: dict[str, int | float], title: str, x_title: str, y_title: str | None = None, height: int = 300):
    y_title = y_title or t("data.chart_rows")
    bars = {"type": "bar", "x": [plot_text(k) for k in counts], "y": list(counts.values()), "marker": {"color": "#5b8def"}}
    return _chart(title, y_title, [bars if counts else None], None if counts else t("charts.nothing_to_show"), height,
                  x_title=x_title)


def heatmap_figure(labels: list[str], matrix: list[list[int]], title: str | None = None):
    title = title or t("charts.confusion_matrix")
    import plotly.colors

    labels = [plot_text(label) for label in labels]  # the data's own label values
    size = max(320, min(720, 60 * len(labels) + 160))
    cells = {"type": "heatmap", "z": matrix, "x": labels, "y": labels, "colorscale": plotly.colors.get_colorscale("Blues"),
             "text": matrix, "texttemplate": "%{text}",
             # Plotly's own %{...} fields inside a translated text: they pass through t() as they are.
             "hovertemplate": t("charts.heatmap_hover", gold="%{y}", predicted="%{x}", count="%{z}") + "<extra></extra>"}
    return _chart(title, t("charts.gold"), [cells], None, size, x_title=t("charts.predicted"), yaxis={"autorange": "reversed"})


def histogram_figure(values: dict[str, list[int]], limit: int | None, title: str, x_title: str):
    bars = [{"type": "histogram", "x": data, "name": plot_text(name), "opacity": 0.7, "nbinsx": 40} for name, data in values.items() if data]
    extra: dict[str, Any] = {"barmode": "overlay"}
    if limit:
        # What plotly's add_vline(annotation_position="top") makes: a dashed line and its label above.
        extra["shapes"] = [{"type": "line", "x0": limit, "x1": limit, "xref": "x", "y0": 0, "y1": 1, "yref": "y domain",
                            "line": {"color": "#d62728", "dash": "dash"}}]
        extra["annotations"] = [{"text": plot_text(t("charts.max_length", limit=limit)), "showarrow": False, "x": limit, "xref": "x",
                                 "xanchor": "center", "y": 1, "yref": "y domain", "yanchor": "bottom"}]
    return _chart(title, t("charts.examples"), bars, None if any(values.values()) else t("charts.nothing_to_show"), 300,
                  x_title=x_title, **extra)
