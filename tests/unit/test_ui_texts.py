"""Every text the page shows goes through ``t``: a scan of the UI's source for English written
straight into it, Chinese that is really Chinese, and a translation for every name the layers
below give in English (tasks, column roles, statuses, configuration help).

The scan reads ``studio/ui/*.py`` and flags a string literal (or f-string) that is
- prose: words with a space between them, anywhere but in a docstring, a log call, a key
  (``d["key"]``, ``{"key": ...}``), a comparison, a type annotation or a method that takes
  identifiers (``.get("text")``, ``.startswith("base ")``);
- or a word at a place the page shows: ``label=``, ``info=``, ``placeholder=``, ``title=``,
  ``headers=``, ``columns=`` (and ``value=`` of a text component), the text of a Markdown,
  HTML, Button, Tab or Accordion, a ``gr.Info``/``gr.Warning``/``gr.Error``, a message given to
  ``messages_html``, a ``StudioError``/``ConfigError``, or a choice's label.
A text that is not English prose (CSS, a unit, a plotly reference) is listed in ``ALLOWED``
with the reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from studio.ui import i18n

UI = Path(i18n.__file__).resolve().parent

ALLOWED = {
    ("app.py", "The studio"): "the browser tab's title, which cannot change with the page's language (the page says app.title)",
    ("charts.py", "y domain"): "a plotly axis reference",
    ("train_tab.py", "CPU"): "a device's name",
    ("train_tab.py", "CUDA"): "a device's name",
    ("train_tab.py", "{} GB"): "a unit",
    ("train_tab.py", "{} MB"): "a unit",
    ("playground_tab.py", "the playground input"): "the source name in the data layer's messages, which stay English",
}
NOT_SHOWN = {
    ("app.py", "check_exposure"): "the command line's refusal and warning (a terminal, before the page exists)",
    ("app.py", "serve"): "the command line's output",
}
"""Functions whose texts go to the terminal, not the page."""
SKIPPED_VARIABLES = {"CSS", "FIT_PLOTS_JS", "GRADIO_WORDS_JS", "FOLLOW_LOG_JS"}  # style sheets and page scripts
IDENTIFIER_METHODS = {"get", "pop", "setdefault", "startswith", "endswith", "removeprefix", "removesuffix", "split", "rsplit",
                      "join", "replace", "strip", "strftime", "getattr", "hasattr", "getLogger", "basicConfig", "setLevel"}
LOG_CALLS = {"debug", "info", "warning", "exception", "error", "critical"}
SINK_KEYWORDS = {"label", "info", "placeholder", "title", "headers", "columns", "auth_message"}
TEXT_COMPONENTS = {"Markdown", "HTML", "Button", "DownloadButton", "UploadButton", "Textbox", "Tab", "Accordion", "Info",
                   "Warning", "Error"}
CHOICE_COMPONENTS = {"Dropdown", "Radio", "CheckboxGroup"}
ERRORS = {"StudioError", "ConfigError", "DataError", "Error"}
MARKUP = re.compile(r"<[^>]*>|&\w+;")
WORD = re.compile(r"[A-Za-z]{2,}")


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
    return None


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _receiver(call: ast.Call) -> str:
    func = call.func
    return getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""


class Scan(ast.NodeVisitor):
    def __init__(self, filename: str):
        self.filename = filename
        self.found: list[tuple[int, str]] = []

    def check(self, tree: ast.AST) -> list[tuple[int, str]]:
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                child.parent = node  # type: ignore[attr-defined]
        for node in ast.walk(tree):
            text = _text(node)
            if text is None or isinstance(getattr(node, "parent", None), ast.JoinedStr):
                continue
            shown = MARKUP.sub("", text)
            if not WORD.search(shown) or (self.filename, text) in ALLOWED:
                continue
            verdict = self.where(node)
            if verdict == "skip":
                continue
            if re.search(r"\s", shown.strip(" ")) or verdict == "shown":
                self.found.append((node.lineno, text))
        return self.found

    def where(self, node: ast.AST) -> str:
        """'skip' (not a text of the page), 'shown' (the page shows it) or '' (prose decides)."""
        enclosing = node
        while enclosing is not None:
            if isinstance(enclosing, (ast.FunctionDef, ast.AsyncFunctionDef)) and (self.filename, enclosing.name) in NOT_SHOWN:
                return "skip"
            enclosing = getattr(enclosing, "parent", None)
        child, parent = node, getattr(node, "parent", None)
        direct = True  # the literal is the argument itself, or an element of a list/tuple argument
        while parent is not None:
            if isinstance(parent, ast.Expr) and child is node:
                return "skip"  # a docstring (or a bare string statement)
            if isinstance(parent, (ast.AnnAssign, ast.arg)) and child is parent.annotation:
                return "skip"
            if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) and child is parent.returns:
                return "skip"
            if isinstance(parent, ast.Subscript) and child is parent.slice:
                return "skip"
            if isinstance(parent, ast.Dict) and child in parent.keys:
                return "skip"
            if isinstance(parent, ast.Compare):
                return "skip"
            if isinstance(parent, ast.Assign) and any(
                    getattr(target, "id", None) in SKIPPED_VARIABLES or getattr(target, "attr", None) == "__doc__"
                    for target in parent.targets):
                return "skip"
            if isinstance(parent, ast.keyword):
                if direct and (parent.arg in SINK_KEYWORDS or (parent.arg == "value" and self._text_component(parent))):
                    return "shown"
            if isinstance(parent, ast.Call):
                name = _name(parent)
                if name in ("t", "t_md") and parent.args and child is parent.args[0]:
                    return "skip"
                if name in IDENTIFIER_METHODS or name == "print" or (name in LOG_CALLS and _receiver(parent) in ("log", "logging")):
                    return "skip"
                if direct and child in parent.args and (name in TEXT_COMPONENTS or name in ERRORS):
                    return "shown"
                if name == "messages_html" and self._message_of(node, parent):
                    return "shown"
                if name in CHOICE_COMPONENTS and self._choice_label(node, parent):
                    return "shown"
            if not isinstance(parent, (ast.List, ast.Tuple)):
                direct = direct and isinstance(parent, ast.keyword)
            child, parent = parent, getattr(parent, "parent", None)
        return ""

    @staticmethod
    def _text_component(keyword: ast.keyword) -> bool:
        call = getattr(keyword, "parent", None)
        return isinstance(call, ast.Call) and _name(call) in TEXT_COMPONENTS

    @staticmethod
    def _message_of(node: ast.AST, call: ast.Call) -> bool:
        """The text (second element) of a (level, text) pair given to messages_html."""
        pair = getattr(node, "parent", None)
        return isinstance(pair, ast.Tuple) and len(pair.elts) == 2 and pair.elts[1] is node

    @staticmethod
    def _choice_label(node: ast.AST, call: ast.Call) -> bool:
        """The label (first element) of a (label, value) choice."""
        pair = getattr(node, "parent", None)
        return isinstance(pair, ast.Tuple) and len(pair.elts) == 2 and pair.elts[0] is node


def untranslated(path: Path) -> list[tuple[int, str]]:
    return Scan(path.name).check(ast.parse(path.read_text(encoding="utf-8")))


def test_the_ui_writes_no_english_text_of_its_own():
    found = {f"{path.name}:{line}": text for path in sorted(UI.glob("*.py")) for line, text in untranslated(path)}
    assert not found, ("texts the page shows must come from t(key) with the key in assets/i18n/en.json and zh.json "
                       f"(or, if they are not text, be listed in ALLOWED with the reason): {found}")


@pytest.mark.parametrize("source", [
    'gr.Markdown("Upload a file first")',
    'gr.Button("Save")',
    'gr.Textbox(label="Name")',
    'gr.Dropdown([("all tasks", "")], label=t("runs.task"))',
    'messages_html([("error", "pick a run first")])',
    'raise StudioError(f"run {run_id} has no model")',
    'gr.Warning("careful")',
    'def f():\n    return f"{n} rows"',
    'pd.DataFrame(rows, columns=["metric", "value"])',
])
def test_the_scan_catches_english_written_into_the_ui(source):
    assert Scan("new.py").check(ast.parse(source)), source


@pytest.mark.parametrize("source", [
    'gr.Markdown(t("data.upload_a_file_or_pick"))',
    'def f():\n    """A docstring is for developers."""',
    'log.info("loaded %s in %d s", name, seconds)',
    'if record.status == "queued and waiting":\n    pass',
    'value = state.get("validation path")',
    'gr.Radio([(t("train.method_full"), "full")], value="full")',
    'gr.Dropdown(choices=[], value="auto", elem_id="train-device")',
])
def test_the_scan_leaves_identifiers_and_translated_text_alone(source):
    assert not Scan("new.py").check(ast.parse(source)), source


SAME_IN_BOTH = {"LoRA", "BLEU", "F1", "ROUGE-1", "ROUGE-2", "ROUGE-L", "chrF", "CPU", "GPU", "CUDA"}
"""Names and acronyms a Chinese page writes as English does."""


def test_no_chinese_text_is_the_english_one_left_as_it_is():
    en, zh = i18n.strings("en"), i18n.strings("zh")
    same = {key: text for key, text in zh.items()
            if text == en[key] and text not in SAME_IN_BOTH and WORD.search(re.sub(r"\{[^{}]*\}", "", text))}
    assert not same, f"not translated (or add a proper name to SAME_IN_BOTH): {same}"


def test_every_name_from_the_layers_below_has_a_chinese_text():
    """A new task, column role, run status or configuration help needs its line in words.py."""
    from unittest import mock

    from studio.config import RunConfig, field_help
    from studio.tasks import list_tasks
    from studio.ui import words
    from studio.ui.runs_tab import STATUSES
    from studio.ui.train_tab import ADVANCED

    with mock.patch.object(i18n, "current_lang", lambda: "zh"):
        missing = []
        for task in list_tasks():
            if words.task_title(task) == task.title:
                missing.append(f"task {task.name}")
            missing += [f"role {task.name}.{role}" for role, english in task.roles.items() if words.role_help(task, role) == english]
        missing += [f"status {status}" for status in STATUSES if words.status(status) == status]
        helps = [(f"task.{name}", text) for task in list_tasks() for name, text in field_help(task.options).items()]
        helps += [(key, field_help(cls).get(name)) for cls, name, key in ADVANCED]
        missing += [f"help {key}" for key, english in helps if english and words.field_help(key, english) == english]
        sections = {key.rsplit(".", 1)[0] for _, _, key in ADVANCED}
        missing += [f"section {section}" for section in sections if words.section(section) == f"**{section}**"]
        assert RunConfig().training.preset in ("quick", "balanced", "best")
    assert not missing, f"add these to studio/ui/words.py and both catalogues: {missing}"


def test_handlers_speak_the_language_of_the_request(monkeypatch):
    from studio.ui import words
    from studio.ui.common import duration, messages_html
    from studio.ui.data_profile import profile_text

    monkeypatch.setattr(i18n, "current_lang", lambda: "zh")
    assert "请先选择一个运行" in messages_html([("error", i18n.t("runs.pick_a_run"))])
    assert words.status("completed") == "已完成" and duration(75) == "1 分 15 秒"
    text = profile_text({"rows": {"train": 8, "test": 2}, "total_rows": 10, "warnings": ["3.0% of test examples are long"]}, "词元")
    assert text.splitlines()[0] == "行数：训练集 8，测试集 2（共 10）" and "警告" in text and "3.0% of test examples" in text


def test_every_part_of_a_runs_settings_summary_has_a_chinese_text(monkeypatch):
    from studio.training.speed import SUMMARY, summary_parts
    from studio.ui import words

    everything = {"precision": "bf16", "batch_size": 46, "packing": True, "attention": "flex_attention", "tf32": True,
                  "optimizer": "adamw_torch_fused", "dataloader_workers": 4, "gradient_checkpointing": True, "liger": True,
                  "compile": True, "allocator": "jemalloc"}
    grouped = {**everything, "packing": False, "group_by_length": True}
    assert {part for s in (everything, grouped) for part, _ in summary_parts(s)} == set(SUMMARY)
    identifiers = {"precision", "optimizer", "jemalloc"}  # bf16, adamw_torch_fused, jemalloc: shown as they are
    for settings in (everything, grouped):
        monkeypatch.setattr(i18n, "current_lang", lambda: "en")
        english = words.speed_settings(settings).split(" · ")
        monkeypatch.setattr(i18n, "current_lang", lambda: "zh")
        chinese = words.speed_settings(settings).split(" · ")
        parts = [part for part, _ in summary_parts(settings)]
        assert english == [SUMMARY[part].format(**values) for part, values in summary_parts(settings)]
        left = [part for part, en, zh in zip(parts, english, chinese) if en == zh and part not in identifiers]
        assert not left, f"add a Chinese text for these parts to studio/ui/words.py: {left}"
