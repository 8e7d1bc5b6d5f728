"""Small helpers the tabs share: messages, error text, run labels, table cells, predictions shown as tables."""

from __future__ import annotations

import html
import json
import logging
import math
import time
from datetime import datetime
from typing import Any, Iterable

from studio.errors import StudioError
from studio.ui.i18n import DEFAULT, current_lang, t

log = logging.getLogger("studio.ui")

# Files the data readers take (tables, JSON lines, CoNLL), offered by every upload box.
FILE_TYPES = [".csv", ".tsv", ".tab", ".txt", ".jsonl", ".ndjson", ".json", ".parquet", ".pq", ".conll", ".bio", ".iob"]


def error_text(error: BaseException) -> str:
    """What the user reads for a failure: a StudioError's own message (and hint), or a short line
    for a bug, whose traceback goes to the server log instead of the page."""
    if isinstance(error, StudioError):
        return str(error) if current_lang() == DEFAULT else t("common.error_lead", message=str(error))
    log.exception("unexpected error in a UI handler", exc_info=error)
    return t("common.server_error", kind=type(error).__name__, error=str(error))


def messages_html(items: Iterable[tuple[str, str]]) -> str:
    """Inline messages, one box per (level, text); level is error, warning, info or ok."""
    boxes = []
    for level, text in items:
        if not text:
            continue
        body = html.escape(str(text), quote=False).replace("\n", "<br>")
        titles = {"error": t("common.level_error"), "warning": t("common.level_warning"),
                  "info": t("common.level_info"), "ok": t("common.level_ok")}
        title = titles.get(level, level)
        title = t("common.level_title", level=title)
        boxes.append(f'<div class="studio-msg studio-{level}" data-level="{level}"><b>{title}</b> {body}</div>')
    return "\n".join(boxes)


def error_html(error: BaseException) -> str:
    return messages_html([("error", error_text(error))])


