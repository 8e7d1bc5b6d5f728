"""User text is shown as text: markup planted in a run's name, an owner's name, a file's and a
column's name, label values, configuration values and error messages reaches no component that
reads markup (Markdown, HTML, plotly charts, the chatbot) live, in any tab's handler outputs,
and the places that show text as text get it unchanged (not escaped twice).

The rule is in ``studio/ui/markup.py``; the browser check is ``tests/security/test_escaping.py``."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest

gr = pytest.importorskip("gradio")

from tests.conftest import write_csv  # noqa: E402

PLANTED = "<img src=x onerror=alert(1)>**b**"
OWNER = "<svg id=planted onload=alert(2)>_eve_"
LABEL = '<a href="https://evil.example">click</a>__l__'
COLUMN = "<b>extra</b>"
LIVE = ("<img", "<svg", "<a ", "<b>extra")
"""What a markup component must never get raw from the planted strings."""
MARKDOWN_LIVE = ("**b**", "_eve_", "__l__")
"""And what a Markdown component must not get unescaped."""


def live_in(kind: str, text: str) -> list[str]:
    bad = [mark for mark in LIVE if mark in text]
    # A message box (common.messages_html) in a Markdown component is an HTML block: Markdown
    # is not read inside it (checked in a browser), so it is checked as HTML.
    if kind == "Markdown" and not text.startswith('<div class="studio-msg'):
        bad += [mark for mark in MARKDOWN_LIVE if mark in text]
    return bad


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _value(output: Any) -> Any:
    if isinstance(output, dict) and output.get("__type__") == "update":
        return output.get("value")
    return output


def markup_texts(dep, result) -> list[tuple[str, str]]:
    """(component kind, text) of every output of ``dep`` that goes to a component reading markup."""
    if isinstance(result, dict) and result and all(isinstance(key, gr.blocks.Block) for key in result):
        outputs = [result.get(component) for component in dep.outputs]  # keyed by component (the live view)
    else:
        outputs = result if isinstance(result, (list, tuple)) else [result]
    assert len(outputs) == len(dep.outputs)
    found = []
    for component, output in zip(dep.outputs, outputs):
        kind = type(component).__name__
        value = _value(output)
        if value is None:
            continue
        if kind in ("Markdown", "HTML"):
            found.append((kind, str(value)))
        elif kind == "Plot":
            if hasattr(value, "to_plotly_json"):
                spec = value.to_plotly_json()
            else:
                spec = json.loads(getattr(value, "plot", None) or "{}")
            found += [(kind, text) for text in _strings(spec)]
        elif kind == "Chatbot":
            found += [(kind, text) for text in _strings(value)]
    return found


def assert_no_live_markup(dep, result) -> list[tuple[str, str]]:
    texts = markup_texts(dep, result)
    bad = [(kind, text[:200], live_in(kind, text)) for kind, text in texts if live_in(kind, text)]
    assert not bad, f"{dep.api_name or dep.name}: planted markup reached a markup component: {bad}"
    return texts


# ---- the helpers ----------------------------------------------------------------------------------
def test_md_text_escapes_html_and_neutralises_markdown():
    from studio.ui.markup import Markup, md_text, t_md

    shown = md_text(PLANTED)
    assert "<" not in shown and "**" not in shown and shown.startswith("&lt;img")
    assert md_text("- item\n# heading") == "\\- item \\# heading"  # one line, no list, no heading
    assert md_text("www.evil.com") == "www\\.evil\\.com" and "\\:" in md_text("http://e.com")  # no autolinks
    assert md_text("66.7% v1.2") == "66.7% v1.2"  # a number reads the same
    assert md_text("[x](javascript:alert(1))").startswith("\\[x\\]\\(")
    assert md_text("$$x$$") == "\\$\\$x\\$\\$"  # Gradio's LaTeX
    # t_md escapes the values, keeps the template's own markup, and keeps a Markup value.
    text = t_md("evaluate.split_heading", split=PLANTED)
    assert text.startswith("**") and "<img" not in text
    assert t_md("settings.fixed_roots", roots=Markup("<code>a</code>")).endswith("<code>a</code>")


def test_messages_html_and_chart_texts_are_escaped():
    from studio.ui import charts
    from studio.ui.common import messages_html

    assert "<img" not in messages_html([("error", PLANTED), ("info", OWNER)])
    figure = charts.bar_figure({LABEL: 3, "ok": 1}, PLANTED, COLUMN)
    texts = list(_strings(figure.to_plotly_json()))
    assert not [t for t in texts if live_in("Plot", t)]
    assert figure.data[0].x[0] == '&lt;a href="https://evil.example"&gt;click&lt;/a&gt;__l__'  # plotly decodes entities
    overlay = charts.overlay_figure({PLANTED: charts.RunSeries(PLANTED)})
    assert not [t for t in _strings(overlay.to_plotly_json()) if live_in("Plot", t)]


# ---- every tab, through its handlers -----------------------------------------------------------
@pytest.fixture
def planted(tmp_path, monkeypatch):
    """A workspace without accounts whose runs, owners, data and settings hold markup."""
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "0")
    import yaml

    from studio.config import RunConfig
    from studio.jobs.manager import JobManager
    from studio.jobs.store import RunRecord
    from studio.ui.app import build_app
    from studio.ui.model_cache import ModelCache
    from studio.ui.services import Services
    from studio.workspace import Workspace

    ws = Workspace.at(tmp_path / "ws")
    root = tmp_path / PLANTED  # an allowed model folder whose name holds markup (the Settings tab shows it)
    root.mkdir()
    services = Services(workspace=ws, jobs=JobManager(ws, supervise=False, allowed_model_roots=[root]), models=ModelCache())
    services.exports.mkdir(parents=True, exist_ok=True)
    predictions = [
        {"text": PLANTED, "gold": LABEL, "predicted": LABEL, "confidence": 0.9, "correct": True,
         "probabilities": {LABEL: 0.9, "ok": 0.1}},
        {"text": "fine", "gold": "ok", "predicted": LABEL, "confidence": 0.6, "correct": False,
         "probabilities": {LABEL: 0.6, "ok": 0.4}},
    ]
    ids = []
    for i, (name, status) in enumerate([(PLANTED, "completed"), ("<b>second</b> **run**", "failed")]):
        run_id = f"20260101-00000{i}-planted-0000000{i}"
        folder = ws.runs / run_id
        (folder / "model").mkdir(parents=True)
        (folder / "model" / "task.json").write_text("{}")
        config = RunConfig.from_dict({"name": name,
                                      "task": {"name": "classification", "label_delimiter": PLANTED if i else None}})
        (folder / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
        rows = predictions if i == 0 else [{**p, "predicted": "ok"} for p in predictions]
        (folder / "predictions_test.jsonl").write_text("".join(json.dumps(p) + "\n" for p in rows))
        metrics = {"test": {"accuracy": 0.5, "confusion_matrix": {"labels": [LABEL, "ok"], "matrix": [[1, 0], [1, 0]]},
                            "per_class": {LABEL: {"precision": 0.5, "recall": 1.0}, "ok": {"precision": 0.0, "recall": 0.0}}}}
        (folder / "metrics.json").write_text(json.dumps(metrics))
        services.jobs.store.insert(RunRecord(
            id=run_id, run_dir=str(folder), status=status, name=name, owner=OWNER, task="classification",
            backbone=PLANTED, created=time.time(), started=time.time() - 5, ended=time.time(),
            error_message=None if i == 0 else f"could not read {PLANTED}", error_hint=None if i == 0 else LABEL,
            metric_name="accuracy", metric_value=0.5))
        ids.append(run_id)
    app = build_app(services)
    deps = {dep.api_name: dep for dep in app.fns.values() if dep.api_name}
    yield SimpleNamespace(services=services, deps=deps, all=list(app.fns.values()), ids=ids, tmp=tmp_path)
    services.jobs.shutdown()


def call(planted, api_name: str, *args, **kwargs):
    dep = planted.deps[api_name]
    result = dep.fn(*args, **kwargs)
    return dep, result, assert_no_live_markup(dep, result)


def test_the_runs_tab_shows_planted_names_as_text(planted):
    a, b = planted.ids
    dep, result, _ = call(planted, "runs_list", [], "", "", "", [], None, None, None)
    frame, overlay_choices = result[0], result[1]
    assert PLANTED in frame.values and OWNER in frame.values  # a table cell is text: shown as typed
    assert any(PLANTED in label for label, _ in overlay_choices["choices"])  # so is a dropdown's choice
    call(planted, "runs_overlay", [a, b])  # legends: the runs' ids
    _, diff, _ = call(planted, "runs_diff", a, b)
    assert "&lt;img" in diff  # the differing configuration values, escaped


def test_the_runs_tab_names_another_members_owner_as_text(planted):
    # The owner note is a private event (no api_name): found by its function.
    dep = next(dep for dep in planted.all if getattr(dep.fn, "__name__", "") == "ownership_fn")
    result = dep.fn(planted.ids[0], request=SimpleNamespace(username="mallory"))
    texts = assert_no_live_markup(dep, result)
    assert any("&lt;svg" in text for _, text in texts)  # the note names the owner, escaped


def test_the_evaluate_tab_shows_planted_labels_and_names_as_text(planted):
    a, b = planted.ids
    _, result, texts = call(planted, "eval_load", a, "test", {"run_id": None, "split": None, "indexes": []})
    assert any(kind == "Plot" and "&lt;a href" in text for kind, text in texts)  # the confusion matrix's labels
    state = result[8]
    _, result, _ = call(planted, "eval_predictions", state, "all", "(all)", "(all)", 0, "")
    assert PLANTED in result[1]["value"].values  # the predictions table: text
    _, result, texts = call(planted, "eval_compare", a, b, "test")
    assert texts and texts[0][0] == "Markdown"
    _, result, texts = call(planted, "eval_compare", a, b, PLANTED)  # a split name a caller made up
    assert "<img" not in str(result[0])


def test_the_playground_title_and_chat_show_planted_text_as_text(planted, monkeypatch):
    from studio.tasks import get_task
    from studio.ui import playground_tab

    a, b = planted.ids
    task = get_task("classification")
    monkeypatch.setattr(playground_tab, "load_model", lambda services, run_id, base=False: SimpleNamespace(task=task))
    monkeypatch.setattr(playground_tab, "predict_one", lambda *args, **kwargs: {
        "text": PLANTED, "predicted": LABEL, "confidence": 0.9, "probabilities": {LABEL: 0.9, "ok": 0.1},
        "generation": PLANTED})
    _, result, _ = call(planted, "playground_runs", None, None)
    assert any(PLANTED in label for label, _ in result[0]["choices"])
    _, result, texts = call(planted, "playground_predict", a, b, "some text", "", 16, 0, 1)
    titles = [text for kind, text in texts if kind == "Markdown"]
    assert len(titles) == 2 and all("&lt;" in title for title in titles)  # both sides' titles, escaped
    assert "&lt;b&gt;second&lt;/b&gt;" in titles[1]
    assert LABEL in result[3]["value"]  # gr.Label shows its class names as text

    monkeypatch.setattr(playground_tab, "generative", lambda services, run_id: True)
    dep, result, texts = call(planted, "playground_chat", a, PLANTED, [], 16, 0, 1)
    history = result[0]
    assert [m["content"] for m in history] == ["&lt;img src=x onerror=alert(1)&gt;**b**"] * 2  # shown as text
    seen = []
    monkeypatch.setattr(playground_tab, "predict_one", lambda *args, history=None, **kwargs: seen.append(history) or {
        "generation": "ok"})
    call(planted, "playground_chat", a, "again", history, 16, 0, 1)
    assert seen[0][0] == {"role": "user", "content": PLANTED}  # the model reads what was typed, not entities


def test_the_data_tab_shows_a_planted_file_column_and_labels_as_text(planted):
    path = write_csv(planted.tmp / "upload" / f"{PLANTED}.csv",
                     [{"text": f"row {i} good", "label": LABEL if i % 2 else "ok", COLUMN: "x"} for i in range(24)])
    from studio.ui.data_state import empty_state

    dep, result, texts = call(planted, "data_upload", str(path), None, None, None, empty_state())
    summary = result[1]
    assert "&lt;img" in summary and "\\*\\*b\\*\\*" in summary  # the file's name, escaped in the Markdown summary
    state = result[0]
    roles = [r for r in result[4:-2] if isinstance(r, dict) and r.get("choices")]
    assert any(COLUMN in [c[1] if isinstance(c, tuple) else c for c in r["choices"]] for r in roles)  # choices: text
    dep, result, texts = call(planted, "data_profile", state)
    assert any(kind == "Plot" and "&lt;a href" in text for kind, text in texts)  # the label chart's bars
    _, result, texts = call(planted, "data_save", PLANTED, state)
    assert texts and "&lt;img" in texts[0][1]  # the refusal names the bad name, escaped
    call(planted, "data_save", "reviews", state, request=SimpleNamespace(username=OWNER))
    dep = next(dep for dep in planted.all if getattr(dep.fn, "__name__", "") == "datasets_fn")
    table, _ = dep.fn()
    assert OWNER in table.values  # the saved datasets' owners: a table, text
    _, result, texts = call(planted, "data_delete_dataset", "reviews", True, request=SimpleNamespace(username="mallory"))
    assert "&lt;svg" in result[0]  # the refusal names the owner, escaped


def test_the_train_tab_shows_planted_names_and_errors_as_text(planted):
    b = planted.ids[1]
    _, result, texts = call(planted, "train_estimate", None, "dataset:" + PLANTED, "classification", "x", "full", "balanced",
                            "auto")
    assert texts[0][0] == "Markdown" and "&lt;img" in texts[0][1]  # the refusal's message, escaped in the estimate
    dep, result, texts = call(planted, "train_attach", b, None)
    status = next(text for kind, text in texts if kind == "HTML" and "studio-status" in text)
    assert "&lt;b&gt;second&lt;/b&gt;" in status and "could not read &lt;img" in status
    watched = next(value for component, value in result.items() if component.elem_id == "train-watch")
    assert any(PLANTED in label or "second" in label for label, _ in watched["choices"])


def test_the_settings_tab_shows_a_planted_folder_as_text(planted):
    _, result, texts = call(planted, "settings_save", "", False, "")
    fixed = result[1]
    assert "&lt;img" in fixed and "<code>" in fixed


# ---- errors a handler lets out: Gradio shows them as toasts, rendering their message as HTML ------
def test_escaped_errors_reach_a_client_as_text_and_handlers_keep_their_arguments():
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from studio.errors import StudioError
    from studio.ui.markup import escape_errors

    def refuse(name, request: gr.Request):
        raise StudioError(f"no run named {name}")

    def refuse_loudly(name):
        raise gr.Error(f"refused {name}", title=PLANTED)

    def greet(name, request: gr.Request):
        return f"{name} from {request.client.host}"

    def stream(name):
        yield "first"
        raise StudioError(f"stopped at {name}")

    with gr.Blocks() as app:
        box, out = gr.Textbox(), gr.Textbox()
        for fn in (refuse, refuse_loudly, greet, stream):
            gr.Button(fn.__name__).click(fn, [box], [out], api_name=fn.__name__)
    escape_errors(app)
    escape_errors(app)  # twice: wrapped once
    assert all(dep.fn.__wrapped__ in (refuse, refuse_loudly, greet, stream) for dep in app.fns.values())
    app.launch(prevent_thread_lock=True, quiet=True, show_error=True)
    try:
        client = Client(app.local_url, verbose=False)
        assert client.predict(PLANTED, api_name="/greet") == f"{PLANTED} from 127.0.0.1"  # arguments as before
        for api in ("/refuse", "/refuse_loudly", "/stream"):
            with pytest.raises(AppError) as caught:
                client.predict(PLANTED, api_name=api)
            assert "&lt;img src=x" in str(caught.value) and "<img" not in str(caught.value), api
    finally:
        app.close()
