"""Live training charts: fold a run's events into series, draw them with plotly.

A browser watching a run keeps one ``RunSeries`` in its session state and feeds it only the
events after the byte offset it reached last tick (``JobManager.events(run_id, offset)``), so a
tick costs the new lines, not the whole log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable
from studio.ui.i18n import t

# Keys of an eval event's metrics that are bookkeeping, not scores.
_NOT_METRICS = {"loss", "runtime", "samples_per_second", "steps_per_second", "epoch", "examples"}
LOG_LINES = 200


@dataclass
class RunSeries:
    run_id: str
    offset: int = 0
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    eval_loss: list[tuple[int, float]] = field(default_factory=list)
    eval_metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    learning_rate: list[tuple[int, float]] = field(default_factory=list)
    throughput: list[tuple[int, float]] = field(default_factory=list)
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    """Scores of the finished model per split (the worker's last eval events)."""
    step: int | None = None
    total: int | None = None
    epoch: float | None = None
    eta_s: float | None = None
    elapsed_s: float | None = None
    status: str | None = None
    error: str | None = None
    log: list[str] = field(default_factory=list)
    scoring: bool = False
    """Training is over: evaluations from here score the final model (shown as numbers, not drawn)."""
    version: int = 0
    """Bumped whenever a chart's data changed, so a tick with nothing new redraws nothing."""

    def feed(self, events: Iterable[dict[str, Any]]) -> bool:
        changed = False
        for event in events:
            changed |= self._feed(event)
        if changed:
            self.version += 1
        return changed

    def _feed(self, e: dict[str, Any]) -> bool:
        kind = e.get("kind")
        step = e.get("step") if isinstance(e.get("step"), int) else self.step or 0
        if kind == "log":
            if e.get("message"):
                self._line(f"step {step}: {e['message']}")
            drew = False
            if _num(e.get("loss")):
                self.train_loss.append((step, float(e["loss"])))
                drew = True
            if _num(e.get("learning_rate")):
                self.learning_rate.append((step, float(e["learning_rate"])))
                drew = True
            if drew:
                self._line(f"step {step}: loss {e.get('loss', float('nan')):.4f}, lr {e.get('learning_rate', 0):.2e}"
                           if _num(e.get("loss")) else f"step {step}: {_short(e)}")
            return drew
        if kind == "progress":
            self.step = e.get("step", self.step)
            self.total = e.get("total") or self.total
            self.epoch = e.get("epoch", self.epoch)
            self.eta_s = e.get("eta_s")
            self.elapsed_s = e.get("elapsed_s", self.elapsed_s)
            if _num(e.get("steps_per_s")) and isinstance(e.get("step"), int):
                self.throughput.append((e["step"], float(e["steps_per_s"])))
                return True
            return False
        if kind == "eval":
            metrics = e.get("metrics") or {}
            split = e.get("split", "validation")
            scores = {k: float(v) for k, v in metrics.items() if k not in _NOT_METRICS and _num(v)}
            self._line(f"step {step}: {split} " + ", ".join(f"{k} {v:.4f}" for k, v in list(scores.items())[:4])
                       + (f", loss {metrics['loss']:.4f}" if _num(metrics.get("loss")) else ""))
            if self.status in ("running", "starting") and split == "validation" and not self.scoring:
                if _num(metrics.get("loss")):
                    self.eval_loss.append((step, float(metrics["loss"])))
                for name, value in scores.items():
                    self.eval_metrics.setdefault(name, []).append((step, value))
                return True
            self.final[split] = scores
            return False
        if kind == "status":
            self.status = e.get("status")
            if self.status == "starting":
                self.scoring = False
            detail = e.get("reason") or ""
            self._line(f"status: {self.status}" + (f" ({detail})" if detail else ""))
            if self.status == "running" and e.get("total_steps"):
                self.total = e["total_steps"]
                self._line(f"training on {e.get('device')}: {e.get('train_examples')} examples, {e.get('total_steps')} steps")
            return False
        if kind == "error":
            self.error = str(e.get("message") or "the run failed")
            hint = e.get("hint")
            self._line(f"error: {self.error}" + (f"\n  hint: {hint}" if hint else ""))
            return False
        if kind == "checkpoint":
            self._line(f"step {step}: checkpoint saved")
        if kind == "summary":
            self.scoring = True  # training is over; evaluations from here score the final model
        return False

    def _line(self, text: str) -> None:
        self.log.append(text)
        if len(self.log) > LOG_LINES:
            del self.log[: len(self.log) - LOG_LINES]

    @property
    def points(self) -> int:
        return len(self.train_loss) + len(self.eval_loss)


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _short(e: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in e.items() if k not in ("t", "kind", "step"))[:200]


# ---- figures --------------------------------------------------------------------------------------
def _figure(title: str, y_title: str, height: int = 280):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(
        title={"text": title, "x": 0.02, "font": {"size": 14}}, template="plotly_white", height=height,
        margin={"l": 50, "r": 10, "t": 40, "b": 40}, xaxis_title=t("charts.step"), yaxis_title=y_title,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0, "font": {"size": 11}},
        uirevision="keep",
    )
    return fig