def when(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else ""


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0 or not math.isfinite(seconds):
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return t("common.duration_seconds", s=seconds)
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return t("common.duration_minutes", m=minutes, s=f"{s:02d}")
    hours, m = divmod(minutes, 60)
    return t("common.duration_hours", h=hours, m=f"{m:02d}")


def run_duration(record) -> str:
    if not record.started:
        return ""
    return duration((record.ended or time.time()) - record.started)


def metric_text(record) -> str:
    from studio.ui import words

    if record.metric_value is None:
        return ""
    value = record.metric_value
    name = words.metric(record.metric_name) if record.metric_name else ""
    return f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"


def run_choice(record) -> tuple[str, str]:
    """(label, value) for a run dropdown."""
    from studio.ui import words

    name = record.name or record.id
    label = f"{name} · {words.status(record.status)}" + (f" · {metric_text(record)}" if record.metric_value is not None else "")
    label += f" · {record.id}" if record.name else ""
    return label, record.id


def cell(value: Any, limit: int = 300) -> Any:
    """A value as the preview tables show it: lists and dicts as JSON, long text cut."""
    if isinstance(value, (list, tuple, dict)):
        value = json.dumps(value, ensure_ascii=False, default=str)
    elif hasattr(value, "tolist") and not isinstance(value, (int, float, str)):
        value = json.dumps(value.tolist(), ensure_ascii=False, default=str)
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    if value is None:
        return ""
    return value


# ---- predictions as the Evaluate and Playground tabs show them -----------------------------
def shown_frame(rows: list[dict[str, Any]]):
    """Rows as a table whose headers are the fields' names in the page's language."""
    import pandas as pd

    from studio.ui import words

    yes_no = {True: t("common.yes"), False: t("common.no")}
    frame = pd.DataFrame([{key: yes_no[value] if isinstance(value, bool) else value for key, value in row.items()} for row in rows])
    return frame.rename(columns={name: words.column(name) for name in frame.columns if isinstance(name, str)})


def highlighted(text: str | None, entities: Any) -> list[tuple[str, str | None]] | None:
    """Text cut into (piece, label or None) for gr.HighlightedText; None if there are no spans."""
    if not isinstance(text, str) or not isinstance(entities, list):
        return None
    spans = sorted((e for e in entities if isinstance(e, dict) and isinstance(e.get("start"), int) and isinstance(e.get("end"), int)),
                   key=lambda e: e["start"])
    pieces: list[tuple[str, str | None]] = []
    at = 0
    for e in spans:
        if e["start"] < at:
            continue
        if e["start"] > at:
            pieces.append((text[at:e["start"]], None))
        pieces.append((text[e["start"]:e["end"]], str(e.get("label"))))
        at = e["end"]
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


CSS = """
.studio-msg {border-radius: 6px; padding: 8px 12px; margin: 4px 0; font-size: 0.95em; line-height: 1.4;}
.studio-error {background: #fdecea; border-left: 4px solid #d93025; color: #5f1510;}
.studio-warning {background: #fff6e0; border-left: 4px solid #f2a600; color: #4d3800;}
.studio-info {background: #eef4fd; border-left: 4px solid #4a7fd6; color: #1b3761;}
.studio-ok {background: #e8f5e9; border-left: 4px solid #2e7d32; color: #14421a;}
.studio-progress {background: #e9ecef; border-radius: 6px; height: 22px; position: relative; overflow: hidden;}
.studio-progress > .bar {background: linear-gradient(90deg, #4a7fd6, #5b8def); height: 100%; transition: width 0.5s;}
.studio-progress > .text {position: absolute; inset: 0; text-align: center; font-size: 0.85em; line-height: 22px; color: #111;}
.studio-status {font-size: 1.05em;}
.studio-facts {font-size: 0.9em; color: #4b5563; margin-top: 2px;}
#studio-header h1 {margin-bottom: 0;}
.studio-downloads {display: flex; gap: 10px; align-items: center; flex-wrap: wrap; margin: 4px 0;}
.studio-download {padding: 6px 14px; border-radius: 6px; border: 1px solid #cbd5e1; text-decoration: none;}
a.studio-download {background: #eef4fd; color: #1b3761;}
/* An upload box's icon sat under the box's floating label: the prompt starts below the label, with a smaller icon. */
[data-testid=upload-text] {padding-top: 24px;}
[data-testid=upload-text] [data-testid=upload-icon] {height: 1.5em; width: 1.5em; margin-bottom: 2px;}
.studio-download.off {color: #6b7280;}
"""


# ---- config fields as form inputs (the Train tab's advanced section, the Data tab's task options) ----
def _field_type(cls: type, name: str) -> tuple[Any, bool]:
    """(the field's type without Optional, whether None is allowed)."""
    import types
    import typing

    tp = typing.get_type_hints(cls)[name]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        return (args[0] if len(args) == 1 else tp), optional
    return tp, False


AUTO = "auto"
"""The choice of an optional on/off setting that leaves it to the worker."""


def field_input(cls: type, name: str, value: Any, info: str | None, elem_id: str):
    """A Gradio input for one dataclass field of the run configuration, by its type. The field's
    name stays the configuration's key (what a config file says); the rest is translated."""
    import typing

    import gradio as gr

    from studio.ui.i18n import as_is

    tp, optional = _field_type(cls, name)
    blank_label = optional and value is None
    label = t("common.field_blank_is_automatic", name=name) if blank_label else name
    if typing.get_origin(tp) is typing.Literal:
        # The values are the configuration's own; "auto" alone reads as a word in each language.
        choices = [(t("common.auto"), choice) if choice == AUTO else (str(choice), choice) for choice in typing.get_args(tp)]
        return as_is(gr.Dropdown(choices, value=value, label=name, info=info, elem_id=elem_id))
    if tp is bool and optional:
        # Three states: a checkbox has no "automatic", and an untouched one would switch off a
        # choice the worker makes for the machine (packing, TF32, length grouping, ...).
        shown = AUTO if value is None else str(bool(value)).lower()
        choices = [(t("common.auto"), AUTO), (t("common.yes"), "true"), (t("common.no"), "false")]
        return as_is(gr.Dropdown(choices, value=shown, label=name, info=info, elem_id=elem_id))
    if tp is bool:
        return as_is(gr.Checkbox(value=bool(value), label=name, info=info, elem_id=elem_id))
    if tp in (int, float) and optional:
        # A text box, not gr.Number: blank must stay blank (the preset decides), never become 0.
        return as_is(gr.Textbox(value="" if value is None else str(value), label=name, info=info, elem_id=elem_id,
                                placeholder=t("common.field_blank_placeholder")))
    if tp is int:
        box = gr.Number(value=value, precision=0, label=label, info=info, elem_id=elem_id)
    elif tp is float:
        box = gr.Number(value=value, label=label, info=info, elem_id=elem_id, step=0.01 if value is not None and value < 1 else 1)
    else:
        shown = ", ".join(value) if isinstance(value, list) else ("" if value is None else str(value))
        box = gr.Textbox(value=shown, label=label, info=info, elem_id=elem_id)
    return box if blank_label else as_is(box)


def field_value(cls: type, name: str, raw: Any) -> Any:
    """The value of a form input as the configuration expects it (blank -> None where allowed,
    else the field's default; 'a, b' -> a list for list-typed fields)."""
    import dataclasses
    import typing

    tp, optional = _field_type(cls, name)
    if tp is bool and optional and isinstance(raw, str):
        raw = {AUTO: None, "true": True, "false": False}.get(raw.strip().lower(), raw)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if optional:
            return None
        spec = cls.__dataclass_fields__[name]
        return spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
    if typing.get_origin(tp) is typing.Literal or tp is bool:
        return raw
    if tp in (int, float):
        try:
            number = float(raw)
        except (TypeError, ValueError):
            from studio.errors import ConfigError

            raise ConfigError(t("common.field_not_a_number", name=name, value=repr(raw))) from None
        if tp is int:
            if not number.is_integer():
                from studio.errors import ConfigError

                raise ConfigError(t("common.field_not_whole", name=name, value=repr(raw)))
            return int(number)
        return number
    args = typing.get_args(tp)
    if typing.get_origin(tp) is list or any(typing.get_origin(a) is list for a in args):
        text = str(raw).strip()
        if "," in text or typing.get_origin(tp) is list:
            return [part.strip() for part in text.split(",") if part.strip()]
        return text
    return str(raw) if tp is str else raw
