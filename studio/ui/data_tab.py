"""The Data tab: upload a file (or pick a sample), see it, map its columns, check it, save it.

Everything about the data itself comes from the data layer and the task plug-ins: the file is
read by the task's ``read_file``, checked by ``load_task_data`` (normalize, split, fit, validate),
described by ``profile``; this module only lays it out. The browser's choices live in the
``data_state`` (a ``DataState``) the Train tab reads too.

Saved datasets are listed with their owners. Replacing or deleting one is for its owner and
admins; ``Services.check_may_change_dataset`` decides, from the request, in each handler.

Longer than 500 lines on purpose: Gradio wires each handler to the components this module lays
out, and the handlers close over them; what is not layout or wiring lives beside it
(``data_state``, ``data_profile``, ``reading``, the data layer).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from studio.ui import i18n, words
from studio.ui.i18n import t
import pandas as pd

from studio.config import RunConfig, field_help
from studio.errors import StudioError
from studio.tasks import Problem, Task, get_task, list_tasks
from studio.ui import charts
from studio.ui.common import cell, error_html, error_text, field_input, field_value, messages_html
from studio.ui.data_profile import profile_text
from studio.ui.data_state import ENCODINGS, TASK_OPTIONS, DataState, make_config, task_option_fields
from studio.ui.markup import md_text, t_md
from studio.ui.reading import reading
from studio.ui.services import Services, username

PAGE_ROWS = 20
FILE_TYPES = [".csv", ".tsv", ".tab", ".txt", ".jsonl", ".ndjson", ".json", ".parquet", ".pq", ".conll", ".bio", ".iob"]
NO_COLUMN = "(none)"


# ---- reading, with a small cache so changing a dropdown does not re-read a big file ------------------
class _Reads:
    def __init__(self, size: int = 4):
        self._tables: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def read(self, task: Task, path: str | Path, limits: dict[str, int | None] | None = None, encoding: str | None = None):
        """``limits``: what the file may hold (``readers.read_limits`` of the workspace's settings);
        ``encoding``: the text encoding the user chose (None or auto: detected)."""
        p = Path(path)
        stat = p.stat() if p.exists() else None
        encoding = encoding or "auto"
        key = (type(task).__name__, str(p), stat.st_mtime_ns if stat else None, stat.st_size if stat else None,
               tuple(sorted((limits or {}).items())), encoding)
        with self._lock:
            if key in self._tables:
                self._tables.move_to_end(key)
                return self._tables[key]
        table = task.read_file(p, **(limits or {}), encoding=encoding)
        with self._lock:
            self._tables[key] = table
            while len(self._tables) > self.size:
                self._tables.popitem(last=False)
        return table


READS = _Reads()
"""Parsed files, shared by every browser (a cache of file contents, not anyone's session)."""


class _CachedTask:
    """A task whose ``read_file`` goes through the cache; everything else is the task's own."""

    def __init__(self, task: Task):
        self._task = task

    def read_file(self, path, encoding=None, **limits):
        return READS.read(self._task, path, limits, encoding)

    def __getattr__(self, name):
        return getattr(self._task, name)


@dataclass
class Analysis:
    task: str
    columns: dict[str, str] = field(default_factory=dict)
    """Role -> column the task used (detected or chosen)."""
    splits: dict[str, pd.DataFrame] = field(default_factory=dict)
    meta: Any = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def analyze(state: DataState, task: str | None = None, columns: dict[str, str] | None = None) -> Analysis:
    """Check the browser's data as training would: read, normalize, split, fit, validate."""
    from studio.data.loading import load_task_data

    name = task or state.task
    result = Analysis(task=name)
    try:
        config = make_config(state, name, columns)
        task_obj = get_task(name)
        data = load_task_data(config, _CachedTask(task_obj), limits=state.limits)
    except StudioError as error:
        result.error = data_error(error)
        return result
    except Exception as error:  # noqa: BLE001 - shown inline, logged with its traceback
        result.error = error_text(error)
        return result
    train = data.splits["train"]
    result.columns = dict(train.attrs.get("columns") or {})
    result.splits, result.meta, result.problems, result.notes = data.splits, data.meta, data.problems, data.notes
    return result


def detect_task(state: DataState) -> Analysis:
    """The task whose checks pass and whose roles match the most column names exactly ('text' and
    'label', 'tokens' and 'tags', 'prompt' and 'completion'), then with the fewest warnings; the
    configuration's default task (the most permissive) only wins a tie when nothing else does."""
    default = RunConfig().task.name
    best: tuple[tuple, Analysis] | None = None
    first_error: Analysis | None = None
    for order, cls in enumerate(list_tasks()):
        result = analyze(state, cls.name, {})
        if not result.ok:
            first_error = first_error or (result if cls.name == default else None)
            continue
        warnings = sum(1 for p in result.problems if p.level == "warning")
        exact = sum(1 for role, column in result.columns.items() if role == column)
        rank = (-exact, warnings, cls.name == default, order)
        if best is None or rank < best[0]:
            best = (rank, result)
    if best is not None:
        return best[1]
    return first_error or analyze(state, default, {})


# ---- what the page shows -------------------------------------------------------------------------
def _raw_table(state: DataState):
    return READS.read(get_task(state.task or RunConfig().task.name), state.path, state.limits, state.encoding)


def data_error(error: BaseException) -> str:
    """A refusal of the data layer (file, line and column, in English as the CLI says it), framed
    in the page's language; anything else as ``error_text`` shows it."""
    if isinstance(error, StudioError):
        return t("data.data_problem", message=str(error))
    return error_text(error)


def separated(delimiter: str) -> str:
    names = {",": t("data.comma_separated"), "\t": t("data.tab_separated"), ";": t("data.semicolon_separated"),
             "|": t("data.pipe_separated")}
    return names.get(delimiter) or t("data.other_separated", delimiter=repr(delimiter))


def summary_md(state: DataState) -> str:
    if not state.path:
        return t("data.upload_a_file_or_pick")
    try:
        table = _raw_table(state)
    except StudioError:
        return f"**{md_text(state.name)}**"
    # Markdown: the file's name, encoding and separator and the other files' names are escaped.
    parts = [f"**{md_text(state.name)}**", t("data.summary_rows", rows=f"{len(table.df):,}"),
             t("data.summary_columns", columns=len([c for c in table.df.columns if not str(c).startswith('_')])),
             md_text(table.format.upper())]
    if table.encoding:
        from studio.data.readers.encoding import label_of

        parts.append(md_text(label_of(table.encoding)))
    if table.delimiter:
        parts.append(md_text(separated(table.delimiter)))
    extra = [t_md("data.summary_validation_file", name=Path(state.validation_path).name) if state.validation_path else "",
             t_md("data.summary_test_file", name=Path(state.test_path).name) if state.test_path else ""]
    return " · ".join(parts + [e for e in extra if e])


def preview_page(state: DataState, page: int) -> tuple[pd.DataFrame, str, int]:
    if not state.path:
        return pd.DataFrame(), "", 0
    try:
        df = _raw_table(state).df
    except StudioError:
        return pd.DataFrame(), "", 0
    df = df[preview_columns(state, [c for c in df.columns if not str(c).startswith("_")])]
    pages = max(1, -(-len(df) // PAGE_ROWS))
    page = min(max(0, int(page or 0)), pages - 1)
    chunk = df.iloc[page * PAGE_ROWS:(page + 1) * PAGE_ROWS]
    shown = chunk.apply(lambda column: column.map(cell)).astype(str) if len(chunk) else chunk
    # The file's own columns keep their names; the row number column is the page's.
    shown.insert(0, t("data.col_row"), range(page * PAGE_ROWS + 1, page * PAGE_ROWS + len(chunk) + 1))
    return shown, t("data.page_of", page=page + 1, pages=pages, rows=f"{len(df):,}"), page


def preview_columns(state: DataState, columns: list[Any]) -> list[Any]:
    """The preview's columns: the ones the task's roles use first, in the roles' order (text,
    then label...), then the file's others in its order, so what matters is seen without scrolling."""
    roles = list(get_task(state.task).roles) if state.task else []
    mapped = state.columns or {}
    by_name = {str(c): c for c in columns}
    first = [by_name[mapped[role]] for role in roles if mapped.get(role) in by_name]
    return list(dict.fromkeys([*first, *columns]))


def note_text(note: str) -> str:
    """A note of the data layer in the page's language: a split's notes (``SplitNote``) are worded
    from their values; others are the data layer's English sentences (file, line, column), framed."""
    kind, values = getattr(note, "kind", None), dict(getattr(note, "values", None) or {})
    if kind == "split":
        sizes = words.splits({name: f"{count:,}" for name, count in values["sizes"].items()})
        if values.get("column"):
            return t("data.split_note_stratified", rows=f"{values['rows']:,}", sizes=sizes, column=values["column"], seed=values["seed"])
        return t("data.split_note_random", rows=f"{values['rows']:,}", sizes=sizes, seed=values["seed"])
    if kind == "small":
        names = t("data.split_note_and").join(words.split(name) for name in values["splits"])
        return t("data.split_note_small", splits=names, rows=values["rows"])
    if kind == "lists":
        return t("data.split_note_lists", column=values["column"])
    if kind in ("rare_kept", "rare_not_stratified"):
        classes = t("words.list_separator").join(t("data.split_note_class", name=name, count=count) for name, count in values["classes"])
        if values.get("more"):
            classes += t("data.split_note_more", count=values["more"])
        if kind == "rare_kept":
            return t("data.split_note_rare_kept", classes=classes)
        return t("data.split_note_rare_not_stratified", classes=classes)
    if kind == "fewer_rows_than_classes":
        return t("data.split_note_fewer_rows", split=words.split(values["split"]), rows=values["rows"], classes=values["classes"])
    if kind == "not_stratified":
        return t("data.split_note_not_stratified", reason=values["reason"])
    return t("data.data_note", message=note)


def messages_for(state: DataState, analysis: Analysis | None, read_notes: list[str]) -> str:
    # Problems and reading notes are the data layer's English sentences (file, line, column):
    # framed, not rewritten; the split's notes are worded in the page's language.
    # A file's reading notes come both with the file and with the checked data: shown once.
    items: list[tuple[str, str]] = [("info", note_text(n)) for n in dict.fromkeys(read_notes)]
    if analysis is None:
        return messages_html(items)
    if analysis.error:
        items.insert(0, ("error", analysis.error))
        return messages_html(items)
    items += [(p.level if p.level in ("error", "warning") else "info", t("data.data_note", message=p.message))
              for p in analysis.problems]
    items += [("info", note_text(n)) for n in dict.fromkeys(analysis.notes) if n not in set(read_notes)]
    rows = words.splits({name: f"{len(df):,}" for name, df in analysis.splits.items()})
    items.insert(0, ("ok", t("data.fits", task=words.task_title(get_task(analysis.task)).lower(), rows=rows)))
    return messages_html(items)


def role_updates(task_name: str | None, columns: dict[str, str], available: list[str], slots: int) -> list[Any]:
    task = get_task(task_name) if task_name else None
    roles = list(task.roles) if task else []
    updates = []
    for i in range(slots):
        if i < len(roles):
            role = roles[i]
            required = role in task.required_roles
            value = columns.get(role) if columns.get(role) in available else NO_COLUMN
            label = t("data.role_column", role=role) if required else t("data.role_column_optional", role=role)
            updates.append(gr.update(visible=True, label=label, info=words.role_help(task, role),
                                     choices=no_column_choices() + available, value=value))
        else:
            updates.append(gr.update(visible=False, value=NO_COLUMN, choices=no_column_choices()))
    return updates


def no_column_choices() -> list[tuple[str, str]]:
    return [(t("data.no_column"), NO_COLUMN)]


def label_role(task_name: str, splits: dict[str, pd.DataFrame]) -> str | None:
    """The role whose distribution is worth plotting: the task's last required (gold) role."""
    task = get_task(task_name)
    for role in reversed(task.required_roles):
        if role in splits.get("train", pd.DataFrame()).columns:
            return role
    return None


def profile_of(services: Services, analysis: Analysis) -> tuple[Any, Any, str]:
    """Label distribution and text-length figures, and the profile as text."""
    from studio.data.profile import choose_max_length, profile

    if not analysis.ok or not analysis.splits:
        return empty_labels_figure(), empty_lengths_figure(), ""
    task = get_task(analysis.task)
    tokenizer, tokenizer_name = services_tokenizer(services, task)
    lengths: dict[str, list[int]] = {}
    unit = "tokens"  # words when no tokenizer can read the data
    for name, df in analysis.splits.items():
        values: list[int] = []
        if tokenizer is not None:
            try:
                values = task.text_lengths(df, tokenizer)
            except Exception:  # noqa: BLE001 - a tokenizer that cannot read this data: fall back to words
                values = []
        if not values:
            values = _word_counts(df)
            unit = "words"
        lengths[name] = values
    cap = min(512, int(getattr(tokenizer, "model_max_length", 512) or 512)) if tokenizer is not None else 512
    limit = choose_max_length(lengths.get("train", []), cap) if lengths.get("train") else None
    role = label_role(analysis.task, analysis.splits)
    stats = profile(analysis.splits, role, lengths, limit)
    labels = stats.get("labels") or {}
    counts = (labels.get("counts") or {}).get("train") or {}
    shown = dict(list(counts.items())[:40])
    title = t("data.chart_distribution", role=role) if role else t("data.chart_labels")
    if labels.get("kind") == "numeric":
        title = t("data.chart_numeric", role=role)
        shown = {}
    y_title = t("data.chart_rows") if labels.get("kind") != "multi" else t("data.chart_count")
    label_fig = charts.bar_figure(shown, title, role or t("data.chart_label_axis"), y_title) if role else None
    unit_name = t("data.chart_tokens") if unit == "tokens" else t("data.unit_words")
    by = t("data.by_tokenizer", unit=unit_name, tokenizer=tokenizer_name) if unit == "tokens" and tokenizer_name else unit_name
    length_fig = charts.histogram_figure({"train": lengths.get("train", [])}, limit, t("data.chart_text_length_in", by=by), unit_name)
    text = profile_text(stats, unit_name)
    if limit:
        text += "\n" + t("data.max_length_would_be", limit=limit, unit=unit_name)
    return label_fig, length_fig, text + reading_note(tokenizer, tokenizer_name, analysis)


def reading_note(tokenizer, backbone: str | None, analysis: Analysis) -> str:
    """Whether the task's default backbone reads the data (the Train tab says it again of the
    backbone chosen there): a checked file in a script it does not know is caught here first."""
    from studio.data.text import sample_texts
    from studio.models.coverage import SAMPLE_ROWS, measure_coverage

    train = analysis.splits.get("train")
    if tokenizer is None or not backbone or train is None:
        return ""
    try:
        coverage = measure_coverage(tokenizer, sample_texts(train, SAMPLE_ROWS)).to_dict()
    except Exception:  # noqa: BLE001 - a tokenizer that cannot read this data: the lengths said so already
        return ""
    found = reading(coverage, backbone, analysis.task)
    if found is None:
        return ""
    level, values = found
    if level == "note":
        return "\n\nℹ️ " + t("train.fit_note", **values)
    return "\n\n⚠️ " + t("train.fit_warning", **values)


def _word_counts(df: pd.DataFrame) -> list[int]:
    for column in ("text", "tokens", "prompt", "input", "source"):
        if column in df.columns:
            return [len(v) if isinstance(v, list) else len(str(v).split()) for v in df[column].tolist()]
    return []


_TOKENIZERS: dict[str, Any] = {}
_TOKENIZER_LOCK = threading.Lock()


def services_tokenizer(services: Services, task: Task) -> tuple[Any, str | None]:
    """The tokenizer of the default offline backbone for this kind of task, to count tokens."""
    from studio.models import catalog

    kind = task.model_kind
    with _TOKENIZER_LOCK:
        if kind in _TOKENIZERS:
            return _TOKENIZERS[kind]
        found: tuple[Any, str | None] = (None, None)
        try:
            from studio.models.light_tokenizer import light_tokenizer
            from studio.models.loading import gguf_tokenizer
            from studio.models.resolve import bundled_path

            for entry in catalog.for_kind(kind):
                located = bundled_path(entry) if entry.bundled else None
                if not located:
                    continue
                folder, gguf = located
                if gguf:
                    folder = gguf_tokenizer(folder, gguf, services.workspace.cache, entry.name)
                # Loaded without torch, so checking data never makes the server import it.
                tokenizer = light_tokenizer(folder)
                found = (tokenizer, entry.name) if tokenizer is not None else (None, None)
                break
        except Exception:  # noqa: BLE001 - token counts are a nicety; words are counted instead
            found = (None, None)
        _TOKENIZERS[kind] = found
        return found


def _preview(frame: pd.DataFrame):
    return gr.update(value=frame, visible=not frame.empty)


# ---- layout and events --------------------------------------------------------------------------
def empty_labels_figure():
    return charts.bar_figure({}, t("data.chart_labels"), t("data.chart_label_axis"), t("data.chart_rows"))


def empty_lengths_figure():
    return charts.histogram_figure({}, None, t("data.chart_text_length"), t("data.chart_tokens"))


def encoding_choices() -> list[tuple[str, str]]:
    """The encodings a user may choose, auto (detect) first, each with what it is for."""
    names = {"auto": t("data.encoding_auto"), "utf-8": t("data.encoding_utf_8"), "gb18030": t("data.encoding_gb18030"),
             "big5": t("data.encoding_big5"), "shift_jis": t("data.encoding_shift_jis"), "cp1251": t("data.encoding_cp1251"),
             "cp1252": t("data.encoding_cp1252"), "latin-1": t("data.encoding_latin_1"), "utf-16": t("data.encoding_utf_16")}
    return [(names.get(name, name), name) for name in ENCODINGS]


def dataset_headers() -> list[str]:
    return [t("data.col_name"), t("data.col_task"), t("data.col_rows"), t("data.col_owner"), t("data.col_saved")]


def datasets_frame(infos) -> pd.DataFrame:
    from studio.ui.common import when

    rows = [[info.name, words.task_title_of(info.task), words.splits({split: f"{n:,}" for split, n in info.rows.items()}),
             info.owner or "—", when(info.saved)] for info in infos]
    return pd.DataFrame(rows, columns=dataset_headers())


def build(services: Services, data_state: gr.State) -> dict[str, Any]:
    """Lay the tab out. Other tabs follow the data through ``data_state.change``; returns the
    handler that lists the saved datasets when a page loads."""
    tasks = list_tasks()
    slots = max(len(task.roles) for task in tasks)
    samples = services.samples()
    option_fields = task_option_fields()

    gr.Markdown(t("data.upload_your_data_or_start"))
    with gr.Row():
        with gr.Column(scale=3):
            upload = gr.File(label=t("data.training_data_csv_tsv_jsonl"), file_types=FILE_TYPES,
                             elem_id="data-file", height=130)
        with gr.Column(scale=2):
            sample = gr.Dropdown(choices=list(samples), value=None, label=t("data.or_a_bundled_sample"), elem_id="data-sample",
                                 info=t("data.small_example_datasets_for_every"))
            encoding = i18n.fixed_choices(gr.Dropdown(choices=encoding_choices(), value="auto", label=t("data.encoding"),
                                                      info=t("data.encoding_info"), elem_id="data-encoding"))
            with gr.Accordion(t("data.separate_validation_test_files_optional"), open=False):
                validation_file = gr.File(label=t("data.validation_file"), file_types=FILE_TYPES, elem_id="data-validation-file", height=90)
                test_file = gr.File(label=t("data.test_file"), file_types=FILE_TYPES, elem_id="data-test-file", height=90)
    summary = gr.Markdown(t("data.upload_a_file_or_pick"), elem_id="data-summary")
    messages = gr.HTML("", elem_id="data-messages")

    with gr.Row():
        task = i18n.fixed_choices(gr.Dropdown(
            choices=[(t("data.task_choice", title=words.task_title(task), name=task.name), task.name) for task in tasks],
            value=None, label=t("data.task"), info=t("data.detected_from_the_file_change"), elem_id="data-task", scale=1))
        with gr.Column(scale=3):
            roles = []
            for start in range(0, slots, 4):
                with gr.Row():
                    roles += [gr.Dropdown(choices=no_column_choices(), value=NO_COLUMN, label=t("data.column_n", n=i + 1), visible=False,
                                          elem_id=f"data-role-{i}", min_width=140) for i in range(start, min(slots, start + 4))]
    with gr.Accordion(t("data.task_options"), open=False):
        with gr.Row():
            option_inputs = [field_input(cls, name, cls.__dataclass_fields__[name].default,
                                         words.field_help(f"task.{name}", field_help(cls).get(name)), f"data-option-{name}")
                             for cls, name in option_fields]

    # The preview spans the page, its role columns first (text, label...): at a laptop's width the
    # columns that matter are in sight; a long text is cut, and a click on it shows it whole.
    preview = gr.Dataframe(label=t("data.preview"), interactive=False, elem_id="data-preview", max_height=420, wrap=True,
                           max_chars=90, visible=False)
    with gr.Row():
        prev_page = gr.Button(t("data.previous"), size="sm", elem_id="data-prev")
        page_info = gr.Markdown("", elem_id="data-page-info")
        next_page = gr.Button(t("data.next"), size="sm", elem_id="data-next")
    with gr.Row():
        labels_plot = gr.Plot(empty_labels_figure(), show_label=False, elem_id="data-labels-plot")
        i18n.redraw(labels_plot, empty_labels_figure)
        lengths_plot = gr.Plot(empty_lengths_figure(), show_label=False, elem_id="data-lengths-plot")
        i18n.redraw(lengths_plot, empty_lengths_figure)
    profile_text = gr.Textbox(label=t("data.profile"), lines=4, max_lines=12, interactive=False, elem_id="data-profile")

    with gr.Accordion(t("data.split"), open=False):
        gr.Markdown(t("data.without_separate_files_the_training"))
        with gr.Row():
            val_share = gr.Slider(0, 0.4, value=0.1, step=0.01, label=t("data.validation_share"), elem_id="data-split-validation")
            test_share = gr.Slider(0, 0.4, value=0.1, step=0.01, label=t("data.test_share"), elem_id="data-split-test")
            stratify = gr.Checkbox(value=True, label=t("data.stratify_by_label"), elem_id="data-split-stratify")
            seed = gr.Number(value=42, precision=0, label=t("data.seed"), elem_id="data-split-seed")

    with gr.Row():
        dataset_name = gr.Textbox(label=t("data.save_as_a_named_dataset"), placeholder=t("data.e_g_reviews"), elem_id="data-save-name", scale=3)
        replace = gr.Checkbox(value=False, label=t("data.replace_existing"), elem_id="data-save-replace", scale=1)
        save = gr.Button(t("data.save_dataset"), elem_id="data-save", scale=1)
    save_message = gr.HTML("", elem_id="data-save-message")

    with gr.Accordion(t("data.saved_datasets"), open=True, elem_id="data-datasets-panel"):
        datasets_table = gr.Dataframe(headers=dataset_headers(), interactive=False, elem_id="data-datasets", max_height=260, wrap=True)
        with gr.Row():
            dataset_pick = gr.Dropdown([], value=None, label=t("data.dataset"), elem_id="data-dataset-pick", scale=3)
            delete_confirm = gr.Checkbox(value=False, label=t("data.yes_delete_dataset"), elem_id="data-dataset-delete-confirm", scale=2)
            delete_dataset_button = gr.Button(t("data.delete_dataset"), variant="stop", elem_id="data-dataset-delete", scale=1)
        datasets_message = gr.HTML("", elem_id="data-datasets-message")
    outputs_main = [data_state, summary, messages, task, *roles, preview, page_info]

    def _render(state: DataState, analysis: Analysis | None, read_notes: list[str] | None = None):
        columns = dict(analysis.columns) if analysis and analysis.ok else dict(state.columns or {})
        available: list[str] = []
        notes = list(read_notes or [])
        if state.path:
            try:
                table = _raw_table(state)
                available = [str(c) for c in table.df.columns if not str(c).startswith("_")]
                notes = list(table.notes) + notes
            except StudioError:
                pass
        frame, info, page = preview_page(state, state.page)
        state.page = page
        return [state, summary_md(state), messages_for(state, analysis, notes),
                gr.update(value=state.task), *role_updates(state.task, columns, available, slots),
                _preview(frame), info]

    def load_file(file, sample_name, val_path, test_path, state, request: gr.Request = None):
        """Read a new training file (an upload or a sample) and detect its task and columns."""
        from studio.data.readers import read_limits

        state = (state or DataState()).changed()
        path = file or (str(samples[sample_name]) if sample_name in samples else None)
        if not path:
            return _render(DataState(split=state.split, encoding=state.encoding), None)
        user = username(request)
        try:  # uploads are kept in the user's own uploads, within their quota
            kept = services.keep_upload(path, user) if file else Path(path)
            val_kept = services.keep_upload(val_path, user) if val_path else None
            test_kept = services.keep_upload(test_path, user) if test_path else None
        except (OSError, StudioError) as error:
            state = DataState()
            return [state, "", messages_html([("error", t("data.not_stored", error=str(error)))]),
                    gr.update(), *role_updates(None, {}, [], slots), _preview(pd.DataFrame()), ""]
        # The workspace's limits on rows and decoded size, as they are now, for every read of these files.
        state = state.changed(path=str(kept), name=Path(path).name, columns={}, page=0, dataset=None, ok=False,
                              validation_path=str(val_kept) if val_kept else None, test_path=str(test_kept) if test_kept else None,
                              limits=read_limits(services.settings()))
        return check_new(state)

    def check_new(state: DataState):
        """Read the state's file (new, or in another encoding) and detect its task and columns."""
        # Read with the generic reader first, so an unreadable file gets the data layer's message.
        try:
            READS.read(get_task(RunConfig().task.name), state.path, state.limits, state.encoding)
        except StudioError as error:
            state.task, state.ok = None, False
            return [state, f"**{md_text(state.name)}**", messages_html([("error", data_error(error))]), gr.update(value=None),
                    *role_updates(None, {}, [], slots), _preview(pd.DataFrame()), ""]
        except Exception as error:  # noqa: BLE001
            state.task, state.ok = None, False
            return [state, f"**{md_text(state.name)}**", error_html(error), gr.update(value=None),
                    *role_updates(None, {}, [], slots), _preview(pd.DataFrame()), ""]
        analysis = detect_task(state)
        state.task, state.columns, state.ok = analysis.task, analysis.columns, analysis.ok
        state.rows = len(analysis.splits.get("train", [])) if analysis.ok else None
        return _render(state, analysis)

    def encoding_fn(chosen, state):
        """Read the file again in the encoding the user chose (auto: detected), and check it again."""
        state = (state or DataState()).changed(encoding=chosen if chosen in ENCODINGS else "auto")
        if not state.path:
            return _render(state, None)
        return check_new(state.changed(columns={}, page=0, dataset=None, ok=False))

    def clear_fn(state):
        """The upload removed: nothing is shown of the old file (its profile, charts, messages,
        the saved message); the split and the encoding chosen stay for the next file."""
        state = state or DataState()
        state = DataState(split=state.split, encoding=state.encoding)
        return [*_render(state, None), gr.update(value=None), gr.update(value=empty_labels_figure(), visible=True),
                empty_lengths_figure(), "", ""]

    def clear_saved():
        """The data changed: a 'saved' message of the data before no longer holds."""
        return ""

    def remap(task_name, *values):
        """Check the data again with the task, columns, options and split the user chose."""
        *role_values, options_values, val_s, test_s, strat, seed_v, state = (
            *values[:slots], values[slots:slots + len(TASK_OPTIONS)], *values[slots + len(TASK_OPTIONS):])
        state = (state or DataState()).changed()
        if not state.path:
            return _render(state, None)
        state.options = {name: field_value(cls, name, value) for (cls, name), value in zip(option_fields, options_values)}
        state.split = {"validation": float(val_s or 0), "test": float(test_s or 0), "stratify": bool(strat),
                          "seed": int(seed_v if seed_v is not None else 42)}
        state.dataset = None
        if task_name and task_name != state.task:
            state.task = task_name
            analysis = analyze(state, task_name, {})
        else:
            roles_of_task = list(get_task(state.task).roles) if state.task else []
            columns = {role: value for role, value in zip(roles_of_task, role_values) if value and value != NO_COLUMN}
            analysis = analyze(state, state.task, columns)
            if not analysis.ok:
                state.columns = columns
        if analysis.ok:
            state.columns = analysis.columns
        state.ok, state.rows = analysis.ok, len(analysis.splits.get("train", [])) if analysis.ok else None
        return _render(state, analysis)

    def profile_fn(state):
        """Label distribution and token lengths of the current data."""
        state = state or DataState()
        if not state.path or not state.ok:
            label_fig, length_fig, text = empty_labels_figure(), empty_lengths_figure(), ""
        else:
            label_fig, length_fig, text = profile_of(services, analyze(state))
        # Tasks without a label column (generation) get no label chart.
        return gr.update(value=label_fig, visible=label_fig is not None), length_fig, text

    def rerender(state):
        """The data shown again as it was checked (after the page's language changed)."""
        state = (state or DataState()).changed()
        if state.path and not state.task:
            return [gr.skip()] * len(outputs_main)  # an unreadable file: its message stays
        return _render(state, analyze(state) if state.path else None)

    def page_fn(state, delta):
        state = (state or DataState()).changed()
        frame, info, page = preview_page(state, state.page + delta)
        state.page = page
        return state, _preview(frame), info

    def save_fn(name, state, replace_existing=False, request: gr.Request = None):
        """Save the checked splits as a named dataset in the workspace (replacing one: its owner or an admin)."""
        from studio.data.datasets_store import list_datasets, save_dataset

        state = (state or DataState()).changed()
        if not state.path:
            return state, messages_html([("error", t("data.nothing_to_save"))])
        name = (name or "").strip()
        if not name:
            return state, messages_html([("error", t("data.name_the_dataset"))])
        exists = name in list_datasets(services.workspace.datasets)
        if exists and not replace_existing:
            return state, messages_html([("error", t("data.dataset_exists", name=name))])
        try:
            if exists:
                services.check_may_change_dataset(request, name)
        except StudioError as error:
            return state, error_html(error)
        analysis = analyze(state)
        if not analysis.ok:
            return state, messages_html([("error", analysis.error)])
        task_obj = get_task(analysis.task)
        train = analysis.splits["train"]
        identity = {role: role for role in task_obj.roles if role in train.columns}
        meta = {"task": analysis.task, "columns": identity, "task_options": {k: v for k, v in (state.options or {}).items() if v},
                "source": {"train": state.name, "validation": Path(state.validation_path).name if state.validation_path else None,
                           "test": Path(state.test_path).name if state.test_path else None},
                "mapping": analysis.columns, "split": state.split}
        try:
            save_dataset(services.workspace.datasets, name, {k: v.drop(columns=[c for c in v.columns if c == "_row"]) for k, v in analysis.splits.items()},
                         meta, overwrite=exists, owner=username(request))
        except StudioError as error:
            return state, error_html(error)
        state.dataset = name
        rows = words.splits({k: f"{len(v):,}" for k, v in analysis.splits.items()})
        return state, messages_html([("ok", t("data.saved", name=name, rows=rows))])

    split_inputs = [val_share, test_share, stratify, seed]
    remap_inputs = [task, *roles, *option_inputs, *split_inputs, data_state]
    profile_outputs = [labels_plot, lengths_plot, profile_text]

    load_inputs = [upload, sample, validation_file, test_file, data_state]
    upload.upload(load_file, load_inputs, outputs_main, api_name="data_upload").then(
        profile_fn, [data_state], profile_outputs, api_name="data_profile").then(
        clear_saved, None, [save_message], api_visibility="private")
    upload.clear(clear_fn, [data_state], [*outputs_main, sample, *profile_outputs, save_message], api_visibility="private")

    def load_sample(sample_name, val_path, test_path, state, request: gr.Request = None):
        return load_file(None, sample_name, val_path, test_path, state, request)

    sample.input(load_sample, [sample, validation_file, test_file, data_state],
                 outputs_main, api_name="data_sample").then(profile_fn, [data_state], profile_outputs, api_visibility="private").then(
        clear_saved, None, [save_message], api_visibility="private")
    encoding.input(encoding_fn, [encoding, data_state], outputs_main, api_name="data_encoding").then(
        profile_fn, [data_state], profile_outputs, api_visibility="private").then(
        clear_saved, None, [save_message], api_visibility="private")
    for extra in (validation_file, test_file):
        extra.upload(load_file, load_inputs, outputs_main, api_visibility="private").then(
            profile_fn, [data_state], profile_outputs, api_visibility="private")
    remap_events = [task.input, *[r.input for r in roles], *[o.input for o in option_inputs],
                    val_share.release, test_share.release, stratify.input, seed.submit]
    gr.on(remap_events, remap, remap_inputs, outputs_main, api_name="data_check", trigger_mode="always_last").then(
        profile_fn, [data_state], profile_outputs, api_visibility="private").then(
        clear_saved, None, [save_message], api_visibility="private")
    prev_page.click(lambda s: page_fn(s, -1), [data_state], [data_state, preview, page_info], api_name="data_prev_page")
    next_page.click(lambda s: page_fn(s, 1), [data_state], [data_state, preview, page_info], api_name="data_next_page")
    def datasets_fn(current=None):
        """The saved datasets with their owners, and the picker for deleting one."""
        from studio.data.datasets_store import list_dataset_infos

        infos = list_dataset_infos(services.workspace.datasets)
        names = [info.name for info in infos]
        return datasets_frame(infos), gr.update(choices=names, value=current if current in names else None)

    def delete_fn(name, sure, request: gr.Request = None):
        """Delete a saved dataset (its owner or an admin); runs trained on it keep their own copy."""
        from studio.data.datasets_store import delete_dataset

        if not name:
            message = messages_html([("error", t("data.pick_a_dataset"))])
        elif not sure:
            message = messages_html([("error", t("data.tick_to_delete"))])
        else:
            try:
                services.check_may_change_dataset(request, name)
                delete_dataset(services.workspace.datasets, name)
                message = messages_html([("ok", t("data.dataset_deleted", name=name))])
                name = None
            except StudioError as error:
                message = error_html(error)
        return (message, gr.update(value=False), *datasets_fn(name))

    datasets_outputs = [datasets_table, dataset_pick]
    # The replace box is an optional last input, so scripts written for data_save(name, state) keep working.
    save.click(save_fn, [dataset_name, data_state, replace], [data_state, save_message], api_name="data_save").then(
        datasets_fn, [dataset_pick], datasets_outputs, api_visibility="private")
    delete_dataset_button.click(delete_fn, [dataset_pick, delete_confirm], [datasets_message, delete_confirm, *datasets_outputs],
                                api_name="data_delete_dataset")
    return {"refresh": (datasets_fn, [dataset_pick], datasets_outputs),
            "relabel": [[(datasets_fn, [dataset_pick], datasets_outputs)],
                        [(rerender, [data_state], outputs_main), (profile_fn, [data_state], profile_outputs)]]}
