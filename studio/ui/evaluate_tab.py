"""The Evaluate tab: metrics of a finished run, its confusion matrix or per-class/per-type table, a
prediction browser, and a comparison of two runs on the same test set.

It reads the run folder only (``metrics.json``, ``predictions_<split>.jsonl``); every row is
shown through the task's ``render``, so a new task needs no code here. Rows whose prediction holds
character spans (``text`` + ``entities``) are also shown highlighted.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gradio as gr

from studio.ui import i18n, words
from studio.ui.i18n import t
import pandas as pd

from studio.errors import StudioError
from studio.runs import RunDir
from studio.tasks import get_task
from studio.ui import charts
from studio.ui.common import cell, error_html, highlighted, messages_html, run_choice, shown_frame
from studio.ui.markup import t_md
from studio.ui.services import Services

SHOWN_ROWS = 200
ALL = "(all)"


# ---- reading a finished run -------------------------------------------------------------------------
class _Predictions:
    """Predictions files parsed once (by path and modification time), shared by every browser."""

    def __init__(self, size: int = 6):
        self._cache: OrderedDict[tuple, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def load(self, path: Path) -> list[dict[str, Any]]:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        with self._lock:
            self._cache[key] = rows
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return rows


PREDICTIONS = _Predictions()


def all_choice() -> list[tuple[str, str]]:
    """The filter choice that keeps every gold or predicted value."""
    return [(t("evaluate.all_values"), ALL)]


def finished_runs(services: Services) -> list:
    return [r for r in services.jobs.list(limit=500) if RunDir(r.run_dir).metrics.exists()]


def run_task(services: Services, run_id: str):
    from studio.config import RunConfig

    config = RunConfig.load(services.jobs.folder(run_id).config)
    return get_task(config.task.name), config


def load_metrics(services: Services, run_id: str) -> dict[str, Any]:
    path = services.jobs.folder(run_id).metrics
    if not path.exists():
        raise StudioError(t("evaluate.no_metrics", run=run_id, status=words.status(services.jobs.status(run_id))))
    return json.loads(path.read_text(encoding="utf-8"))


def load_predictions(services: Services, run_id: str, split: str) -> list[dict[str, Any]]:
    path = services.jobs.folder(run_id).predictions(split)
    if not path.exists():
        return []
    return PREDICTIONS.load(path)


def splits_of(metrics: dict[str, Any]) -> list[str]:
    """Scored splits: test, validation, then others (e.g. ``test_base``: the model before fine-tuning)."""
    scored = [k for k, v in metrics.items() if isinstance(v, dict) and k not in ("headline", "train", "baseline")]
    return sorted(scored, key=lambda k: (k not in ("test", "validation"), k != "test", k))


def base_predictions(services: Services, run_id: str, split: str) -> list[dict[str, Any]]:
    """Predictions of the base model on the same rows, when the worker scored it (generation)."""
    return load_predictions(services, run_id, f"{split}_base")


def with_base(rows: list[dict[str, Any]], base_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the base model's differing fields beside them ('base generation' before 'generation')."""
    if not base_rows or len(base_rows) != len(rows):
        return rows
    differing = [k for k in dict.fromkeys(k for b in base_rows for k in b)
                 if any(b.get(k) != r.get(k) for b, r in zip(base_rows, rows))]
    merged = []
    for row, base in zip(rows, base_rows):
        out: dict[str, Any] = {}
        for key, value in row.items():
            if key in differing:
                out[f"base {key}"] = base.get(key)
            out[key] = value
        merged.append(out)
    return merged