def _line(fig, points: list[tuple[int, float]], name: str, dash: str | None = None, markers: bool = True) -> None:
    import plotly.graph_objects as go

    if not points:
        return
    xs, ys = zip(*points)
    fig.add_trace(go.Scatter(x=list(xs), y=list(ys), name=name, mode="lines+markers" if markers else "lines",
                             line={"dash": dash} if dash else None, marker={"size": 5}))


def _empty_note(fig, text: str) -> None:
    fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font={"color": "#888"})
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)


def loss_figure(series: RunSeries):
    fig = _figure(t("charts.loss"), t("charts.loss_axis"))
    _line(fig, series.train_loss, t("charts.train_loss"))
    _line(fig, series.eval_loss, t("charts.validation_loss"), dash="dot")
    if not series.points:
        _empty_note(fig, t("charts.waiting_for_first_steps"))
    return fig


def metric_figure(series: RunSeries):
    fig = _figure(t("charts.validation_metrics"), t("charts.score"))
    for name, points in list(series.eval_metrics.items())[:4]:
        _line(fig, points, name)
    if not series.eval_metrics:
        _empty_note(fig, t("charts.after_first_evaluation"))
    return fig


def lr_figure(series: RunSeries):
    fig = _figure(t("charts.learning_rate"), t("charts.learning_rate_axis"))
    _line(fig, series.learning_rate, t("charts.learning_rate_axis"), markers=False)
    if not series.learning_rate:
        _empty_note(fig, t("charts.waiting_for_first_steps"))
    return fig


def throughput_figure(series: RunSeries):
    fig = _figure(t("charts.throughput"), t("charts.steps_per_second"))
    _line(fig, series.throughput, "steps/s", markers=False)
    if not series.throughput:
        _empty_note(fig, t("charts.measured_while_training"))
    return fig


def overlay_figure(runs: dict[str, RunSeries]):
    """Train (solid) and validation (dotted) loss of several runs on one chart."""
    fig = _figure(t("charts.loss_of_selected_runs"), t("charts.loss_axis"), height=360)
    for name, series in runs.items():
        _line(fig, series.train_loss, f"{name} train", markers=False)
        _line(fig, series.eval_loss, f"{name} validation", dash="dot")
    if not runs:
        _empty_note(fig, t("charts.select_runs_to_compare"))
    return fig


def bar_figure(counts: dict[str, int | float], title: str, x_title: str, y_title: str = "rows", height: int = 300):
    import plotly.graph_objects as go

    fig = _figure(title, y_title, height)
    fig.update_layout(xaxis_title=x_title)
    if counts:
        fig.add_trace(go.Bar(x=[str(k) for k in counts], y=list(counts.values()), marker={"color": "#5b8def"}))
    else:
        _empty_note(fig, t("charts.nothing_to_show"))
    return fig


def heatmap_figure(labels: list[str], matrix: list[list[int]], title: str = "Confusion matrix"):
    import plotly.graph_objects as go

    labels = [str(label) for label in labels]
    size = max(320, min(720, 60 * len(labels) + 160))
    fig = _figure(title, t("charts.gold"), size)
    fig.update_layout(xaxis_title=t("charts.predicted"), yaxis={"autorange": "reversed"})
    fig.add_trace(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Blues", text=matrix, texttemplate="%{text}",
                             hovertemplate="gold %{y}<br>predicted %{x}<br>%{z} example(s)<extra></extra>"))
    return fig


def histogram_figure(values: dict[str, list[int]], limit: int | None, title: str, x_title: str):
    import plotly.graph_objects as go

    fig = _figure(title, t("charts.examples"), 300)
    fig.update_layout(xaxis_title=x_title, barmode="overlay")
    for name, data in values.items():
        if data:
            fig.add_trace(go.Histogram(x=data, name=name, opacity=0.7, nbinsx=40))
    if limit:
        fig.add_vline(x=limit, line_dash="dash", line_color="#d62728",
                      annotation_text=t("charts.max_length", limit=limit), annotation_position="top")
    if not any(values.values()):
        _empty_note(fig, t("charts.nothing_to_show"))
    return fig
