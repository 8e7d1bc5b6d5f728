"""The live charts skip plotly's validation to stay cheap: their specs must still be valid
plotly, and pages watching the same run must share one drawing per batch of events."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gradio")

from studio.ui import charts  # noqa: E402


def fed(run_id: str = "run-a", steps: int = 12, evals: bool = True) -> charts.RunSeries:
    series = charts.RunSeries(run_id)
    events = [{"kind": "log", "step": s, "loss": 1 / s, "learning_rate": 1e-4 * s} for s in range(1, steps)]
    events += [{"kind": "progress", "step": s, "total": 40, "steps_per_s": 2.0} for s in range(1, steps)]
    if evals:
        events.append({"kind": "eval", "split": "validation", "step": 5, "metrics": {"loss": 0.5, "accuracy": 0.7}})
    series.feed(events)
    series.offset = 1000 + steps
    return series


@pytest.mark.parametrize("series", [charts.RunSeries("empty"), fed()], ids=["empty", "with-points"])
@pytest.mark.parametrize("draw", [charts.loss_figure, charts.metric_figure, charts.lr_figure, charts.throughput_figure,
                                  lambda s: charts.overlay_figure({"a": s, "b": s} if s.points else {})])
def test_unvalidated_charts_are_valid_plotly(series, draw):
    import plotly.graph_objects as go

    figure = draw(series)
    validated = go.Figure(figure.to_dict())  # raises on any property plotly does not know
    assert json.loads(validated.to_json()) == json.loads(figure.to_json())
    assert figure.layout.template.layout.paper_bgcolor == "white"  # the studio's white theme is kept


@pytest.mark.parametrize("figure", [
    lambda: charts.bar_figure({}, "labels", "label"),
    lambda: charts.bar_figure({"positive": 3, "negative": 5}, "labels", "label", "count", 320),
    lambda: charts.heatmap_figure(["a", "b"], [[3, 1], [0, 4]]),
    lambda: charts.histogram_figure({"train": [3, 5, 40], "test": [4]}, 32, "lengths", "tokens"),
    lambda: charts.histogram_figure({"train": []}, 16, "lengths", "tokens"),
], ids=["bar-empty", "bar", "heatmap", "histogram", "histogram-empty"])
def test_data_and_evaluation_charts_are_valid_plotly(figure):
    import plotly.graph_objects as go

    drawn = figure()
    assert json.loads(go.Figure(drawn.to_dict()).to_json()) == json.loads(drawn.to_json())


def test_pages_watching_the_same_events_share_one_drawing(monkeypatch):
    same = lambda a, b: all(x is y for x, y in zip(a, b, strict=True))  # noqa: E731
    first, second = fed("run-b"), fed("run-b")
    drawn = charts.live_figures(first)
    assert same(charts.live_figures(second), drawn)  # another page, same run and data: not drawn again
    assert [payload.type for payload in drawn] == ["plotly"] * 4
    assert json.loads(drawn[0].plot)["data"][0]["name"] == "train loss"

    later = fed("run-b", steps=13)  # more loss, learning-rate and throughput points; no new evaluation
    again = charts.live_figures(later)
    assert [a is b for a, b in zip(again, drawn)] == [False, True, False, False]  # only charts whose data grew
    later.feed([{"kind": "progress", "step": 13, "total": 40, "steps_per_s": 2.1}])
    assert [a is b for a, b in zip(charts.live_figures(later), again)] == [True, True, True, False]
    assert not same(charts.live_figures(fed("run-c")), drawn)  # another run
    from studio.ui import i18n

    monkeypatch.setattr(i18n, "current_lang", lambda: "zh")
    chinese = charts.live_figures(fed("run-b"))
    assert chinese[0] is not drawn[0]
    assert json.loads(chinese[0].plot)["layout"]["title"]["text"] != json.loads(drawn[0].plot)["layout"]["title"]["text"]


def test_gradio_takes_the_payloads_as_they_are():
    import gradio as gr

    payload = charts.live_figures(fed("run-d"))[1]
    assert gr.Plot().postprocess(payload) is payload


def test_a_score_chart_spans_the_whole_run_and_the_share_scale():
    series = charts.RunSeries("run-e")
    series.feed([{"kind": "status", "status": "running", "total_steps": 76, "device": "cpu", "train_examples": 8},
                 {"kind": "eval", "split": "validation", "step": 75, "metrics": {"loss": 0.5, "accuracy": 0.81}}])
    layout = charts.metric_figure(series).to_dict()["layout"]
    # One point of 0.81 at step 75 drew axes from 0.8099 to 0.81 and from 74 to 76.
    assert layout["yaxis"]["range"] == [0, 1] and layout["xaxis"]["range"] == [0, 76]
    assert charts.metric_figure(series).data[0].name == "validation accuracy"  # the split is named
    assert charts.loss_figure(series).to_dict()["layout"]["xaxis"]["range"] == [0, 76]
    series.feed([{"kind": "eval", "split": "validation", "step": 76, "metrics": {"mse": 3.5}}])
    assert "range" not in charts.metric_figure(series).to_dict()["layout"]["yaxis"]  # not a share: its own scale