def baseline_notes(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """The fine-tuned headline beside the classical baseline's (and the majority class's), and a
    warning when the fine-tuned model does not beat it."""
    from studio.tasks.baseline import compare

    found = compare(metrics)
    if found is None:
        return []
    floor = t("evaluate.baseline_floor", value=_fmt(found.majority)) if found.majority is not None else ""
    line = t("evaluate.baseline", split=words.split(found.split), metric=words.metric(found.metric),
             tuned=_fmt(found.fine_tuned), baseline=_fmt(found.baseline), method=found.method, floor=floor)
    return [("info", line)] if found.beaten else [("warning", line), ("warning", t("evaluate.baseline_not_beaten"))]


BEFORE_AFTER = ("preference_accuracy", "rougeL", "exact_match", "loss")
"""Figures of the model before fine-tuning and after that the notes set side by side, in order."""


def base_notes(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """What fine-tuning changed on the scored split (test, else validation): the starting model's
    figures against the tuned one's (a generation run's ``<split>_base`` split, a preference run's
    ``preference_accuracy_base``), then a preference run's reward accuracy and margin."""
    split = "test" if isinstance(metrics.get("test"), dict) else "validation"
    after, before = metrics.get(split) or {}, metrics.get(f"{split}_base") or {}
    items = []
    for name in BEFORE_AFTER:
        old, new = after.get(f"{name}_base", before.get(name)), after.get(name)
        if _number(old) and _number(new):
            items.append(t("evaluate.before_after_item", metric=words.metric(name), before=_fmt(old), after=_fmt(new)))
    notes = [("info", t("evaluate.before_after", split=words.split(split), items="; ".join(items)))] if items else []
    if _number(after.get("reward_accuracy")) and _number(after.get("reward_margin")):
        notes.append(("info", t("evaluate.rewards", split=words.split(split), accuracy=_fmt(after["reward_accuracy"]),
                                margin=_fmt(after["reward_margin"]))))
    return notes


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metrics_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    splits = splits_of(metrics)
    names: list[str] = []
    for split in splits:
        names += [k for k, v in metrics[split].items() if _scalar(v) and k not in names]
    rows = [[words.metric(name)] + [_fmt(metrics[s].get(name)) for s in splits] for name in names]
    return pd.DataFrame(rows, columns=[t("runs.col_metric"), *[words.split(s) for s in splits]])


def detail_tables(split_metrics: dict[str, Any]) -> list[tuple[str, pd.DataFrame]]:
    """Nested results (per class, per entity type, fine-tuned vs base...) as tables."""
    tables = []
    for key, value in split_metrics.items():
        if not isinstance(value, dict) or not value or key in ("confusion_matrix", "headline"):
            continue
        if all(isinstance(v, dict) for v in value.values()):
            columns = list(dict.fromkeys(c for v in value.values() for c in v))
            rows = [[name] + [_fmt(v.get(c)) for c in columns] for name, v in value.items()]
            tables.append((words.metric(key), pd.DataFrame(rows, columns=["", *[words.metric(c) for c in columns]])))
        elif all(_scalar(v) for v in value.values()):
            tables.append((words.metric(key), pd.DataFrame([[words.metric(k), _fmt(v)] for k, v in value.items()],
                                                           columns=["", t("evaluate.col_value")])))
    return tables


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or value is None


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else round(value, 4)
    return "" if value is None else value


# ---- the prediction browser ---------------------------------------------------------------------------
def rendered(task, predictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [task.render(p) for p in predictions]


def filter_rows(predictions: list[dict[str, Any]], rows: list[dict[str, Any]], outcome: str, gold: str | None,
                predicted: str | None, min_confidence: float, text: str | None) -> list[int]:
    needle = (text or "").strip().lower()
    keep = []
    for i, (prediction, row) in enumerate(zip(predictions, rows)):
        if outcome == "correct" and prediction.get("correct") is not True:
            continue
        if outcome == "wrong" and prediction.get("correct") is not False:
            continue
        if gold and gold != ALL and str(row.get("gold", "")) != gold:
            continue
        if predicted and predicted != ALL and str(row.get("predicted", "")) != predicted:
            continue
        confidence = prediction.get("confidence")
        if min_confidence and isinstance(confidence, (int, float)) and confidence < min_confidence:
            continue
        if needle and needle not in json.dumps(row, ensure_ascii=False, default=str).lower():
            continue
        keep.append(i)
    return keep


OUTCOME_FIELDS = ("gold", "predicted", "gold_entities", "entities", "correct", "confidence", "score", "rougeL", "exact_match",
                  "reference", "generation")
"""A prediction's fields that say how it went, in the order the tables show them: before the
inputs (text, prompt, tokens...), whose long texts would push them out of sight."""


def outcome_first(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its gold, predicted and score fields first (the base model's beside the
    fine-tuned one's, as ``with_base`` puts them), the inputs after."""
    first = [k for key in OUTCOME_FIELDS for k in row if k == key or (k.startswith("base ") and k[5:] == key)]
    return {key: row[key] for key in [*first, *(k for k in row if k not in first)]}


def rows_frame(rows: list[dict[str, Any]], indexes: list[int]) -> pd.DataFrame:
    shown = [{"#": i + 1, **{k: cell(v) for k, v in outcome_first(rows[i]).items()}} for i in indexes[:SHOWN_ROWS]]
    # A filter that keeps no row still shows the columns (an empty frame's headers read "1 2 3").
    return shown_frame(shown or ([{"#": None, **dict.fromkeys(outcome_first(rows[0]))}] if rows else []))[:len(shown)]


def column_widths(frame: pd.DataFrame, long: int = 24) -> list[str]:
    """Widths for a table's columns: a short one (labels, scores, yes/no) as wide as its header or
    longest value, so its header is not broken letter by letter; a long text takes the rest."""
    import unicodedata

    def width(value: Any) -> int:  # a Chinese character takes two columns of a monospace font
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(value))

    widths = []
    for name in frame.columns:
        longest = max([width(name), *(width(v) for v in frame[name].tolist())])
        widths.append("auto" if longest > long else f"{longest * 9 + 28}px")
    return widths


def side_by_side(prediction: dict[str, Any], row: dict[str, Any]) -> list[tuple[str, str]]:
    """The text fields of a row (prompt, reference, outputs…), in order, for a side-by-side view."""
    fields = []
    for key, value in row.items():
        if isinstance(value, str) and key not in ("correct",) and len(value) > 0:
            fields.append((key, value))
    return fields[:4]  # e.g. prompt, reference, base generation, generation


def compare_runs(services: Services, a: str, b: str, split: str) -> tuple[str, pd.DataFrame]:
    task_a, _ = run_task(services, a)
    task_b, _ = run_task(services, b)
    if task_a.name != task_b.name:
        raise StudioError(t("evaluate.different_tasks", a=words.task_title(task_a), b=words.task_title(task_b)))
    pa, pb = load_predictions(services, a, split), load_predictions(services, b, split)
    if not pa or not pb:
        raise StudioError(t("evaluate.need_predictions", split=words.split(split)))
    ra, rb = rendered(task_a, pa), rendered(task_b, pb)
    inputs_a = [_inputs(p) for p in pa]
    inputs_b = [_inputs(p) for p in pb]
    if len(pa) != len(pb) or inputs_a != inputs_b:
        raise StudioError(t("evaluate.not_same_set", split=words.split(split), a=len(pa), b=len(pb)))
    agree, rows = 0, []
    a_right = b_right = 0
    for i, (x, y) in enumerate(zip(ra, rb)):
        same = _decision(x) == _decision(y)
        agree += same
        a_right += pa[i].get("correct") is True
        b_right += pb[i].get("correct") is True
        if not same:
            # Which run was right and the gold and predicted values first: the texts after them.
            row: dict[str, Any] = {"#": i + 1}
            ca, cb = pa[i].get("correct"), pb[i].get("correct")
            if ca is not None and cb is not None:
                row[RIGHT] = "both" if ca and cb else "A" if ca else "B" if cb else "neither"
            for key in outcome_first(dict.fromkeys([*x, *y])):
                if x.get(key) == y.get(key):
                    row[words.column(key)] = cell(x.get(key))
                else:
                    row[f"{words.column(key)} (A)"] = cell(x.get(key))
                    row[f"{words.column(key)} (B)"] = cell(y.get(key))
            rows.append(row)
    n = len(pa)
    scored = any("correct" in p for p in pa)
    # Markdown (the comparison's summary): the split's name may be anything a caller sent.
    summary = t_md("evaluate.agree", share=f"{agree / n:.1%}", n=n, split=words.split(split), disagreements=n - agree)
    if scored:
        summary += " " + t_md("evaluate.right_shares", a=f"{a_right / n:.1%}", b=f"{b_right / n:.1%}")
        if rows:
            wins_a = sum(1 for r in rows if r.get(RIGHT) == "A")
            wins_b = sum(1 for r in rows if r.get(RIGHT) == "B")
            summary += " " + t_md("evaluate.wins", a=wins_a, b=wins_b)
    who = {"both": t("evaluate.right_both"), "neither": t("evaluate.right_neither")}
    shown = [{**row, RIGHT: who.get(row[RIGHT], row[RIGHT])} if RIGHT in row else row for row in rows[:SHOWN_ROWS]]
    return summary, pd.DataFrame(shown).rename(columns={RIGHT: t("evaluate.col_right")})


_OUTPUT_FREE = {"probabilities", "confidence", "score", "error", "correct"}
RIGHT = "right"
"""The comparison table's column saying which run was right (shown under a translated header)."""


def _inputs(prediction: dict[str, Any]) -> str:
    """A prediction's inputs and gold value (what both runs share on the same test set)."""
    keep = {k: v for k, v in prediction.items() if not isinstance(v, float) and k in ("text", "text_pair", "tokens", "gold", "gold_tags",
                                                                                      "prompt", "reference", "messages")}
    return json.dumps(keep or {"n": 0}, sort_keys=True, ensure_ascii=False, default=str)


def _decision(row: dict[str, Any]) -> str:
    """What a run decided for a row: its rendered fields, leaving scores out."""
    return json.dumps({k: v for k, v in row.items() if k not in _OUTPUT_FREE and not isinstance(v, float)},
                      sort_keys=True, ensure_ascii=False, default=str)


# ---- layout -----------------------------------------------------------------------------------------
def build(services: Services) -> dict[str, Any]:
    eval_state = gr.State({"run_id": None, "split": None, "indexes": []})
    with gr.Row():
        run = gr.Dropdown([], value=None, label=t("evaluate.finished_run"), elem_id="eval-run", scale=4)
        split = gr.Radio([(t("evaluate.split_test"), "test"), (t("evaluate.split_validation"), "validation")], value="test", label=t("evaluate.split"), elem_id="eval-split", scale=2)
        refresh = gr.Button(t("evaluate.runs"), elem_id="eval-refresh", scale=1)
    message = gr.HTML("", elem_id="eval-message")
    with gr.Row():
        with gr.Column(scale=2):
            # Tables stay hidden until they have rows: an empty gr.Dataframe shows "1 2 3" as its headers.
            metrics_table = gr.Dataframe(label=t("evaluate.metrics"), interactive=False, elem_id="eval-metrics", visible=False)
            details_md = gr.Markdown("", elem_id="eval-details-title")
            details = gr.Dataframe(label=t("evaluate.per_class_per_type"), interactive=False, elem_id="eval-details", visible=False)
            extra_details = gr.Dataframe(label=t("evaluate.more"), interactive=False, elem_id="eval-details-2", visible=False)
        with gr.Column(scale=3):
            confusion = gr.Plot(show_label=False, elem_id="confusion-matrix", visible=False)

    gr.Markdown(t("evaluate.predictions"))
    with gr.Row():
        outcome = i18n.fixed_choices(gr.Radio(
            [(t("evaluate.show_all"), "all"), (t("evaluate.show_correct"), "correct"), (t("evaluate.show_wrong"), "wrong")],
            value="all", label=t("evaluate.show"), elem_id="eval-outcome", scale=2))
        gold = gr.Dropdown(all_choice(), value=ALL, label=t("evaluate.gold"), elem_id="eval-gold", scale=2)
        predicted = gr.Dropdown(all_choice(), value=ALL, label=t("evaluate.predicted"), elem_id="eval-predicted", scale=2)
        confidence = gr.Slider(0, 1, value=0, step=0.05, label=t("evaluate.minimum_confidence"), elem_id="eval-confidence", scale=2)
        search = gr.Textbox(label=t("evaluate.search"), elem_id="eval-search", scale=2)
    count = gr.Markdown("", elem_id="eval-count")
    table = gr.Dataframe(interactive=False, elem_id="eval-predictions", max_height=420, wrap=True, max_chars=80, visible=False)
    gr.Markdown(t("evaluate.select_a_row_to_see"))
    spans = gr.HighlightedText(label=t("evaluate.entities"), visible=False, elem_id="eval-spans", combine_adjacent=False,
                               show_legend=True)
    gold_spans = gr.HighlightedText(label=t("evaluate.gold_entities"), visible=False, elem_id="eval-gold-spans", show_legend=True)
    with gr.Row():
        sides = [gr.Textbox(visible=False, interactive=False, lines=6, max_lines=20, elem_id=f"eval-side-{i}") for i in range(4)]

    gr.Markdown(t("evaluate.compare_two_runs"))
    with gr.Row():
        other = gr.Dropdown([], value=None, label=t("evaluate.run_b_run_a_is"), elem_id="eval-compare-run", scale=4)
        compare = gr.Button(t("evaluate.compare"), elem_id="eval-compare", scale=1)
    compare_md = gr.Markdown("", elem_id="eval-compare-summary")
    compare_table = gr.Dataframe(interactive=False, elem_id="eval-compare-table", max_height=380, wrap=True, max_chars=80,
                                 visible=False)

    def runs_fn(current, current_other):
        """Finished runs to evaluate."""
        choices = [run_choice(r) for r in finished_runs(services)]
        ids = [c[1] for c in choices]
        value = current if current in ids else (ids[0] if ids else None)
        return gr.update(choices=choices, value=value), gr.update(choices=choices, value=current_other if current_other in ids else None)

    def load_fn(run_id, split_name, state, outcome_v=None, gold_v=None, predicted_v=None, min_conf=None):
        """Metrics, confusion matrix and per-class/per-type tables of a finished run. The
        prediction filters the user set stay when only the split changes (or the page's language);
        another run starts with every prediction shown."""
        hidden = gr.update(visible=False)
        empty = [hidden, "", hidden, hidden, hidden]
        if not run_id:
            return [messages_html([("info", t("evaluate.no_finished_run"))]), *empty,
                    gr.update(choices=all_choice(), value=ALL), gr.update(choices=all_choice(), value=ALL), state, gr.update(),
                    gr.update()]
        try:
            metrics = load_metrics(services, run_id)
            task, _ = run_task(services, run_id)
        except Exception as error:  # noqa: BLE001
            return [error_html(error), *empty, gr.update(), gr.update(), state, gr.update(), gr.update()]
        available = [s for s in splits_of(metrics) if s in ("test", "validation")]
        split_name = split_name if split_name in available else (available[0] if available else split_name)
        split_metrics = metrics.get(split_name) or {}
        tables = detail_tables(split_metrics)
        matrix = split_metrics.get("confusion_matrix")
        confusion_update = (gr.update(visible=True, value=charts.heatmap_figure(
                                matrix["labels"], matrix["matrix"], t("evaluate.confusion_of", split=words.split(split_name))))
                            if isinstance(matrix, dict) and matrix.get("labels") else hidden)
        first = gr.update(visible=True, value=tables[0][1], label=tables[0][0]) if tables else hidden
        second = gr.update(visible=True, value=tables[1][1], label=tables[1][0]) if len(tables) > 1 else hidden
        predictions = load_predictions(services, run_id, split_name)
        rows = rendered(task, predictions)
        golds = sorted({str(r["gold"]) for r in rows if "gold" in r})
        preds = sorted({str(r["predicted"]) for r in rows if "predicted" in r})
        same_run = (state or {}).get("run_id") == run_id
        keep = {"outcome": outcome_v if same_run and outcome_v in ("all", "correct", "wrong") else "all",
                "gold": gold_v if same_run and gold_v in golds else ALL,
                "predicted": predicted_v if same_run and predicted_v in preds else ALL,
                "confidence": float(min_conf or 0) if same_run else 0}
        state = {"run_id": run_id, "split": split_name, "indexes": []}
        info = messages_html([("info", t("evaluate.loaded", task=words.task_title(task), split=words.split(split_name),
                                          count=len(predictions))), *baseline_notes(metrics), *base_notes(metrics)])
        scored = any("correct" in p for p in predictions)
        confident = any(isinstance(p.get("confidence"), (int, float)) for p in predictions)
        return [info, gr.update(visible=True, value=metrics_frame(metrics)), t_md("evaluate.split_heading", split=words.split(split_name)) if tables else "",
                first, second, confusion_update,
                gr.update(choices=all_choice() + golds[:200], value=keep["gold"], visible=bool(golds)),
                gr.update(choices=all_choice() + preds[:200], value=keep["predicted"], visible=bool(preds)), state,
                gr.update(visible=scored, value=keep["outcome"] if scored else "all"),
                gr.update(visible=confident, value=keep["confidence"] if confident else 0)]

    def browse_fn(state, outcome_v, gold_v, predicted_v, min_conf, text):
        """Predictions of the run, filtered."""
        run_id, split_name = (state or {}).get("run_id"), (state or {}).get("split")
        if not run_id:
            return state, gr.update(visible=False), ""
        task, _ = run_task(services, run_id)
        predictions = load_predictions(services, run_id, split_name)
        rows = with_base(rendered(task, predictions), rendered(task, base_predictions(services, run_id, split_name)))
        indexes = filter_rows(predictions, rows, outcome_v, gold_v, predicted_v, float(min_conf or 0), text)
        state = {**state, "indexes": indexes}
        if len(indexes) > SHOWN_ROWS:
            count_text = t_md("evaluate.count_first", shown=len(indexes), total=len(rows), first=SHOWN_ROWS)
        else:
            count_text = t_md("evaluate.count", shown=len(indexes), total=len(rows))
        frame = rows_frame(rows, indexes)
        return state, gr.update(visible=bool(rows), value=frame, column_widths=column_widths(frame)), count_text

    def select_fn(state, event: gr.SelectData):
        """One prediction in full: highlighted spans, or its texts side by side."""
        hidden = gr.update(visible=False)
        run_id = (state or {}).get("run_id")
        if not run_id or event is None:
            return [hidden, hidden, *([hidden] * 4)]
        position = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        indexes = state.get("indexes") or []
        if position is None or position >= len(indexes):
            return [hidden, hidden, *([hidden] * 4)]
        task, _ = run_task(services, run_id)
        predictions = load_predictions(services, run_id, state["split"])
        prediction = predictions[indexes[position]]
        row = with_base(rendered(task, predictions), rendered(task, base_predictions(services, run_id, state["split"])))[indexes[position]]
        ents = highlighted(prediction.get("text"), prediction.get("entities"))
        gold_ents = highlighted(prediction.get("text"), prediction.get("gold_entities"))
        if ents is not None:
            return [gr.update(visible=True, value=ents), gr.update(visible=gold_ents is not None, value=gold_ents),
                    *([hidden] * 4)]
        fields = side_by_side(prediction, row)
        updates = [gr.update(visible=True, label=words.column(key), value=value) for key, value in fields]
        updates += [hidden] * (4 - len(updates))
        return [hidden, hidden, *updates]

    def compare_fn(a, b, split_name):
        """Agreement of two runs on the same test set, and where they disagree."""
        hidden = gr.update(visible=False, value=pd.DataFrame())
        if not a or not b:
            return messages_html([("info", t("evaluate.pick_a_and_b"))]), hidden
        if a == b:
            return messages_html([("info", t("evaluate.pick_two_different"))]), hidden
        try:
            summary, frame = compare_runs(services, a, b, split_name or "test")
        except Exception as error:  # noqa: BLE001
            return error_html(error), hidden
        return summary, gr.update(visible=not frame.empty, value=frame, column_widths=column_widths(frame))

    load_outputs = [message, metrics_table, details_md, details, extra_details, confusion, gold, predicted, eval_state,
                    outcome, confidence]
    browse_inputs = [eval_state, outcome, gold, predicted, confidence, search]
    browse_outputs = [eval_state, table, count]
    refresh.click(runs_fn, [run, other], [run, other], api_name="eval_runs")
    load_inputs = [run, split, eval_state, outcome, gold, predicted, confidence]
    gr.on([run.change, split.change], load_fn, load_inputs, load_outputs, api_name="eval_load").then(
        browse_fn, browse_inputs, browse_outputs, api_visibility="private")
    gr.on([outcome.change, gold.input, predicted.input, confidence.release, search.submit], browse_fn, browse_inputs,
          browse_outputs, api_name="eval_predictions")
    table.select(select_fn, [eval_state], [spans, gold_spans, *sides], api_name="eval_row")
    compare.click(compare_fn, [run, other, split], [compare_md, compare_table], api_name="eval_compare")
    return {"refresh": (runs_fn, [run, other], [run, other]),
            "relabel": [[(runs_fn, [run, other], [run, other])],
                        [(load_fn, load_inputs, load_outputs), (browse_fn, browse_inputs, browse_outputs)]]}
